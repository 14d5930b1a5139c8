"""ViLD on Model Garden's Mask R-CNN: the ViLD head in place of DetectionHead, novel groundtruth
dropped in training, and region embeddings of precomputed proposals for ViLD-image."""

from collections.abc import Mapping

import tensorflow as tf
import tf_keras
from official.vision.configs import maskrcnn as maskrcnn_cfg
from official.vision.modeling import factory, maskrcnn_model
from official.vision.modeling.layers import detection_generator

from projects.vild.modeling import vild_head
from projects.vild.ops import base_novel, score_ensemble


@tf_keras.utils.register_keras_serializable(package='ViLD')
class ViLDMaskRCNNModel(maskrcnn_model.MaskRCNNModel):
  """Mask R-CNN whose single detection head is a `ViLDDetectionHead`.

  In training, novel-category groundtruth (per the head's `base_class_mask`) is padded out before
  RoI sampling, so novel classes are never class, box or mask targets; the RPN's anchor targets
  come from the input pipeline, which drops novel instances with `base_novel.keep_base_instances`.

  Extra outputs in training, when `distill_rois` ([B, M, 4] precomputed proposals, padded with
  -1) are given: `distill_region_embeddings` [B, M, D], the embeddings ViLD-image pulls towards
  the image teacher's embeddings of the same boxes.
  """

  @property
  def vild_head(self) -> vild_head.ViLDDetectionHead:
    return self.detection_head[0]

  def set_categories(self, category_embeddings, base_class_mask=None):
    """Detects a new category list from now on (`ViLDDetectionHead.set_categories`)."""
    self.vild_head.set_categories(category_embeddings, base_class_mask)
    # Keras caches a traced predict function holding the old embeddings.
    self.predict_function = None

  def call(  # pytype: disable=signature-mismatch
    self,
    images: tf.Tensor,
    image_shape: tf.Tensor,
    anchor_boxes: Mapping[str, tf.Tensor] | None = None,
    gt_boxes: tf.Tensor | None = None,
    gt_classes: tf.Tensor | None = None,
    gt_masks: tf.Tensor | None = None,
    gt_outer_boxes: tf.Tensor | None = None,
    distill_rois: tf.Tensor | None = None,
    training: bool | None = None,
  ) -> Mapping[str, tf.Tensor]:
    if training and gt_classes is not None:
      gt_boxes, gt_classes = base_novel.remove_novel_groundtruth(
        gt_boxes, gt_classes, self.vild_head.base_class_mask
      )
    outputs = super().call(
      images,
      image_shape,
      anchor_boxes=anchor_boxes,
      gt_boxes=gt_boxes,
      gt_classes=gt_classes,
      gt_masks=gt_masks,
      gt_outer_boxes=gt_outer_boxes,
      training=training,
    )
    if training and distill_rois is not None:
      roi_features = self.roi_aligner(outputs['decoder_features'], distill_rois)
      outputs['distill_region_embeddings'] = self.vild_head.image_embeddings(roi_features)
    return outputs


def build_vild_maskrcnn(
  input_specs: tf_keras.layers.InputSpec,
  model_config: maskrcnn_cfg.MaskRCNN,
  category_embeddings,
  base_class_mask=None,
  temperature: float = vild_head.PAPER_TEMPERATURE,
  image_branch: bool = False,
  ensemble_lambda: float = score_ensemble.PAPER_ENSEMBLE_LAMBDA,
  l2_regularizer: tf_keras.regularizers.Regularizer | None = None,
) -> ViLDMaskRCNNModel:
  """Builds Model Garden's Mask R-CNN from `model_config`, then swaps in ViLD's head.

  `model_config.num_classes` is not used by the classifier: the category list is
  `category_embeddings` ([C, D], the text teacher's embeddings of the names). The config must ask
  for class-agnostic boxes and masks, which detecting unseen categories needs.
  """
  head_config = model_config.detection_head
  if not head_config.class_agnostic_bbox_pred:
    raise ValueError(
      'ViLD needs model.detection_head.class_agnostic_bbox_pred=true (boxes for categories '
      'named only at inference), got false'
    )
  if model_config.include_mask and not model_config.mask_head.class_agnostic:
    raise ValueError('ViLD needs model.mask_head.class_agnostic=true, got false')
  if model_config.roi_sampler.cascade_iou_thresholds:
    raise ValueError(
      'ViLD has one detection head; model.roi_sampler.cascade_iou_thresholds must be empty, got '
      f'{model_config.roi_sampler.cascade_iou_thresholds}'
    )
  mask_rcnn = factory.build_maskrcnn(input_specs, model_config, l2_regularizer=l2_regularizer)
  norm = model_config.norm_activation
  head = vild_head.ViLDDetectionHead(
    category_embeddings,
    base_class_mask=base_class_mask,
    temperature=temperature,
    image_branch=image_branch,
    ensemble_lambda=ensemble_lambda,
    num_convs=head_config.num_convs,
    num_filters=head_config.num_filters,
    use_separable_conv=head_config.use_separable_conv,
    num_fcs=head_config.num_fcs,
    fc_dims=head_config.fc_dims,
    activation=norm.activation,
    use_sync_bn=norm.use_sync_bn,
    norm_momentum=norm.norm_momentum,
    norm_epsilon=norm.norm_epsilon,
    kernel_regularizer=l2_regularizer,
    name='detection_head',
  )
  # The head hands the generator log-odds of its final scores (see ViLDDetectionHead).
  generator = detection_generator.DetectionGenerator(
    **{**mask_rcnn.detection_generator.get_config(), 'use_sigmoid_probability': True}
  )
  components = dict(mask_rcnn.get_config())
  components.update(detection_head=head, detection_generator=generator)
  return ViLDMaskRCNNModel(**components)
