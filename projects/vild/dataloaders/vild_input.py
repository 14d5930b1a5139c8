"""ViLD's training input: Model Garden's Mask R-CNN decoder and parser plus the precomputed
proposals and teacher embeddings of ViLD-image, with novel-category instances dropped."""

import tensorflow as tf
from official.vision.dataloaders import maskrcnn_input, tf_example_decoder
from official.vision.ops import box_ops, preprocess_ops

from projects.vild.dataloaders import roi_features
from projects.vild.ops import base_novel

# Decoded keys of the proposals (normalised yxyx) and of the teacher's embeddings of them.
ROI_BOXES = 'roi_boxes'
ROI_EMBEDDINGS = 'roi_embeddings'
# Label keys the parser adds: [M, 4] proposals in the parser's output image coordinates, padded
# with -1, and their [M, D] teacher embeddings, padded with 0.
DISTILL_ROIS = 'distill_rois'
DISTILL_TEACHER_EMBEDDINGS = 'distill_teacher_embeddings'


class TfExampleDecoder(tf_example_decoder.TfExampleDecoder):
  """Model Garden's detection decoder; with `include_rois` it also decodes the RoI fields of
  `roi_features` as `roi_boxes` [M, 4] and `roi_embeddings` [M, D] (M = 0 when absent)."""

  def __init__(self, include_rois: bool = False, **kwargs):
    super().__init__(**kwargs)
    self._include_rois = include_rois

  def decode(self, serialized_example):
    decoded = super().decode(serialized_example)
    if self._include_rois:
      parsed = tf.io.parse_single_example(serialized_example, roi_features.parse_spec())
      decoded[ROI_BOXES], decoded[ROI_EMBEDDINGS] = roi_features.decode_rois(parsed)
    return decoded


class Parser(maskrcnn_input.Parser):
  """Model Garden's Mask R-CNN parser for open-vocabulary training.

  Training examples lose their novel-category instances before anything else
  (`base_novel.keep_base_instances`), so the RPN's anchor targets never see them either. With
  `max_num_rois` > 0 the decoded proposals follow the image through the same flips, resize and
  crop as the groundtruth boxes, those cropped away are dropped, and the rest are padded to
  `max_num_rois` (labels `distill_rois`, `distill_teacher_embeddings`). Evaluation is Model
  Garden's, on every category.
  """

  def __init__(
    self,
    base_class_mask,
    max_num_rois: int = 0,
    roi_embedding_dim: int = 0,
    **kwargs,
  ):
    """Args:
    base_class_mask: [C] bools, True for the categories (ids 1..C) that may be training targets.
    max_num_rois: proposals per image for ViLD-image; 0 reads none.
    roi_embedding_dim: size D of the teacher embeddings (needed when `max_num_rois` > 0).
    **kwargs: Model Garden's `maskrcnn_input.Parser` arguments.
    """
    super().__init__(**kwargs)
    if max_num_rois and roi_embedding_dim <= 0:
      raise ValueError(
        f'roi_embedding_dim must be > 0 to read {max_num_rois} proposals, got {roi_embedding_dim}'
      )
    base_class_mask = tf.constant(base_class_mask, tf.bool)
    self._base_class_mask = base_class_mask
    self._max_num_rois = max_num_rois
    self._roi_embedding_dim = roi_embedding_dim
    # The flips happen here, once for groundtruth and proposals alike; the parent, which would
    # flip only the groundtruth, no longer does.
    self._flip_horizontally = self._aug_rand_hflip
    self._flip_vertically = self._aug_rand_vflip
    self._aug_rand_hflip = self._aug_rand_vflip = False

  def _flip(self, data: dict) -> dict:
    """Random flips of image, groundtruth boxes and masks and proposals with one draw each."""
    data = dict(data)
    num_instances = tf.shape(data['groundtruth_boxes'])[0]
    boxes = data['groundtruth_boxes']
    if self._max_num_rois:
      boxes = tf.concat([boxes, data[ROI_BOXES]], axis=0)
    masks = data['groundtruth_instance_masks'] if self._include_mask else None
    image = data['image']
    for enabled, flip in (
      (self._flip_horizontally, preprocess_ops.random_horizontal_flip),
      (self._flip_vertically, preprocess_ops.random_vertical_flip),
    ):
      if enabled:
        image, boxes, masks = flip(image, boxes, masks=masks)
    data['image'] = image
    data['groundtruth_boxes'] = boxes[:num_instances]
    if self._max_num_rois:
      data[ROI_BOXES] = boxes[num_instances:]
    if self._include_mask:
      data['groundtruth_instance_masks'] = masks
    return data

  def _distill_labels(self, data: dict, image_info: tf.Tensor) -> dict[str, tf.Tensor]:
    """Proposals in output image coordinates, padded to `max_num_rois`, with their embeddings."""
    embeddings = data[ROI_EMBEDDINGS]
    tf.debugging.assert_equal(
      tf.size(embeddings),
      tf.shape(data[ROI_BOXES])[0] * self._roi_embedding_dim,
      message=(
        f'{roi_features.ROI_FEATURE_KEY} must hold {self._roi_embedding_dim} values per proposal '
        '(the size of the text embeddings)'
      ),
    )
    embeddings = tf.reshape(embeddings, [-1, self._roi_embedding_dim])
    boxes = box_ops.denormalize_boxes(data[ROI_BOXES], image_info[0, :])
    boxes = preprocess_ops.resize_and_crop_boxes(
      boxes, image_info[2, :], image_info[1, :], image_info[3, :]
    )
    # Proposals cropped out of the scaled image collapse to empty boxes: nothing to distill.
    kept = box_ops.get_non_empty_box_indices(boxes)
    return {
      DISTILL_ROIS: preprocess_ops.clip_or_pad_to_fixed_size(
        tf.gather(boxes, kept), self._max_num_rois, -1
      ),
      DISTILL_TEACHER_EMBEDDINGS: preprocess_ops.clip_or_pad_to_fixed_size(
        tf.gather(embeddings, kept), self._max_num_rois, 0
      ),
    }

  def _parse_train_data(self, data):
    data = base_novel.keep_base_instances(data, self._base_class_mask)
    data = self._flip(data)
    image, labels = super()._parse_train_data(data)
    if self._max_num_rois:
      labels.update(self._distill_labels(data, labels['image_info']))
    return image, labels
