"""input_errors names the TFRecord file behind a corrupt record or an out-of-range label."""

import os

import numpy as np
import tensorflow as tf

from projects.common import input_errors, tfrecords
from projects.video_classification.configs import video_classification


def _write_videos(path: str, labels: list[int]) -> None:
  frames = tfrecords.encode_jpeg_frames(np.zeros([2, 8, 8, 3], np.uint8))
  with tf.io.TFRecordWriter(path) as writer:
    for label in labels:
      writer.write(tfrecords.make_video_example(frames, [label]).SerializeToString())


class InputErrorsTest(tf.test.TestCase):
  def setUp(self):
    super().setUp()
    self.folder = self.get_temp_dir()
    self.good = os.path.join(self.folder, 'train-00000-of-00002.tfrecord')
    self.other = os.path.join(self.folder, 'train-00001-of-00002.tfrecord')
    _write_videos(self.good, [0, 1])
    _write_videos(self.other, [1, 0])
    self.task = video_classification.VideoClassificationTask()
    self.task.train_data.num_classes = 2
    self.task.train_data.input_path = os.path.join(self.folder, 'train-*')

  def test_truncated_file_is_named(self):
    with open(self.other, 'rb') as f:
      data = f.read()
    with open(self.other, 'wb') as f:
      f.write(data[: len(data) - 7])
    with self.assertRaises(tf.errors.DataLossError) as raised:
      for _ in tf.data.TFRecordDataset(input_errors.input_files(self.task.train_data.input_path)):
        pass
    message = input_errors.explain(self.task, 'train', raised.exception)
    self.assertIn(f'task.train_data.input_path: {self.other} is corrupt or truncated', message)

  def test_flipped_byte_is_named(self):
    with open(self.good, 'r+b') as f:
      f.seek(20)
      byte = f.read(1)
      f.seek(20)
      f.write(bytes([byte[0] ^ 0xFF]))
    corrupt = input_errors.first_corrupt_file(
      input_errors.input_files(self.task.train_data.input_path)
    )
    self.assertEqual(corrupt[0], self.good)

  def test_label_out_of_range_is_named(self):
    _write_videos(self.other, [1, 5])
    error = tf.errors.InvalidArgumentError(
      None, None, 'assertion failed: label outside num_classes=2'
    )
    message = input_errors.explain(self.task, 'train_and_eval', error)
    self.assertEqual(
      message,
      f'task.train_data.input_path: {self.other} has label 5, outside '
      'task.train_data.num_classes=2 '
      '(labels run from 0 to 1)',
    )

  def test_unrelated_error_is_not_blamed_on_the_data(self):
    error = tf.errors.InvalidArgumentError(None, None, 'incompatible shapes')
    self.assertIsNone(input_errors.explain(self.task, 'train', error))
    self.assertIsNone(
      input_errors.explain(self.task, 'train', tf.errors.DataLossError(None, None, 'x'))
    )
