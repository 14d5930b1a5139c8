"""train.py refuses bad input with one named error: corrupt TFRecords, labels, a foreign model_dir."""

import os

import numpy as np
import tensorflow as tf

from projects.common import tfrecords
from projects.common.testing import tiny_data
from train_test import run_train_py, tiny_demo_override


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

  def test_truncated_tfrecord_is_named(self):
    shard = sorted(tf.io.gfile.glob(self.data.train_pattern))[1]
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
    shard = sorted(tf.io.gfile.glob(self.data.train_pattern))[0]
    frames = tfrecords.encode_jpeg_frames(np.zeros([8, 32, 32, 3], np.uint8))
    with tf.io.TFRecordWriter(shard) as writer:
      for label in (3, 12, 4, 5):
        writer.write(tfrecords.make_video_example(frames, [label]).SerializeToString())
    result = self._train()
    self.assertEqual(result.returncode, 1, result.stderr[-3000:])
    self.assertIn(
      f'error: task.train_data.input_path: {shard} has label 12, outside task.train_data.num_classes=10',
      result.stderr,
    )

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
