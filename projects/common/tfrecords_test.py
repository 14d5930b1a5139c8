"""Tests for projects.common.tfrecords (runs under pytest and as a plain script / Bazel py_test)."""

import os

import numpy as np
import tensorflow as tf

from projects.common import tfrecords


def _frames(num_frames: int = 3, height: int = 16, width: int = 24) -> np.ndarray:
  rng = np.random.default_rng(0)
  return rng.integers(0, 256, size=(num_frames, height, width, 3), dtype=np.uint8)


class TfrecordsTest(tf.test.TestCase):
  def test_round_trip(self):
    frames = _frames()
    encoded = tfrecords.encode_jpeg_frames(frames)
    self.assertLen(encoded, 3)
    example = tfrecords.make_video_example(
      encoded, label_indices=[4, 7, 11], label_texts=['run', 'jump', 'swim'], video_id='vid_01'
    )
    parsed = tfrecords.parse_video_example(tf.constant(example.SerializeToString()))

    self.assertAllEqual(parsed[tfrecords.IMAGE_KEY].numpy().tolist(), encoded)
    self.assertAllEqual(parsed[tfrecords.LABEL_INDEX_KEY], [4, 7, 11])
    self.assertAllEqual(
      parsed[tfrecords.LABEL_TEXT_KEY].numpy().tolist(), [b'run', b'jump', b'swim']
    )
    self.assertEqual(parsed[tfrecords.VIDEO_ID_KEY].numpy(), b'vid_01')
    decoded = tf.io.decode_jpeg(parsed[tfrecords.IMAGE_KEY][0])
    self.assertAllEqual(decoded.shape, frames.shape[1:])

  def test_optional_fields_default_empty(self):
    encoded = tfrecords.encode_jpeg_frames(_frames(num_frames=1))
    example = tfrecords.make_video_example(encoded, label_indices=[2])
    parsed = tfrecords.parse_video_example(tf.constant(example.SerializeToString()))
    self.assertAllEqual(parsed[tfrecords.LABEL_INDEX_KEY], [2])
    self.assertEqual(parsed[tfrecords.LABEL_TEXT_KEY].shape, (0,))
    self.assertEqual(parsed[tfrecords.VIDEO_ID_KEY].numpy(), b'')

  def test_encode_jpeg_frames_rejects_bad_input(self):
    with self.assertRaisesRegex(ValueError, 'uint8'):
      tfrecords.encode_jpeg_frames(_frames().astype(np.float32))
    with self.assertRaisesRegex(ValueError, 'uint8'):
      tfrecords.encode_jpeg_frames(_frames()[0])  # 3-D, no time axis
    with self.assertRaisesRegex(ValueError, 'uint8'):
      tfrecords.encode_jpeg_frames(_frames()[..., :1])  # one channel

  def test_make_video_example_rejects_empty(self):
    with self.assertRaisesRegex(ValueError, 'no frames'):
      tfrecords.make_video_example([], label_indices=[1])
    with self.assertRaisesRegex(ValueError, 'no label'):
      tfrecords.make_video_example([b'x'], label_indices=[])

  def test_write_sharded_round_robin(self):
    encoded = tfrecords.encode_jpeg_frames(_frames(num_frames=1))
    examples = [
      tfrecords.make_video_example(encoded, label_indices=[i], video_id=f'v{i}') for i in range(7)
    ]
    prefix = os.path.join(self.get_temp_dir(), 'train')
    paths = tfrecords.write_sharded(examples, prefix, num_shards=3)

    self.assertEqual(paths, tfrecords.shard_paths(prefix, 3))
    self.assertTrue(paths[0].endswith('train-00000-of-00003.tfrecord'))
    ids_per_shard = []
    for path in paths:
      ids = [
        tfrecords.parse_video_example(record)[tfrecords.VIDEO_ID_KEY].numpy()
        for record in tf.data.TFRecordDataset(path)
      ]
      ids_per_shard.append(ids)
    self.assertEqual([len(ids) for ids in ids_per_shard], [3, 2, 2])
    self.assertEqual(ids_per_shard[0], [b'v0', b'v3', b'v6'])
    self.assertEqual(ids_per_shard[1], [b'v1', b'v4'])
    self.assertEqual(ids_per_shard[2], [b'v2', b'v5'])


if __name__ == '__main__':
  tf.test.main()
