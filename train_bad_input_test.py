"""train.py refuses bad input with one named error: corrupt TFRecords, labels, too few detection
classes, a foreign model_dir."""

import os

import numpy as np
import tensorflow as tf

from projects.common import tfrecords
from projects.common.datasets import digit_scenes
from projects.common.testing import tiny_data
from train_test import run_train_py, tiny_demo_override


def tiny_detection_override(info: digit_scenes.DigitScenesInfo) -> str:
  """A detection demo on `info`'s scenes at its smallest input (128^2: P7 needs 2^7), batch 2."""
  return ','.join(
    [
      f'task.train_data.input_path={info.train_pattern}',
      f'task.validation_data.input_path={info.validation_pattern}',
      f'task.annotation_file={info.validation_annotation_file}',
      'task.train_data.global_batch_size=2',
      'task.validation_data.global_batch_size=2',
      'task.train_data.shuffle_buffer_size=4',
      'trainer.train_steps=2',
      'trainer.steps_per_loop=1',
      'trainer.summary_interval=1',
      'trainer.checkpoint_interval=1',
      'trainer.validation_interval=2',
      'trainer.validation_steps=1',
    ]
  )


class BadInputTest(tf.test.TestCase):
  def setUp(self):
    super().setUp()
    self.data = tiny_data.tiny_moving_mnist(os.path.join(self.get_temp_dir(), 'data'))
    self.model_dir = os.path.join(self.get_temp_dir(), 'run')

  def _train(self, *extra: str, override: str = ''):
    return run_train_py(
      '--experiment=video_classification_demo',
      '--mode=train',
      f'--model_dir={self.model_dir}',
      f'--params_override={tiny_demo_override(self.data)}{override}',
      *extra,
    )

  def _only_train_shard(self, index: int) -> str:
    """Deletes every other training shard: a few steps read shards in random order and could
    finish before reaching the damaged one."""
    shards = sorted(tf.io.gfile.glob(self.data.train_pattern))
    for other in shards[:index] + shards[index + 1 :]:
      os.remove(other)
    return shards[index]

  def test_truncated_tfrecord_is_named(self):
    shard = self._only_train_shard(1)
    with open(shard, 'rb') as f:
      data = f.read()
    with open(shard, 'wb') as f:
      f.write(data[: len(data) // 2])
    result = self._train()
    self.assertEqual(result.returncode, 1, result.stderr[-3000:])
    self.assertIn(
      f'error: task.train_data.input_path: {shard} is corrupt or truncated', result.stderr
    )

  def test_label_outside_num_classes_is_named(self):
    shard = self._only_train_shard(0)
    frames = tfrecords.encode_jpeg_frames(np.zeros([8, 32, 32, 3], np.uint8))
    with tf.io.TFRecordWriter(shard) as writer:
      for label in (3, 12, 4, 5):
        writer.write(tfrecords.make_video_example(frames, [label]).SerializeToString())
    # In file order: four steps drawn from a shuffle buffer over the repeated records miss
    # label 12 about one run in ten.
    result = self._train(override=',task.train_data.shuffle_buffer_size=1')
    self.assertEqual(result.returncode, 1, result.stderr[-3000:])
    self.assertIn(
      f'error: task.train_data.input_path: {shard} has label 12, outside task.train_data.num_classes=10',
      result.stderr,
    )

  def test_detector_with_fewer_classes_than_the_data_stops_before_training(self):
    info = tiny_data.tiny_digit_scenes(os.path.join(self.get_temp_dir(), 'scenes'))
    label_map = os.path.join(os.path.dirname(info.train_pattern), 'categories.json')
    result = run_train_py(
      '--experiment=retinanet_spinenet_demo',
      '--mode=train',
      f'--model_dir={self.model_dir}',
      f'--params_override={tiny_detection_override(info)},task.model.num_classes=10',
    )
    self.assertEqual(result.returncode, 2, result.stderr[-3000:])
    error_lines = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
    self.assertEqual(
      error_lines,
      [
        'error: task.model.num_classes=10 is too small for task.train_data: largest class id 10 '
        f'in {label_map}; ids run 0..num_classes-1 with 0 for background, so set '
        'task.model.num_classes=11 (or more)'
      ],
    )
    self.assertNotIn('Traceback', result.stderr)
    self.assertIsNone(tf.train.latest_checkpoint(self.model_dir))

  def test_model_dir_of_another_model_is_refused_unless_allowed(self):
    first = self._train(override=',trainer.train_steps=2')
    self.assertEqual(first.returncode, 0, first.stderr[-3000:])
    wider = ',task.model.backbone.slim_r3d.width_multiplier=0.5'
    refused = self._train(override=f',trainer.train_steps=4{wider}')
    self.assertEqual(refused.returncode, 2)
    self.assertIn(
      'of a different model (task.model.backbone.slim_r3d.width_multiplier', refused.stderr
    )
    self.assertEqual(tf.train.latest_checkpoint(self.model_dir).rsplit('-', 1)[-1], '2')
    # Same model, longer schedule: resumes.
    resumed = self._train(override=',trainer.train_steps=4')
    self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
    self.assertEqual(tf.train.latest_checkpoint(self.model_dir).rsplit('-', 1)[-1], '4')
