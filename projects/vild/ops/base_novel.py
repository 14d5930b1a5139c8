"""The base/novel category split of open-vocabulary training: which categories may be targets."""

import numpy as np
import tensorflow as tf


def as_base_class_mask(base_class_mask, num_categories: int) -> np.ndarray:
  """Checks a per-category base flag list and returns it as a bool array of [num_categories].

  `None` means every category is novel: names the detector was never trained on.
  """
  if base_class_mask is None:
    return np.zeros([num_categories], dtype=bool)
  mask = np.asarray(base_class_mask)
  if mask.shape != (num_categories,):
    raise ValueError(
      f'base_class_mask has shape {mask.shape} but the category list has {num_categories} '
      f'categories; expected one flag per category, shape ({num_categories},)'
    )
  if mask.dtype != bool and not np.isin(mask, (0, 1)).all():
    raise ValueError(f'base_class_mask must hold booleans or 0/1, got {mask.tolist()}')
  return mask.astype(bool)


def is_novel_class(class_ids: tf.Tensor, base_class_mask: tf.Tensor) -> tf.Tensor:
  """Whether each class id (1..C; 0 is background, negative is padding) names a novel category."""
  class_ids = tf.cast(class_ids, tf.int32)
  is_base_by_id = tf.concat([[True], tf.cast(base_class_mask, tf.bool)], axis=0)
  is_base = tf.gather(is_base_by_id, tf.maximum(class_ids, 0))
  return tf.logical_and(class_ids > 0, tf.logical_not(is_base))


def remove_novel_groundtruth(
  gt_boxes: tf.Tensor, gt_classes: tf.Tensor, base_class_mask: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
  """Turns novel-category instances into padding (boxes and classes -1).

  ViLD trains on a set whose novel annotations were removed (LVIS rare categories held out,
  paper Sec. 4.1), so proposals on novel objects match nothing and train as background. Model
  Garden's RoI sampler already skips padded instances, so padding them reproduces that. This
  covers the second stage (class, box and mask targets); the RPN's targets come from the input
  pipeline, which should use `keep_base_instances`.

  Args:
    gt_boxes: [batch, instances, 4], padded with -1.
    gt_classes: [batch, instances] class ids 1..C, padded with -1.
    base_class_mask: [C] bool, True for categories the detector trains on.

  Returns:
    (gt_boxes, gt_classes) with novel instances padded.
  """
  novel = is_novel_class(gt_classes, base_class_mask)
  gt_classes = tf.where(novel, tf.constant(-1, gt_classes.dtype), gt_classes)
  gt_boxes = tf.where(novel[..., None], tf.constant(-1, gt_boxes.dtype), gt_boxes)
  return gt_boxes, gt_classes


def keep_base_instances(decoded: dict, base_class_mask) -> dict:
  """Drops novel-category instances from a decoded tf.Example (Model Garden decoder keys).

  For the input pipeline: the RPN's anchor targets are made there, from every groundtruth box, so
  novel objects must go before the parser for the RPN, too, to never see them as foreground.
  Every per-instance `groundtruth_*` tensor is filtered alike; other keys pass through.
  """
  keep = tf.logical_not(is_novel_class(decoded['groundtruth_classes'], base_class_mask))
  num_instances = tf.shape(decoded['groundtruth_classes'])[0]
  filtered = dict(decoded)
  for key, value in decoded.items():
    # Per-instance fields have the instance count as their first dimension; others (attribute
    # dicts, scalars) are left as they are.
    if key.startswith('groundtruth_') and isinstance(value, tf.Tensor) and value.shape.rank:
      tf.debugging.assert_equal(
        tf.shape(value)[0], num_instances, message=f'{key} has a different number of instances'
      )
      filtered[key] = tf.boolean_mask(value, keep)
  return filtered
