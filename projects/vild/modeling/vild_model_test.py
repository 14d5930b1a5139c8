"""End-to-end tests of ViLD on Model Garden's Mask R-CNN with a tiny ResNet on 64^2 images."""

import numpy as np
import tensorflow as tf
import tf_keras
from official.vision.configs import backbones, decoders
from official.vision.configs import maskrcnn as maskrcnn_cfg

from projects.vild.losses import vild_losses
from projects.vild.modeling import vild_model

IMAGE_SIZE = 64
EMBEDDING_DIM = 8
NUM_CATEGORIES = 4
BASE_CLASS_MASK = [True, True, False, True]  # Category 3 is novel.


def _make_test_config(**overrides) -> maskrcnn_cfg.MaskRCNN:
  params = {
    'num_classes': NUM_CATEGORIES + 1,
    'input_size': [IMAGE_SIZE, IMAGE_SIZE, 3],
    'include_mask': True,
    'min_level': 3,
    'max_level': 5,
    'anchor': maskrcnn_cfg.Anchor(anchor_size=2.0, num_scales=1),
    'backbone': backbones.Backbone(
      type='resnet', resnet=backbones.ResNet(model_id=10, depth_multiplier=0.25)
    ),
    'decoder': decoders.Decoder(type='fpn', fpn=decoders.FPN(num_filters=16)),
    'rpn_head': maskrcnn_cfg.RPNHead(num_convs=1, num_filters=16),
    'detection_head': maskrcnn_cfg.DetectionHead(
      num_convs=0, num_fcs=1, fc_dims=32, class_agnostic_bbox_pred=True
    ),
    'mask_head': maskrcnn_cfg.MaskHead(num_convs=1, num_filters=8, class_agnostic=True),
    'roi_generator': maskrcnn_cfg.ROIGenerator(
      pre_nms_top_k=100, num_proposals=16, test_pre_nms_top_k=100, test_num_proposals=16
    ),
    'roi_sampler': maskrcnn_cfg.ROISampler(num_sampled_rois=16),
    'mask_sampler': maskrcnn_cfg.MaskSampler(num_sampled_masks=4),
    'detection_generator': maskrcnn_cfg.DetectionGenerator(
      max_num_detections=10, pre_nms_top_k=50, pre_nms_score_threshold=0.0
    ),
  }
  params.update(overrides)
  return maskrcnn_cfg.MaskRCNN(**params)


def _category_embeddings(num_categories=NUM_CATEGORIES, seed=0):
  return np.random.default_rng(seed).normal(size=(num_categories, EMBEDDING_DIM))


def _make_test_model(config=None, **overrides):
  params = {
    'category_embeddings': _category_embeddings(),
    'base_class_mask': BASE_CLASS_MASK,
  }
  params.update(overrides)
  return vild_model.build_vild_maskrcnn(
    tf_keras.layers.InputSpec(shape=[None, IMAGE_SIZE, IMAGE_SIZE, 3]),
    config or _make_test_config(),
    **params,
  )


def _images(batch=2):
  images = tf.random.stateless_uniform([batch, IMAGE_SIZE, IMAGE_SIZE, 3], seed=[0, 1])
  return images, tf.constant([[IMAGE_SIZE, IMAGE_SIZE]] * batch, tf.float32)


def _training_inputs():
  # Each image: a base (1), a novel (3) and a base (4) instance, then padding.
  boxes = [[4.0, 4.0, 30.0, 30.0], [34.0, 34.0, 62.0, 62.0], [4.0, 36.0, 28.0, 60.0]]
  gt_boxes = tf.constant([boxes + [[-1.0] * 4]] * 2)
  gt_classes = tf.constant([[1, 3, 4, -1]] * 2)
  gt_masks = tf.ones([2, 4, 28, 28])
  distill_rois = tf.constant([[[0.0, 0.0, 32.0, 32.0], [8.0, 8.0, 56.0, 56.0], [-1.0] * 4]] * 2)
  return gt_boxes, gt_classes, gt_masks, distill_rois


class ViLDMaskRCNNTest(tf.test.TestCase):
  def test_training_step_keeps_novel_out_and_distills_proposals(self):
    model = _make_test_model(image_branch=True)
    images, image_shape = _images()
    gt_boxes, gt_classes, gt_masks, distill_rois = _training_inputs()
    teacher = tf.random.stateless_normal([2, 3, EMBEDDING_DIM], seed=[2, 3])
    with tf.GradientTape() as tape:
      outputs = model(
        images,
        image_shape,
        gt_boxes=gt_boxes,
        gt_classes=gt_classes,
        gt_masks=gt_masks,
        distill_rois=distill_rois,
        training=True,
      )
      head = model.vild_head
      text_loss = vild_losses.vild_text_loss(
        outputs['class_outputs'], outputs['class_targets'], head.base_class_mask
      )
      image_loss = vild_losses.vild_image_loss(
        outputs['distill_region_embeddings'], teacher, vild_losses.valid_proposals(distill_rois)
      )
      loss = text_loss + image_loss
    # Novel category 3 is never a target, base categories are.
    class_targets = outputs['class_targets'].numpy()
    self.assertNotIn(3, class_targets)
    self.assertNotIn(3, outputs['mask_class_targets'].numpy())
    self.assertContainsSubset({1, 4}, set(class_targets.ravel()))
    self.assertEqual(outputs['class_outputs'].shape, (2, 16, NUM_CATEGORIES + 1))
    # Training outputs are ViLD-text logits (learned background logit first), not inference
    # log-odds, whose background column is zero.
    self.assertNotAllClose(outputs['class_outputs'][..., 0], tf.zeros([2, 16]))
    self.assertEqual(outputs['box_outputs'].shape, (2, 16, 4))
    embeddings = outputs['distill_region_embeddings']
    self.assertEqual(embeddings.shape, (2, 3, EMBEDDING_DIM))
    self.assertAllClose(tf.norm(embeddings, axis=-1), tf.ones([2, 3]))
    gradients = tape.gradient(loss, model.trainable_variables)
    by_name = {v.name: g for v, g in zip(model.trainable_variables, gradients, strict=True)}
    self.assertGreater(float(tf.norm(by_name[head.text_classifier.background_embedding.name])), 0)
    image_branch = [g for name, g in by_name.items() if 'image-branch-projection' in name]
    self.assertNotEmpty(image_branch)
    self.assertGreater(float(tf.norm(image_branch[0])), 0)

  def test_swapping_the_category_list_changes_output_classes(self):
    # At the paper's temperature an untrained head's scores saturate at 1.0; ties would let NMS
    # keep another of the equal-scored boxes once the classes are renamed.
    model = _make_test_model(temperature=1.0)
    images, image_shape = _images()
    before = model(images, image_shape, training=False)
    self.assertEqual(before['cls_outputs'].shape[-1], NUM_CATEGORIES + 1)
    self.assertAllEqual(before['cls_outputs'][..., 0], tf.zeros_like(before['cls_outputs'][..., 0]))
    num_valid = int(before['num_detections'][0])
    self.assertGreater(num_valid, 0)
    classes_before = before['detection_classes'][0, :num_valid].numpy()
    self.assertTrue(((classes_before >= 1) & (classes_before <= NUM_CATEGORIES)).all())

    # The same names in reverse order: the same detections, with class c renamed C + 1 - c.
    model.set_categories(_category_embeddings()[::-1])
    after = model(images, image_shape, training=False)
    self.assertEqual(int(after['num_detections'][0]), num_valid)
    self.assertCountEqual(
      zip(
        np.round(after['detection_scores'][0, :num_valid].numpy(), 5),
        after['detection_classes'][0, :num_valid].numpy(),
        strict=True,
      ),
      zip(
        np.round(before['detection_scores'][0, :num_valid].numpy(), 5),
        NUM_CATEGORIES + 1 - classes_before,
        strict=True,
      ),
    )

    # A longer list of new names.
    model.set_categories(_category_embeddings(num_categories=7, seed=5))
    longer = model(images, image_shape, training=False)
    self.assertEqual(longer['cls_outputs'].shape[-1], 8)
    classes = longer['detection_classes'][0, : int(longer['num_detections'][0])].numpy()
    self.assertTrue(((classes >= 1) & (classes <= 7)).all())

  def test_checkpoint_restores_into_a_model_with_another_category_list(self):
    model = _make_test_model()
    images, image_shape = _images(batch=1)
    model(images, image_shape, training=False)
    path = tf.train.Checkpoint(model=model).save(self.get_temp_dir() + '/ckpt')
    other = _make_test_model(
      category_embeddings=_category_embeddings(num_categories=6, seed=1), base_class_mask=None
    )
    other(images, image_shape, training=False)
    tf.train.Checkpoint(model=other).restore(path).assert_existing_objects_matched()
    background = model.vild_head.text_classifier.background_embedding
    self.assertAllEqual(other.vild_head.text_classifier.background_embedding, background)

  def test_config_must_ask_for_class_agnostic_boxes_and_masks(self):
    with self.assertRaisesRegex(ValueError, 'class_agnostic_bbox_pred=true'):
      _make_test_model(_make_test_config(detection_head=maskrcnn_cfg.DetectionHead()))
    with self.assertRaisesRegex(ValueError, 'mask_head.class_agnostic=true'):
      _make_test_model(_make_test_config(mask_head=maskrcnn_cfg.MaskHead()))


if __name__ == '__main__':
  tf.test.main()
