r"""Writes one embedding per video (pooled backbone features, averaged over views) to an .npz file.

Usage (from the repo root; `python -m tools.extract_features` works the same):
  python tools/extract_features.py --experiment=video_classification_demo \
    --checkpoint=/tmp/video_classification_demo --input='/data/demo/validation-*.tfrecord' \
    --output=/tmp/features.npz [--num_clips=4] [--num_crops=3] [--batch_size=16]
  python tools/extract_features.py --experiment=cvrl_demo --saved_model=/tmp/cvrl_export \
    --input=videos.csv --output=/tmp/features.npz

The model is the experiment's (`--config_file` / `--params_override` as in train.py), restored
from `--checkpoint` (every backbone variable must be in it) with the weights train.py's
evaluation scores: a train.py model_dir (its best checkpoint when the run keeps one in
`trainer.best_checkpoint_export_subdir`, else its latest), a folder of checkpoints (its latest) or
a checkpoint prefix; the moving averages with `trainer.optimizer_config.ema`; the checkpoint
taken, and why, is printed. Or the model is the `features` signature of a SavedModel from
tools/export_saved_model.py. A video's
embedding is the global average pool of the backbone's deepest endpoint, averaged over
`num_clips` evenly spaced clips x `num_crops` crops (default: the experiment's
`validation_data.num_test_clips` / `num_test_crops`), sampled as in Model Garden's evaluation
from `validation_data` (`feature_shape`, `temporal_stride`, `min_image_size`). Computation is in
float32 whatever `runtime.mixed_precision_dtype` says; the same inputs give identical features.

`--input` is one of:
  - TFRecords in the video contract (a file pattern, comma-separated patterns allowed);
  - a folder of video files, searched recursively (no labels);
  - a CSV of videos: `path[,label]` rows, optionally under a header `path,label[,start,end]`
    (video_to_tfrecord's listing works as is); paths relative to the CSV's folder.
Raw videos are decoded with PyAV, resized to short side `min_image_size` while decoding; a video
is held in memory decoded at that size.

Output arrays: `video_ids` (str: `video/id` of each record, else `<file>:<record index>`; the path
as listed for raw videos), `features` (float32 [videos, dim]) and, when any video has a label,
`labels`: int64 [videos] (-1: no label) when every label is an integer, a [videos, max labels]
int64 array padded with -1 when a record has several, else str [videos] ('' : no label). Exit
code 2 for bad arguments, inputs or checkpoints; 1 when some videos could not be decoded (the
others are written; --allow_failures exits 0).
"""

import argparse
import io
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence

if __package__ in (None, ''):
  # Run as a script: make the repo root importable, as `python -m` would.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# TF CPU 3D convolutions are 10-80x slower without oneDNN (see train.py).
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import tensorflow as tf
from official.core import config_definitions as cfg
from official.core import task_factory
from official.vision.configs import video_classification as mg_video

from projects import registry_imports  # noqa: F401  (registers every experiment)
from projects.common import (
  experiment_config,
  tfrecords,
  video_decode,
  video_features,
  video_listing,
)
from tools import export_saved_model
from tools.export_saved_model import FEATURES_SIGNATURE, add_experiment_arguments


class InputError(ValueError):
  """`--input` or `--saved_model` is unusable; nothing has been computed."""


def _decoded_videos(
  videos: Sequence[video_listing.ListedVideo], short_side: int, failures: list[str]
) -> Callable[[], Iterator[dict]]:
  def generate() -> Iterator[dict]:
    for video in videos:
      try:
        frames = [
          frame
          for frame, _ in video_decode.iter_frames(
            video.path, short_side=short_side, start_sec=video.start_sec, end_sec=video.end_sec
          )
        ]
      except video_decode.VideoDecodeError as e:
        failures.append(f'{video.key}: {e.reason}' + (f' ({e.detail})' if e.detail else ''))
        continue
      labels = [video.label] if video.label else []
      yield {'video_id': video.key, 'labels': labels, 'frames': np.stack(frames)}

  return generate


def raw_video_dataset(
  videos: Sequence[video_listing.ListedVideo], short_side: int, failures: list[str]
) -> tf.data.Dataset:
  """Decoded videos; a video that fails to decode is skipped and described in `failures`."""
  return tf.data.Dataset.from_generator(
    _decoded_videos(videos, short_side, failures),
    output_signature={
      'video_id': tf.TensorSpec([], tf.string),
      'labels': tf.TensorSpec([None], tf.string),
      'frames': tf.TensorSpec([None, None, None, 3], tf.uint8),
    },
  )


def tfrecord_dataset(input_pattern: str) -> tf.data.Dataset:
  """Records of the files matching the comma-separated patterns, in sorted file order."""
  files = []
  for pattern in (p.strip() for p in input_pattern.split(',')):
    matches = sorted(tf.io.gfile.glob(pattern)) if pattern else []
    if not matches:
      raise InputError(
        f'--input {pattern!r} is not a folder, a .csv file or a TFRecord pattern matching a file'
      )
    files.extend(matches)

  def records(path: tf.Tensor, name: tf.Tensor) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(path).enumerate().map(lambda i, record: (name, i, record))

  def parse(name: tf.Tensor, index: tf.Tensor, record: tf.Tensor) -> dict[str, tf.Tensor]:
    example = tfrecords.parse_video_example(record)
    video_id = example[tfrecords.VIDEO_ID_KEY]
    fallback = tf.strings.join([name, tf.strings.as_string(index)], separator=':')
    return {
      'video_id': tf.where(video_id == '', fallback, video_id),
      'labels': example[tfrecords.LABEL_INDEX_KEY],
      'frames': example[tfrecords.IMAGE_KEY],
    }

  names = [os.path.basename(f) for f in files]
  return tf.data.Dataset.from_tensor_slices((files, names)).flat_map(records).map(parse)


def input_dataset(input_path: str, short_side: int, failures: list[str]) -> tf.data.Dataset:
  """Videos of `--input` as `{'video_id', 'labels', 'frames'}` (frames encoded or uint8)."""
  if os.path.isdir(input_path) or (
    os.path.isfile(input_path) and input_path.lower().endswith('.csv')
  ):
    listing = video_listing.list_videos(input_path, folder_labels=False)
    return raw_video_dataset(listing.videos, short_side, failures)
  return tfrecord_dataset(input_path)


def video_views(
  dataset: tf.data.Dataset, sampling: video_features.ViewSampling
) -> Iterator[tuple[tuple[str, list], np.ndarray]]:
  """`((video_id, labels), uint8 views)` per video, sampled in parallel, in input order."""
  dataset = dataset.map(
    lambda video: (
      video['video_id'],
      video['labels'],
      video_features.sample_views(video['frames'], sampling),
    ),
    num_parallel_calls=tf.data.AUTOTUNE,
    deterministic=True,
  ).prefetch(2)
  for video_id, labels, views in dataset.as_numpy_iterator():
    labels = [label.decode('utf-8') if isinstance(label, bytes) else int(label) for label in labels]
    yield (video_id.decode('utf-8'), labels), views


def checkpoint_embedder(
  params: cfg.ExperimentConfig, checkpoint: str
) -> tuple[Callable[[np.ndarray], np.ndarray], tuple[int, int, int], str]:
  """Embedding function of the experiment's model restored from `checkpoint`.

  Returns it, the clip shape `(frames, height, width)` it takes and which checkpoint and weights
  were read.
  """
  task = task_factory.get_task(params.task)
  model = task.build_model()
  source = video_features.restore_evaluated_model(task, params, model, checkpoint)
  data = params.task.validation_data
  num_frames, height, width = data.feature_shape[:3]

  @tf.function(
    input_signature=[tf.TensorSpec([None, num_frames, height, width, 3], tf.uint8)],
    autograph=False,
  )
  def embed(frames: tf.Tensor) -> tf.Tensor:
    return video_features.clip_features(model.backbone, frames, data.zero_centering_image)

  return lambda views: embed(views).numpy(), (num_frames, height, width), source


def saved_model_embedder(
  export_dir: str, data: mg_video.DataConfig
) -> tuple[Callable[[np.ndarray], np.ndarray], tuple[int, int, int]]:
  """Embedding function of a SavedModel's `features` signature, and the clip shape it takes."""
  # Exported by tools/export_saved_model.py, whose `features` signature takes uint8 frames.
  loaded, _, input_name, spec = export_saved_model.load_signature(
    export_dir, FEATURES_SIGNATURE, tf.uint8, 5, 'uint8 frames [batch, T, H, W, 3]'
  )
  defaults = data.feature_shape[:3]
  clip_shape = tuple(
    int(size) if size is not None else int(default)
    for size, default in zip(spec.shape[1:4], defaults, strict=True)
  )

  def embed(views: np.ndarray) -> np.ndarray:
    # `loaded` stays referenced here: its variables live as long as the signature is used.
    outputs = loaded.signatures[FEATURES_SIGNATURE](**{input_name: tf.constant(views)})
    return outputs[FEATURES_SIGNATURE].numpy()

  return embed, clip_shape


def labels_array(labels: Sequence[Sequence[int | str]]) -> np.ndarray | None:
  """The `labels` output array (see the module docstring), or None when no video has one."""
  if not any(labels):
    return None
  values = [value for video_labels in labels for value in video_labels]
  if not all(isinstance(v, int) or (isinstance(v, str) and _is_int(v)) for v in values):
    return np.array([video_labels[0] if video_labels else '' for video_labels in labels], dtype=str)
  labels = [[int(v) for v in video_labels] for video_labels in labels]
  width = max(len(video_labels) for video_labels in labels)
  padded = np.full([len(labels), width], -1, dtype=np.int64)
  for row, video_labels in zip(padded, labels, strict=True):
    row[: len(video_labels)] = video_labels
  return padded[:, 0] if width == 1 else padded


def _is_int(text: str) -> bool:
  try:
    int(text)
  except ValueError:
    return False
  return True


def write_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
  """Writes the arrays under a temporary name, then renames: no half-written output on failure."""
  directory = os.path.dirname(path)
  if directory:
    tf.io.gfile.makedirs(directory)
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  partial = f'{path}.partial'
  with tf.io.gfile.GFile(partial, 'wb') as f:
    f.write(buffer.getvalue())
  tf.io.gfile.rename(partial, path, overwrite=True)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    description=__doc__.split('\n', 1)[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  add_experiment_arguments(parser)
  weights = parser.add_mutually_exclusive_group(required=True)
  weights.add_argument(
    '--checkpoint',
    help='train.py model_dir (its best checkpoint, else its latest) or checkpoint prefix',
  )
  weights.add_argument('--saved_model', help='SavedModel from tools/export_saved_model.py')
  parser.add_argument(
    '--input', required=True, help='TFRecord pattern(s), a folder of videos or a CSV path[,label]'
  )
  parser.add_argument('--output', required=True, help='.npz file to write')
  parser.add_argument(
    '--num_clips', type=int, help='evenly spaced clips per video (default: num_test_clips)'
  )
  parser.add_argument(
    '--num_crops', type=int, help='1 (centre) or 3 crops per clip (default: num_test_crops)'
  )
  parser.add_argument('--batch_size', type=int, default=8, help='clips per forward pass')
  parser.add_argument(
    '--allow_failures', action='store_true', help='exit 0 even when some videos failed to decode'
  )
  args = parser.parse_args(argv)
  if args.num_clips is not None and args.num_clips < 1:
    parser.error(f'--num_clips must be at least 1, got {args.num_clips}')
  if args.num_crops is not None and args.num_crops not in (1, 3):
    parser.error(f'--num_crops must be 1 or 3, got {args.num_crops}')
  if args.batch_size < 1:
    parser.error(f'--batch_size must be at least 1, got {args.batch_size}')
  return args


def main(argv: Sequence[str] | None = None) -> int:
  args = _parse_args(argv)
  start_time = time.time()
  failures = []
  try:
    params = experiment_config.build_experiment_config(
      args.experiment, args.config_file, args.params_override
    )
    data = params.task.validation_data
    if args.checkpoint:
      embed, clip_shape, source = checkpoint_embedder(params, args.checkpoint)
      print(f'checkpoint: {source}')
    else:
      embed, clip_shape = saved_model_embedder(args.saved_model, data)
      source = args.saved_model
    sampling = video_features.ViewSampling.from_data_config(
      data, args.num_clips, args.num_crops, clip_shape
    )
    dataset = input_dataset(args.input, data.min_image_size, failures)
  except (
    experiment_config.ExperimentConfigError,
    video_features.CheckpointError,
    InputError,
    export_saved_model.SavedModelError,
    video_listing.ListingError,
    OSError,
  ) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2

  keys, features = [], []
  for key, feature in video_features.average_view_features(
    video_views(dataset, sampling), embed, args.batch_size
  ):
    keys.append(key)
    features.append(feature)
  for failure in failures:
    print(f'  failed: {failure}', file=sys.stderr)
  if not keys:
    print(f'error: no video of {args.input!r} could be read', file=sys.stderr)
    return 1
  arrays = {
    'video_ids': np.array([video_id for video_id, _ in keys], dtype=str),
    'features': np.stack(features).astype(np.float32),
  }
  labels = labels_array([video_labels for _, video_labels in keys])
  if labels is not None:
    arrays['labels'] = labels
  write_npz(args.output, arrays)
  print(
    f'{len(keys)} videos from {source}: features {list(arrays["features"].shape)} '
    f'(mean of {sampling.num_clips} clip(s) x {sampling.num_crops} crop(s) of {list(clip_shape)}) '
    f'written to {args.output} in {time.time() - start_time:.1f} s'
  )
  if failures and not args.allow_failures:
    print(f'error: {len(failures)} video(s) could not be decoded', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
