"""ViLD's decoder and parser on tiny digit scenes: novel instances dropped, proposals moved with
the groundtruth through flips and scale jitter, padding, and records without proposals."""

import os
import tempfile

import numpy as np
import tensorflow as tf

from projects.vild.dataloaders import vild_input
from projects.vild.tasks import tiny_vild_data

OUTPUT_SIZE = 64
MAX_NUM_ROIS = 12
# Digit ids 3, 6 and 9 ('two', 'five', 'eight') are novel.
BASE_CLASS_MASK = [i not in (3, 6, 9) for i in range(1, 11)]


def _parser(**overrides) -> vild_input.Parser:
  params = {
    'base_class_mask': BASE_CLASS_MASK,
    'max_num_rois': MAX_NUM_ROIS,
    'roi_embedding_dim': tiny_vild_data.EMBEDDING_DIM,
    'output_size': [OUTPUT_SIZE, OUTPUT_SIZE],
    'min_level': 3,
    'max_level': 5,
    'num_scales': 1,
    'aspect_ratios': [1.0],
    'anchor_size': 3.0,
    'include_mask': True,
    'mask_crop_size': 28,
    'max_num_instances': 8,
  }
  params.update(overrides)
  return vild_input.Parser(**params)


class ViLDInputTest(tf.test.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data = tiny_vild_data.tiny_vild_digit_scenes(os.path.join(tempfile.mkdtemp(), 'data'))
    cls.records = list(tf.data.TFRecordDataset(cls.data.train_pattern))
    cls.decoder = vild_input.TfExampleDecoder(include_rois=True, include_mask=True)

  def test_decoder_reads_the_proposals(self):
    decoded = self.decoder.decode(self.records[0])
    num_instances = int(tf.shape(decoded['groundtruth_classes'])[0])
    boxes = decoded[vild_input.ROI_BOXES].numpy()
    # The tiny data's proposals: every groundtruth box, then the whole image.
    self.assertAllClose(boxes[:num_instances], decoded['groundtruth_boxes'])
    self.assertAllClose(boxes[-1], tiny_vild_data.WHOLE_IMAGE_BOX)
    self.assertEqual(
      decoded[vild_input.ROI_EMBEDDINGS].shape,
      (num_instances + 1, tiny_vild_data.EMBEDDING_DIM),
    )

  def test_proposals_follow_the_groundtruth_through_flips_and_jitter(self):
    parser = _parser(aug_rand_hflip=True, aug_rand_vflip=True, aug_scale_min=0.5, aug_scale_max=1.5)
    parse = parser.parse_fn(is_training=True)
    tf.random.set_seed(0)
    for _ in range(3):
      for record in self.records:
        _, labels = parse(self.decoder.decode(record))
        gt_classes = labels['gt_classes'].numpy()
        self.assertFalse(set(gt_classes.tolist()) & {3, 6, 9})
        rois = labels[vild_input.DISTILL_ROIS].numpy()
        teacher = labels[vild_input.DISTILL_TEACHER_EMBEDDINGS].numpy()
        padded = np.all(rois == -1, axis=-1)
        self.assertTrue(padded.any())
        self.assertAllEqual(teacher[padded], np.zeros_like(teacher[padded]))
        self.assertTrue(np.all(rois[~padded] >= 0) and np.all(rois[~padded] <= OUTPUT_SIZE))
        # Each kept (base) groundtruth box is one of the proposals, in the same coordinates.
        for box in labels['gt_boxes'].numpy()[gt_classes > 0]:
          self.assertLess(np.abs(rois[~padded] - box).max(axis=1).min(), 1e-3)

  def test_the_rpn_never_sees_novel_objects(self):
    example = tf.train.Example.FromString(self.records[0].numpy())
    labels_field = example.features.feature['image/object/class/label'].int64_list
    num_instances = len(labels_field.value)

    def positive_anchors(class_id: int) -> int:
      labels_field.value[:] = [class_id] * num_instances
      _, labels = _parser().parse_fn(is_training=True)(
        self.decoder.decode(tf.constant(example.SerializeToString()))
      )
      return sum(
        int(tf.reduce_sum(tf.cast(t == 1, tf.int32))) for t in labels['rpn_score_targets'].values()
      )

    self.assertGreater(positive_anchors(1), 0)  # Every object a (base) 'zero'.
    self.assertEqual(positive_anchors(3), 0)  # Every object a (novel) 'two'.

  def test_records_without_proposals_give_only_padding(self):
    example = tf.train.Example.FromString(self.records[0].numpy())
    for key in list(example.features.feature):
      if key.startswith('image/roi/'):
        del example.features.feature[key]
    _, labels = _parser().parse_fn(is_training=True)(
      self.decoder.decode(tf.constant(example.SerializeToString()))
    )
    self.assertAllEqual(labels[vild_input.DISTILL_ROIS], -np.ones([MAX_NUM_ROIS, 4]))

  def test_embedding_size_mismatch_is_named(self):
    parser = _parser(roi_embedding_dim=tiny_vild_data.EMBEDDING_DIM + 1)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, r'must hold 9 values per proposal'):
      parser.parse_fn(is_training=True)(self.decoder.decode(self.records[0]))

  def test_without_rois_the_labels_are_model_gardens(self):
    decoder = vild_input.TfExampleDecoder(include_mask=True)
    _, labels = _parser(max_num_rois=0).parse_fn(is_training=True)(decoder.decode(self.records[0]))
    self.assertNotIn(vild_input.DISTILL_ROIS, labels)
    self.assertNotIn(vild_input.DISTILL_TEACHER_EMBEDDINGS, labels)

  def test_evaluation_keeps_novel_groundtruth(self):
    decoder = vild_input.TfExampleDecoder(include_mask=True)
    records = tf.data.TFRecordDataset(tf.io.gfile.glob(self.data.validation_pattern))
    classes = set()
    for record in records:
      _, labels = _parser(max_num_rois=0).parse_fn(is_training=False)(decoder.decode(record))
      classes |= set(labels['groundtruths']['classes'].numpy().tolist())
    raw = set()
    for record in records:
      example = tf.train.Example.FromString(record.numpy())
      raw |= set(example.features.feature['image/object/class/label'].int64_list.value)
    self.assertEqual(classes - {-1}, raw)


if __name__ == '__main__':
  tf.test.main()
