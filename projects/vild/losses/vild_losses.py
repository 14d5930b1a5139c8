"""ViLD's two distillation losses: ViLD-text (classification against text embeddings of the base
categories) and ViLD-image (L1 towards the image teacher's embeddings of precomputed proposals)."""

import tensorflow as tf

from projects.vild.ops import base_novel

# Paper Sec. 4.1 and the official configs (`feat_distill_weight: 0.5`).
PAPER_IMAGE_LOSS_WEIGHT = 0.5


def vild_text_loss(
  class_outputs: tf.Tensor, class_targets: tf.Tensor, base_class_mask: tf.Tensor
) -> tf.Tensor:
  """Softmax cross-entropy over background + base categories, averaged over RoIs.

  Novel categories are left out of the softmax altogether, and a RoI whose target is novel (only
  possible if its groundtruth was not removed with `base_novel.remove_novel_groundtruth`) adds no
  loss, so nothing pushes region embeddings towards or away from a novel category.

  Args:
    class_outputs: [batch, rois, 1 + C] logits, background first (`TextClassifier`).
    class_targets: [batch, rois] class ids, 0 background, 1..C categories.
    base_class_mask: [C] bool, True for base categories.

  Returns:
    Scalar loss.
  """
  base_class_mask = tf.cast(base_class_mask, tf.bool)
  kept_columns = tf.concat(
    [[0], tf.cast(tf.where(base_class_mask)[:, 0], tf.int32) + 1], axis=0
  )  # Background, then the base categories in order.
  column_of_class = tf.tensor_scatter_nd_update(
    -tf.ones([tf.size(base_class_mask) + 1], tf.int32),
    kept_columns[:, None],
    tf.range(tf.size(kept_columns)),
  )
  class_targets = tf.cast(class_targets, tf.int32)
  valid = tf.logical_and(
    class_targets >= 0, tf.logical_not(base_novel.is_novel_class(class_targets, base_class_mask))
  )
  targets = tf.where(valid, tf.gather(column_of_class, tf.maximum(class_targets, 0)), 0)
  logits = tf.gather(tf.cast(class_outputs, tf.float32), kept_columns, axis=-1)
  per_roi = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
  weights = tf.cast(valid, tf.float32)
  return tf.reduce_sum(per_roi * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


def valid_proposals(proposal_boxes: tf.Tensor) -> tf.Tensor:
  """[batch, proposals] bool: False where a precomputed proposal is padding (all coordinates
  <= 0, as in Model Garden's box padding)."""
  return tf.reduce_max(proposal_boxes, axis=-1) > 0


def vild_image_loss(
  region_embeddings: tf.Tensor,
  teacher_embeddings: tf.Tensor,
  valid_mask: tf.Tensor,
  weight: float = PAPER_IMAGE_LOSS_WEIGHT,
) -> tf.Tensor:
  """Weighted L1 distance between student region embeddings and the teacher's, per proposal.

  The teacher embeddings are L2-normalised first (the official `normalize_feat_during_training`);
  the L1 distance is summed over embedding dimensions and averaged over valid proposals, which is
  what the official absolute-difference loss times the embedding size amounts to.

  Args:
    region_embeddings: [batch, proposals, D] L2-normalised student embeddings.
    teacher_embeddings: [batch, proposals, D] image-teacher embeddings of the same proposals.
    valid_mask: [batch, proposals] bool, False for padded proposals.
    weight: multiplier of the loss (paper 0.5).

  Returns:
    Scalar loss.
  """
  region_embeddings = tf.cast(region_embeddings, tf.float32)
  valid_mask = tf.cast(valid_mask, tf.bool)
  # Padded teacher rows may hold anything (NaN included); zeroing them before any arithmetic keeps
  # them out of both the sum and its gradient.
  teacher_embeddings = tf.where(valid_mask[..., None], tf.cast(teacher_embeddings, tf.float32), 0.0)
  teacher_embeddings = tf.math.l2_normalize(teacher_embeddings, axis=-1)
  if region_embeddings.shape[-1] != teacher_embeddings.shape[-1]:
    raise ValueError(
      f'region embeddings have {region_embeddings.shape[-1]} dimensions but the teacher '
      f'embeddings have {teacher_embeddings.shape[-1]}; the region projection must match the '
      'image teacher'
    )
  per_proposal = tf.reduce_sum(tf.abs(region_embeddings - teacher_embeddings), axis=-1)
  valid = tf.cast(valid_mask, tf.float32)
  per_proposal = per_proposal * valid
  return weight * tf.reduce_sum(per_proposal) / tf.maximum(tf.reduce_sum(valid), 1.0)
