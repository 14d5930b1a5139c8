"""Tests for the base/novel split: novel groundtruth becomes padding."""

import numpy as np
import tensorflow as tf

from projects.vild.ops import base_novel


class BaseNovelTest(tf.test.TestCase):
  def test_novel_instances_become_padding(self):
    base = tf.constant([True, False, True])
    gt_classes = tf.constant([[1, 2, 3, -1], [2, 2, 0, -1]])
    gt_boxes = tf.reshape(tf.range(32, dtype=tf.float32) + 1.0, [2, 4, 4])
    boxes, classes = base_novel.remove_novel_groundtruth(gt_boxes, gt_classes, base)
    self.assertAllEqual(classes, [[1, -1, 3, -1], [-1, -1, 0, -1]])
    self.assertAllEqual(boxes[0, 1], [-1.0] * 4)
    self.assertAllEqual(boxes[1, :2], [[-1.0] * 4] * 2)
    self.assertAllEqual(boxes[0, 0], gt_boxes[0, 0])
    self.assertAllEqual(boxes[0, 3], gt_boxes[0, 3])

  def test_is_novel_class_leaves_background_and_padding_alone(self):
    novel = base_novel.is_novel_class(tf.constant([-1, 0, 1, 2]), tf.constant([False, True]))
    self.assertAllEqual(novel, [False, False, True, False])

  def test_as_base_class_mask(self):
    self.assertAllEqual(base_novel.as_base_class_mask(None, 3), [False] * 3)
    self.assertAllEqual(base_novel.as_base_class_mask([1, 0, 1], 3), [True, False, True])
    self.assertEqual(base_novel.as_base_class_mask(np.array([1, 0]), 2).dtype, bool)
    with self.assertRaisesRegex(ValueError, r'shape \(2,\).*3 categories'):
      base_novel.as_base_class_mask([True, False], 3)
    with self.assertRaisesRegex(ValueError, 'booleans or 0/1'):
      base_novel.as_base_class_mask([2, 0, 1], 3)

  def test_keep_base_instances_eager_and_in_tf_data(self):
    decoded = {
      'image': tf.zeros([4, 4, 3]),
      'groundtruth_classes': tf.constant([1, 2, 3], tf.int64),
      'groundtruth_boxes': tf.constant([[0.0, 0.0, 1.0, 1.0]] * 3) * [[1.0], [2.0], [3.0]],
      'groundtruth_instance_masks': tf.ones([3, 4, 4]),
      'groundtruth_is_crowd': tf.constant([False, True, False]),
    }
    base = tf.constant([True, False, True])
    for kept in (
      base_novel.keep_base_instances(decoded, base),
      next(
        iter(
          tf.data.Dataset.from_tensors(decoded).map(
            lambda d: base_novel.keep_base_instances(d, base)
          )
        )
      ),
    ):
      self.assertAllEqual(kept['groundtruth_classes'], [1, 3])
      self.assertAllEqual(kept['groundtruth_boxes'][:, 2], [1.0, 3.0])
      self.assertEqual(kept['groundtruth_instance_masks'].shape[0], 2)
      self.assertAllEqual(kept['groundtruth_is_crowd'], [False, False])
      self.assertEqual(kept['image'].shape, (4, 4, 3))


if __name__ == '__main__':
  tf.test.main()
