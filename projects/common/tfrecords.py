"""Writers and readers for the project's video TFRecord contract (see DESIGN.md).

A video is one `tf.train.SequenceExample`:
  context:      `clip/label/index` (int64, one or more), optional `clip/label/text` (bytes),
                optional `video/id` (bytes)
  feature list: `image/encoded`, one JPEG-encoded RGB frame per step.
"""

from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf

IMAGE_KEY = 'image/encoded'
LABEL_INDEX_KEY = 'clip/label/index'
LABEL_TEXT_KEY = 'clip/label/text'
VIDEO_ID_KEY = 'video/id'


def _bytes_feature(values: Iterable[bytes]) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _int64_feature(values: Iterable[int]) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def encode_jpeg_frames(frames: np.ndarray, quality: int = 90) -> list[bytes]:
  """JPEG-encodes each frame of a `[time, height, width, 3]` uint8 array."""
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise ValueError(
      f'frames must be uint8 [time, height, width, 3], got {frames.dtype} {list(frames.shape)}'
    )
  return [tf.io.encode_jpeg(frame, quality=quality).numpy() for frame in frames]


def make_video_example(
  encoded_frames: Sequence[bytes],
  label_indices: Sequence[int],
  label_texts: Sequence[str] = (),
  video_id: str | None = None,
  extra_context: dict[str, list[int]] | None = None,
) -> tf.train.SequenceExample:
  """Builds one video SequenceExample from already-encoded JPEG frames.

  `extra_context` adds int64 context features beyond the contract (e.g. a second label).
  """
  if not encoded_frames:
    raise ValueError(f'video {video_id!r} has no frames; the contract needs at least one')
  if not label_indices:
    raise ValueError(f'video {video_id!r} has no label index')
  context = {LABEL_INDEX_KEY: _int64_feature(label_indices)}
  if label_texts:
    context[LABEL_TEXT_KEY] = _bytes_feature(t.encode('utf-8') for t in label_texts)
  if video_id is not None:
    context[VIDEO_ID_KEY] = _bytes_feature([video_id.encode('utf-8')])
  for key, values in (extra_context or {}).items():
    if key in (LABEL_INDEX_KEY, LABEL_TEXT_KEY, VIDEO_ID_KEY):
      raise ValueError(f'extra_context key {key!r} of video {video_id!r} is a contract key')
    context[key] = _int64_feature(values)
  frames = tf.train.FeatureList(feature=[_bytes_feature([f]) for f in encoded_frames])
  return tf.train.SequenceExample(
    context=tf.train.Features(feature=context),
    feature_lists=tf.train.FeatureLists(feature_list={IMAGE_KEY: frames}),
  )


def parse_video_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
  """Parses one serialized video SequenceExample into dense tensors (frames stay encoded)."""
  context, sequences = tf.io.parse_single_sequence_example(
    serialized,
    context_features={
      LABEL_INDEX_KEY: tf.io.VarLenFeature(tf.int64),
      LABEL_TEXT_KEY: tf.io.VarLenFeature(tf.string),
      VIDEO_ID_KEY: tf.io.FixedLenFeature([], tf.string, default_value=''),
    },
    sequence_features={IMAGE_KEY: tf.io.FixedLenSequenceFeature([], tf.string)},
  )
  return {
    IMAGE_KEY: sequences[IMAGE_KEY],
    LABEL_INDEX_KEY: tf.sparse.to_dense(context[LABEL_INDEX_KEY]),
    LABEL_TEXT_KEY: tf.sparse.to_dense(context[LABEL_TEXT_KEY]),
    VIDEO_ID_KEY: context[VIDEO_ID_KEY],
  }


def shard_paths(output_prefix: str, num_shards: int) -> list[str]:
  """Standard `prefix-00000-of-00004.tfrecord` shard names."""
  return [f'{output_prefix}-{i:05d}-of-{num_shards:05d}.tfrecord' for i in range(num_shards)]


def write_sharded(
  examples: Iterable[tf.train.SequenceExample | tf.train.Example],
  output_prefix: str,
  num_shards: int,
) -> list[str]:
  """Writes examples round-robin into `num_shards` files; returns the shard paths."""
  paths = shard_paths(output_prefix, num_shards)
  writers = [tf.io.TFRecordWriter(p) for p in paths]
  try:
    for i, example in enumerate(examples):
      # Deterministic: protobuf otherwise orders map entries differently in each process,
      # and the demo data and converter outputs must be byte-identical across runs.
      writers[i % num_shards].write(example.SerializeToString(deterministic=True))
  finally:
    for w in writers:
      w.close()
  return paths
