"""CVRL pretraining parser: clip pairs from the video contract, eagerly and inside tf.data."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from projects.common import tfrecords
from projects.cvrl.configs import cvrl as exp_cfg
from projects.cvrl.dataloaders import pretrain_input


def _video_example(num_frames: int, label_indices=(3, 7), size: int = 24) -> bytes:
  """A video of random textured frames with the given label indices (possibly none)."""
  rng = np.random.default_rng(num_frames)
  frames = rng.integers(0, 256, size=(num_frames, size, size + 8, 3), dtype=np.uint8)
  example = tfrecords.make_video_example(tfrecords.encode_jpeg_frames(frames), label_indices=[0])
  labels = example.context.feature[tfrecords.LABEL_INDEX_KEY].int64_list.value
  del labels[:]
  labels.extend(label_indices)
  return example.SerializeToString()


def _params(**overrides) -> exp_cfg.PretrainDataConfig:
  return exp_cfg.PretrainDataConfig(feature_shape=(4, 16, 16, 3), temporal_stride=2, **overrides)


class PretrainInputTest(tf.test.TestCase, parameterized.TestCase):
  def _parse(self, serialized: bytes, is_training: bool, params=None):
    parse = pretrain_input.Parser(params or _params()).parse_fn(is_training)
    return parse(tfrecords.parse_video_example(serialized))

  @parameterized.product(is_training=[True, False], in_dataset=[False, True])
  def test_clip_pair_shapes_and_label(self, is_training, in_dataset):
    serialized = _video_example(num_frames=20)
    if in_dataset:
      dataset = tf.data.Dataset.from_tensors(serialized).map(tfrecords.parse_video_example)
      dataset = dataset.map(pretrain_input.Parser(_params()).parse_fn(is_training))
      self.assertEqual(dataset.element_spec[0]['image'].shape.as_list(), [2, 4, 16, 16, 3])
      features, label = next(iter(dataset))
    else:
      features, label = self._parse(serialized, is_training)
    clips = features[pretrain_input.IMAGE_KEY]
    self.assertEqual(clips.shape.as_list(), [2, 4, 16, 16, 3])
    self.assertEqual(clips.dtype, tf.float32)
    self.assertAllInRange(clips, 0.0, 1.0)
    self.assertEqual(int(label), 3)

  def test_views_differ(self):
    # Independent augmentation makes two clips of a video differ even when they start together.
    for seed in range(5):
      tf.random.set_seed(seed)
      features, _ = self._parse(_video_example(num_frames=20), is_training=True)
      clips = features[pretrain_input.IMAGE_KEY]
      self.assertGreater(float(tf.reduce_max(tf.abs(clips[0] - clips[1]))), 1e-3)

  def test_evaluation_pairs_repeat_and_training_pairs_do_not(self):
    serialized = _video_example(num_frames=20)
    eval_a, _ = self._parse(serialized, is_training=False)
    eval_b, _ = self._parse(serialized, is_training=False)
    self.assertAllEqual(eval_a['image'], eval_b['image'])
    train_a, _ = self._parse(serialized, is_training=True)
    train_b, _ = self._parse(serialized, is_training=True)
    self.assertNotAllClose(train_a['image'], train_b['image'])

  @parameterized.parameters(True, False)
  def test_centre_clip_is_the_unaugmented_centre_of_validation_videos(self, in_dataset):
    # Frame i is uniformly 10 * i: the clip's frames name the frames it took.
    frames = np.stack([np.full((24, 32, 3), 10 * i, np.uint8) for i in range(20)])
    serialized = tfrecords.make_video_example(
      tfrecords.encode_jpeg_frames(frames), label_indices=[2]
    ).SerializeToString()
    parser = pretrain_input.Parser(_params(min_image_size=16), centre_clip=True)
    if in_dataset:
      dataset = tf.data.Dataset.from_tensors(serialized).map(tfrecords.parse_video_example)
      features, _ = next(iter(dataset.map(parser.parse_fn(is_training=False))))
    else:
      features, _ = parser.parse_fn(is_training=False)(tfrecords.parse_video_example(serialized))
    clip = features[pretrain_input.CENTRE_CLIP_KEY]
    self.assertEqual(clip.shape.as_list(), [4, 16, 16, 3])
    # 4 frames at stride 2 span 8 of 20 frames: the centred span starts at frame 6.
    self.assertAllClose(tf.reduce_mean(clip, axis=[1, 2, 3]) * 255, [60, 80, 100, 120], atol=2)
    train_features, _ = parser.parse_fn(is_training=True)(tfrecords.parse_video_example(serialized))
    self.assertNotIn(pretrain_input.CENTRE_CLIP_KEY, train_features)
    features, _ = self._parse(serialized, is_training=False)
    self.assertNotIn(pretrain_input.CENTRE_CLIP_KEY, features)

  def test_decode_frames_decodes_each_requested_frame(self):
    frames = np.stack([np.full((8, 8, 3), 20 * i, np.uint8) for i in range(6)])
    encoded = tf.constant(tfrecords.encode_jpeg_frames(frames))
    indices = tf.constant([4, 1, 4, 5, 1])
    decoded = pretrain_input.decode_frames(encoded, indices)
    self.assertAllClose(
      tf.reduce_mean(tf.cast(decoded, tf.float32), axis=[1, 2, 3]), [80, 20, 80, 100, 20], atol=2
    )

  def test_short_video_and_unlabelled_video(self):
    features, label = self._parse(
      _video_example(num_frames=3, label_indices=()),
      is_training=True,
      params=_params(short_video='pad'),
    )
    self.assertEqual(features['image'].shape.as_list(), [2, 4, 16, 16, 3])
    self.assertEqual(int(label), pretrain_input.NO_LABEL)

  def test_validate_rejects_unknown_sampling_options(self):
    with self.assertRaisesRegex(ValueError, 'gap_distribution'):
      _params(gap_distribution='cubic').validate()
    with self.assertRaisesRegex(ValueError, 'short_video'):
      _params(short_video='wrap').validate()


if __name__ == '__main__':
  tf.test.main()
