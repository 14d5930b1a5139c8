"""Round trip of the RoI fields through a serialized tf.train.Example."""

import numpy as np
import tensorflow as tf

from projects.vild.dataloaders import roi_features


class RoiFeaturesTest(tf.test.TestCase):
  def test_boxes_and_embeddings_survive_an_example(self):
    boxes = np.array([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0.3, 0.3, 0.4, 0.9]])
    embeddings = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    example = tf.train.Example(
      features=tf.train.Features(feature=roi_features.roi_feature_dict(boxes, embeddings))
    )
    parsed = tf.io.parse_single_example(example.SerializeToString(), roi_features.parse_spec())
    decoded_boxes, decoded_embeddings = roi_features.decode_rois(parsed)
    self.assertAllClose(decoded_boxes, boxes)
    self.assertAllClose(decoded_embeddings, embeddings)

  def test_embeddings_of_another_count_are_rejected(self):
    with self.assertRaisesRegex(ValueError, r'num_boxes=2'):
      roi_features.roi_feature_dict(np.zeros([2, 4]), np.zeros([3, 8]))


if __name__ == '__main__':
  tf.test.main()
