"""Tests for video_features: Model Garden's eval views, view averaging and the checked restore."""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from official.core import task_factory
from official.vision.dataloaders import video_input

from projects import registry_imports  # noqa: F401  (registers the experiments)
from projects.common import experiment_config, tfrecords, video_features

TINY_OVERRIDE = (
  'task.model.backbone.slim_r3d.width_multiplier=0.125,'
  'task.train_data.input_path=unused,task.validation_data.input_path=unused'
)


def _jpeg_video(num_frames: int = 12, height: int = 40, width: int = 56) -> tf.Tensor:
  frames = np.random.RandomState(0).randint(0, 256, [num_frames, height, width, 3], np.uint8)
  return tf.constant(tfrecords.encode_jpeg_frames(frames))


def _tiny_model(params_override: str = TINY_OVERRIDE):
  params = experiment_config.build_experiment_config(
    'video_classification_demo', (), params_override
  )
  return task_factory.get_task(params.task).build_model()


class SampleViewsTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.product(num_clips=[1, 3], num_crops=[1, 3])
  def test_matches_model_garden_eval(self, num_clips, num_crops):
    sampling = video_features.ViewSampling(
      num_frames=4,
      temporal_stride=2,
      min_image_size=24,
      crop_size=(16, 20),
      num_clips=num_clips,
      num_crops=num_crops,
    )
    encoded = _jpeg_video()
    views = video_features.sample_views(encoded, sampling)
    self.assertEqual(views.dtype, tf.uint8)
    self.assertEqual(views.shape, (num_clips * num_crops, 4, 16, 20, 3))
    expected = video_input.process_image(
      encoded,
      is_training=False,
      num_frames=4,
      stride=2,
      num_test_clips=num_clips,
      min_resize=24,
      crop_size=(16, 20),
      num_crops=num_crops,
    )
    self.assertAllEqual(
      video_features.normalize_frames(views, zero_centering_image=False),
      tf.reshape(expected, views.shape),
    )

  def test_in_tf_data_and_from_uint8(self):
    sampling = video_features.ViewSampling(4, 1, 24, (24, 24), num_clips=2)
    encoded = _jpeg_video()
    eager = video_features.sample_views(encoded, sampling)
    in_dataset = next(
      iter(
        tf.data.Dataset.from_tensors(encoded).map(
          lambda frames: video_features.sample_views(frames, sampling)
        )
      )
    )
    self.assertAllEqual(in_dataset, eager)
    decoded = tf.map_fn(tf.io.decode_jpeg, encoded, fn_output_signature=tf.uint8)
    self.assertAllEqual(video_features.sample_views(decoded, sampling), eager)

  def test_rejects_unsupported_crops(self):
    with self.assertRaisesRegex(ValueError, 'num_crops must be 1'):
      video_features.ViewSampling(4, 1, 24, (24, 24), num_crops=2)


class AverageViewFeaturesTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.parameters(1, 2, 3, 7, 100)
  def test_means_per_video_in_order(self, batch_size):
    rng = np.random.RandomState(batch_size)
    videos = [
      (f'v{i}', rng.rand(num_views, 2, 3).astype(np.float32))
      for i, num_views in enumerate([3, 1, 2, 5])
    ]
    batch_sizes = []

    def embed(batch):
      batch_sizes.append(len(batch))
      return batch.sum(axis=1)  # [batch, 3]: one "feature" row per view.

    results = list(video_features.average_view_features(iter(videos), embed, batch_size))
    self.assertEqual([key for key, _ in results], ['v0', 'v1', 'v2', 'v3'])
    for (_, feature), (_, views) in zip(results, videos, strict=True):
      self.assertAllClose(feature, views.sum(axis=1).mean(axis=0))
    self.assertEqual(sum(batch_sizes), 11)
    self.assertTrue(all(size == batch_size for size in batch_sizes[:-1]))


class RestoreCheckpointTest(tf.test.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.trained = _tiny_model()
    # Moved off the initial values, so a restored variable is told apart from a fresh one.
    for variable in cls.trained.variables:
      variable.assign(variable + 0.5)

  def _new_dir(self) -> str:
    return tempfile.mkdtemp(dir=self.get_temp_dir())

  def _assert_backbone_equal(self, model):
    for restored, saved in zip(
      model.backbone.variables, self.trained.backbone.variables, strict=True
    ):
      self.assertAllEqual(restored, saved)

  def test_restores_from_model_dir_and_prefix(self):
    model_dir = self._new_dir()
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=self.trained), model_dir, 3)
    prefix = manager.save()
    for checkpoint in (model_dir, prefix):
      model = _tiny_model()
      self.assertEqual(
        video_features.restore_checkpoint(model, checkpoint, whole_model=True), prefix
      )
      self._assert_backbone_equal(model)
      self.assertAllEqual(model.variables[-1], self.trained.variables[-1])

  def test_backbone_from_top_level_entry(self):
    # As Model Garden's trainer writes it: `backbone` (checkpoint_items) beside a `model` of
    # another architecture, here the backbone alone.
    prefix = tf.train.Checkpoint(backbone=self.trained.backbone).write(
      os.path.join(self._new_dir(), 'ckpt')
    )
    model = _tiny_model()
    video_features.restore_checkpoint(model, prefix)
    self._assert_backbone_equal(model)
    with self.assertRaisesRegex(video_features.CheckpointError, 'whole model'):
      video_features.restore_checkpoint(_tiny_model(), prefix, whole_model=True)

  def test_wrong_checkpoints_name_the_path(self):
    folder = self._new_dir()
    wider = _tiny_model(TINY_OVERRIDE.replace('0.125', '0.25'))
    cases = {
      'other width': tf.train.Checkpoint(model=wider).write(os.path.join(folder, 'wider')),
      'other model': tf.train.Checkpoint(model=tf.train.Checkpoint(v=tf.Variable(1.0))).write(
        os.path.join(folder, 'other')
      ),
    }
    for name, prefix in cases.items():
      with self.subTest(name):
        with self.assertRaisesRegex(video_features.CheckpointError, f"'{prefix}' does not hold"):
          video_features.restore_checkpoint(_tiny_model(), prefix)

  def test_missing_checkpoints(self):
    folder = self._new_dir()
    with self.assertRaisesRegex(video_features.CheckpointError, 'names no checkpoint'):
      video_features.resolve_checkpoint(folder)
    with self.assertRaisesRegex(video_features.CheckpointError, 'not found'):
      video_features.resolve_checkpoint(os.path.join(folder, 'ckpt-7'))


class ChooseCheckpointTest(tf.test.TestCase):
  def _model_dir_with_best(self) -> tuple[str, str, str]:
    """A model_dir as train.py leaves it: ckpt-1, ckpt-2 and best_ckpt/ (best at step 1)."""
    model_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    checkpoint = tf.train.Checkpoint(v=tf.Variable(1.0))
    manager = tf.train.CheckpointManager(checkpoint, model_dir, 3)
    manager.save()
    best_dir = os.path.join(model_dir, 'best_ckpt')
    best = tf.train.CheckpointManager(checkpoint, best_dir, 1, checkpoint_name='best_ckpt').save()
    with open(os.path.join(best_dir, 'info.json'), 'w') as f:
      json.dump({'top_1_accuracy': 0.75, 'best_ckpt_global_step': 1.0}, f)
    return model_dir, best, manager.save()

  def test_model_dir_prefers_its_best_checkpoint(self):
    model_dir, best, _ = self._model_dir_with_best()
    chosen = video_features.choose_checkpoint(model_dir, 'best_ckpt', 'top_1_accuracy')
    self.assertEqual(chosen.path, best)
    self.assertTrue(chosen.is_best)
    self.assertEqual(chosen.reason, 'best checkpoint (top_1_accuracy 0.7500 at step 1)')
    # The best folder or prefix itself is recognised as best too.
    for checkpoint in (os.path.dirname(best), best):
      chosen = video_features.choose_checkpoint(checkpoint, best_checkpoint_metric='top_1_accuracy')
      self.assertEqual(
        (chosen.path, chosen.reason), (best, 'best checkpoint (top_1_accuracy 0.7500 at step 1)')
      )

  def test_latest_without_a_best_checkpoint(self):
    model_dir, _, latest = self._model_dir_with_best()
    for subdir in ('', 'no_such_subdir'):
      chosen = video_features.choose_checkpoint(model_dir, subdir)
      self.assertEqual((chosen.path, chosen.reason), (latest, 'latest checkpoint'))
      self.assertFalse(chosen.is_best)
    chosen = video_features.choose_checkpoint(latest, 'best_ckpt')
    self.assertEqual((chosen.path, chosen.reason), (latest, 'checkpoint given'))


if __name__ == '__main__':
  tf.test.main()
