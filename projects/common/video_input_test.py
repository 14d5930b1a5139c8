"""The supervised video parser flips training clips only when the config asks for it."""

import numpy as np
import tensorflow as tf

from projects.common import tfrecords, video_input
from projects.common.configs import video_data


def _left_bright_video() -> bytes:
  frames = np.zeros([6, 32, 32, 3], np.uint8)
  frames[:, :, :16] = 255
  example = tfrecords.make_video_example(tfrecords.encode_jpeg_frames(frames), [1])
  return example.SerializeToString()


def _params(random_flip: bool) -> video_data.VideoDataConfig:
  return video_data.VideoDataConfig(
    is_training=True,
    num_classes=2,
    feature_shape=(4, 32, 32, 3),
    aug_min_area_ratio=1.0,
    aug_min_aspect_ratio=1.0,
    aug_max_aspect_ratio=1.0,
    aug_random_flip=random_flip,
  )


def _parsed_clips(random_flip: bool, num_samples: int = 24) -> np.ndarray:
  parser = video_input.Parser(_params(random_flip), tfrecords.IMAGE_KEY, tfrecords.LABEL_INDEX_KEY)
  decoded = {
    tfrecords.IMAGE_KEY: tfrecords.parse_video_example(_left_bright_video())[tfrecords.IMAGE_KEY],
    tfrecords.LABEL_INDEX_KEY: tf.constant([1], tf.int64),
  }
  dataset = tf.data.Dataset.from_tensors(decoded).repeat(num_samples)
  dataset = dataset.map(parser.parse_fn(is_training=True))
  return np.stack([features['image'].numpy() for features, _ in dataset])


class ParserTest(tf.test.TestCase):
  def test_no_flip_keeps_handedness(self):
    clips = _parsed_clips(random_flip=False)
    self.assertEqual(clips.shape, (24, 4, 32, 32, 3))
    left, right = (
      clips[..., :16, :].mean(axis=(1, 2, 3, 4)),
      clips[..., 16:, :].mean(axis=(1, 2, 3, 4)),
    )
    self.assertTrue(np.all(left > right))

  def test_flip_mirrors_some_clips(self):
    clips = _parsed_clips(random_flip=True)
    left, right = (
      clips[..., :16, :].mean(axis=(1, 2, 3, 4)),
      clips[..., 16:, :].mean(axis=(1, 2, 3, 4)),
    )
    # P(no flip in 24 draws) = 2^-24.
    self.assertTrue(np.any(left < right))
    self.assertTrue(np.any(left > right))

  def test_label_outside_num_classes_stops_the_pipeline(self):
    # tf.one_hot would turn label 2 of 2 classes into an all-zero target without a word.
    parser = video_input.Parser(_params(False), tfrecords.IMAGE_KEY, tfrecords.LABEL_INDEX_KEY)
    decoded = {
      tfrecords.IMAGE_KEY: tfrecords.parse_video_example(_left_bright_video())[tfrecords.IMAGE_KEY],
      tfrecords.LABEL_INDEX_KEY: tf.constant([2], tf.int64),
    }
    dataset = tf.data.Dataset.from_tensors(decoded).map(parser.parse_fn(is_training=False))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, 'label outside num_classes=2'):
      next(iter(dataset))


if __name__ == '__main__':
  tf.test.main()
