"""Video embeddings from a trained model: multi-view sampling, checked restore, pooled features.

A model here is any Keras video model exposing `.backbone` (Model Garden's
VideoClassificationModel, the CVRL models): the embedding of a clip is the global average pool of
the backbone's deepest endpoint (`pooling.global_pool`) in float32, and the embedding of a video
the mean over its views (clips x crops), sampled as Model Garden's evaluation samples them.
Shared by tools/extract_features.py and tools/export_saved_model.py, so that features computed
from a checkpoint and from an exported SavedModel come from the same function and the same
weights: those train.py's evaluation scores (`restore_evaluated_model`).
"""

import collections
import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import tensorflow as tf
import tf_keras
from official.core import base_task, train_utils
from official.core import config_definitions as cfg
from official.modeling import optimization
from official.vision.configs import video_classification as mg_video
from official.vision.ops import preprocess_ops_3d

from projects.common import video_ops
from projects.common.modeling import pooling

# Model Garden's BestCheckpointExporter writes the best evaluation's logs, with its step, here.
BEST_CHECKPOINT_INFO = 'info.json'
BEST_CHECKPOINT_STEP = 'best_ckpt_global_step'
# In the names of the trainer checkpoint's EMA slots ('<variable>/.OPTIMIZER_SLOT/optimizer/...').
MOVING_AVERAGE_SLOT = '/.OPTIMIZER_SLOT/optimizer/average/'


class CheckpointError(ValueError):
  """The checkpoint is missing or does not hold the weights of the model being restored."""


@dataclasses.dataclass(frozen=True)
class ViewSampling:
  """How one video becomes views, as in Model Garden's evaluation (`video_input.process_image`).

  `num_clips` clips of `num_frames` frames `temporal_stride` apart (one centred clip, or evenly
  spaced clips from the first to the last possible start); frames resized so the short side is
  `min_image_size`; then `num_crops` crops of `crop_size` (1: centre; 3: start, centre and end of
  the long side). Views are `num_crops * num_clips`.
  """

  num_frames: int
  temporal_stride: int
  min_image_size: int
  crop_size: tuple[int, int]
  num_clips: int = 1
  num_crops: int = 1

  def __post_init__(self):
    if self.num_clips < 1:
      raise ValueError(f'num_clips must be at least 1, got {self.num_clips}')
    if self.num_crops not in (1, 3):
      raise ValueError(f'num_crops must be 1 (centre) or 3 (Model Garden), got {self.num_crops}')

  @property
  def num_views(self) -> int:
    return self.num_clips * self.num_crops

  @classmethod
  def from_data_config(
    cls,
    data: mg_video.DataConfig,
    num_clips: int | None = None,
    num_crops: int | None = None,
    clip_shape: tuple[int, int, int] | None = None,
  ) -> 'ViewSampling':
    """The sampling of an evaluation input config; arguments given replace its values.

    `clip_shape` is `(num_frames, height, width)` of one view; default `data.feature_shape`.
    """
    num_frames, height, width = clip_shape or tuple(data.feature_shape[:3])
    return cls(
      num_frames=num_frames,
      temporal_stride=data.temporal_stride,
      min_image_size=data.min_image_size,
      crop_size=(height, width),
      num_clips=num_clips or data.num_test_clips,
      num_crops=num_crops or data.num_test_crops,
    )


# The functions below have no Python control flow on tensors: AutoGraph would only spend seconds
# rewriting them and everything they call (Model Garden's ops, the Keras layers) when traced.
@tf.autograph.experimental.do_not_convert
def sample_views(frames: tf.Tensor, sampling: ViewSampling) -> tf.Tensor:
  """`[time]` encoded frames or `[time, height, width, 3]` uint8 -> uint8 `[views, T, h, w, 3]`.

  The same ops, in the same order, as `video_input.process_image(is_training=False)` on JPEG
  frames, which returns the views normalised and concatenated along time; here they stay uint8
  so that a model or SavedModel normalises them itself (`clip_features`).
  """
  if sampling.num_clips > 1:
    frames = preprocess_ops_3d.sample_linspace_sequence(
      frames, sampling.num_clips, sampling.num_frames, sampling.temporal_stride
    )
  else:
    frames = preprocess_ops_3d.sample_sequence(
      frames, sampling.num_frames, False, sampling.temporal_stride
    )
  if frames.dtype == tf.string:
    frames = video_ops.decode_jpeg_frames(frames)
  frames = preprocess_ops_3d.resize_smallest(frames, sampling.min_image_size)
  height, width = sampling.crop_size
  frames = preprocess_ops_3d.crop_image(frames, height, width, False, sampling.num_crops)
  return tf.reshape(frames, [sampling.num_views, sampling.num_frames, height, width, 3])


def normalize_frames(frames: tf.Tensor, zero_centering_image: bool) -> tf.Tensor:
  """uint8 frames to the model's input range, as the training parsers do: [0, 1] or [-1, 1]."""
  return preprocess_ops_3d.normalize_image(frames, zero_centering_image)


@tf.autograph.experimental.do_not_convert
def clip_features(
  backbone: tf_keras.Model, frames: tf.Tensor, zero_centering_image: bool
) -> tf.Tensor:
  """uint8 clips `[batch, T, h, w, 3]` -> float32 `[batch, channels]` pooled backbone features."""
  endpoints = backbone(normalize_frames(frames, zero_centering_image), training=False)
  return pooling.global_pool(endpoints)


def average_view_features(
  videos: Iterable[tuple[object, np.ndarray]],
  embed: Callable[[np.ndarray], np.ndarray],
  batch_size: int,
) -> Iterator[tuple[object, np.ndarray]]:
  """Yields `(key, mean over views of embed(view))` per `(key, views)`, in input order.

  Views of consecutive videos are packed into batches of `batch_size` (the last may be smaller),
  so a video's views can straddle two batches and a batch can hold several videos.
  """
  if batch_size < 1:
    raise ValueError(f'batch_size must be at least 1, got {batch_size}')
  open_videos = collections.deque()  # [key, num_views, feature rows so far], in input order.
  queued = []  # (video entry, one view), not yet embedded.

  def run_batch(size: int) -> None:
    batch, queued[:size] = queued[:size], []
    features = np.asarray(embed(np.stack([view for _, view in batch])))
    for (entry, _), feature in zip(batch, features, strict=True):
      entry[2].append(feature)

  def finished() -> Iterator[tuple[object, np.ndarray]]:
    while open_videos and len(open_videos[0][2]) == open_videos[0][1]:
      key, _, rows = open_videos.popleft()
      yield key, np.mean(np.stack(rows), axis=0, dtype=np.float64).astype(np.float32)

  for key, views in videos:
    if not len(views):
      raise ValueError(f'video {key!r} has no views')
    entry = [key, len(views), []]
    open_videos.append(entry)
    queued.extend((entry, view) for view in views)
    while len(queued) >= batch_size:
      run_batch(batch_size)
    yield from finished()
  if queued:
    run_batch(len(queued))
  yield from finished()


@dataclasses.dataclass(frozen=True)
class ChosenCheckpoint:
  """A checkpoint prefix and why it was taken, for the tools to print."""

  path: str
  reason: str

  @property
  def is_best(self) -> bool:
    """Written by Model Garden's BestCheckpointExporter (`best_ckpt-N`)."""
    return os.path.basename(self.path).startswith(f'{train_utils.BEST_CHECKPOINT_NAME}-')


def _best_checkpoint_reason(prefix: str, metric_name: str) -> str:
  """'best checkpoint (<metric> <value> at step N)' from the exporter's info.json beside it."""
  info_path = os.path.join(os.path.dirname(prefix), BEST_CHECKPOINT_INFO)
  if not tf.io.gfile.exists(info_path):
    return 'best checkpoint'
  with tf.io.gfile.GFile(info_path) as f:
    info = json.load(f)
  details = [f'step {int(info[BEST_CHECKPOINT_STEP])}'] if BEST_CHECKPOINT_STEP in info else []
  if metric_name in info:
    details.insert(0, f'{metric_name} {info[metric_name]:.4f}')
  return f'best checkpoint ({" at ".join(details)})' if details else 'best checkpoint'


def choose_checkpoint(
  checkpoint: str, best_checkpoint_subdir: str = '', best_checkpoint_metric: str = ''
) -> ChosenCheckpoint:
  """The checkpoint to read from a checkpoint prefix or a folder.

  A folder is a train.py `model_dir` (its best checkpoint, in `best_checkpoint_subdir`, when
  there is one, else its latest checkpoint) or any folder with a `checkpoint` file (its latest).
  """
  if tf.io.gfile.isdir(checkpoint):
    if best_checkpoint_subdir:
      best = tf.train.latest_checkpoint(os.path.join(checkpoint, best_checkpoint_subdir))
      if best:
        return ChosenCheckpoint(best, _best_checkpoint_reason(best, best_checkpoint_metric))
    latest = tf.train.latest_checkpoint(checkpoint)
    if not latest:
      best_folder = f' nor {best_checkpoint_subdir}/' if best_checkpoint_subdir else ''
      raise CheckpointError(
        f'checkpoint folder {checkpoint!r} names no checkpoint (no `checkpoint` file there'
        f'{best_folder}); pass a checkpoint prefix such as DIR/ckpt-100'
      )
    chosen = ChosenCheckpoint(latest, 'latest checkpoint')
  elif tf.io.gfile.exists(f'{checkpoint}.index'):
    chosen = ChosenCheckpoint(checkpoint, 'checkpoint given')
  else:
    raise CheckpointError(
      f'checkpoint {checkpoint!r} not found: expected a model_dir holding checkpoints or a '
      f'checkpoint prefix such as DIR/ckpt-100 (with DIR/ckpt-100.index)'
    )
  if chosen.is_best:
    return ChosenCheckpoint(
      chosen.path, _best_checkpoint_reason(chosen.path, best_checkpoint_metric)
    )
  return chosen


def resolve_checkpoint(checkpoint: str) -> str:
  """A checkpoint prefix from a prefix or a folder of checkpoints (its latest)."""
  return choose_checkpoint(checkpoint).path


def _describe_mismatch(error: Exception, limit: int = 300) -> str:
  """A restore error in one short line; unmatched variables by name, not by value."""
  text = ' '.join(str(error).split())
  unmatched = re.findall(r"<tf.Variable '([^']+)'", text)
  if isinstance(error, AssertionError) and unmatched:
    count = re.search(r'Found (\d+) Python objects', text)
    total = f'{count.group(1)} objects' if count else 'objects'
    return f'{total} without a value there, e.g. {", ".join(unmatched[:3])}'
  return text if len(text) <= limit else text[:limit] + '...'


def _backbone_roots(model: tf_keras.Model, path: str) -> list[tuple[str, dict]]:
  """Checkpoint roots (as `tf.train.Checkpoint` arguments) that reach only `model.backbone`,
  each at a path a checkpoint may use."""
  roots = []
  # The backbone's entry inside `model/`, as tf.train.Checkpoint(model=model) writes it; a root
  # holding nothing else lets `assert_existing_objects_matched` check the backbone alone.
  children = tf.train.TrackableView(model).children(model)
  names = [name for name, child in children.items() if child is model.backbone]
  if names:
    roots.append(
      (f'model/{names[0]}', {'model': tf.train.Checkpoint(**{names[0]: model.backbone})})
    )
  # Model Garden's trainer also writes the model's `checkpoint_items` (the backbone) at the top.
  if any(name.startswith('backbone/') for name, _ in tf.train.list_variables(path)):
    roots.append(('backbone', {'backbone': model.backbone}))
  return roots


def restore_checkpoint(
  model: tf_keras.Model,
  checkpoint: str,
  whole_model: bool = False,
  optimizer: tf_keras.optimizers.legacy.Optimizer | None = None,
) -> str:
  """Restores `model` from a checkpoint written by train.py or `tf.train.Checkpoint(model=...)`.

  Restores `model.backbone` alone, or with `whole_model` every variable of the model (e.g. a
  classifier's head too). Each variable restored must get a value from the checkpoint: one of
  another experiment or config is an error naming it, never a silently random network. The
  backbone is found where `tf.train.Checkpoint(model=model)` writes it, or at the top-level
  `backbone` entry Model Garden's trainer adds (so a linear-evaluation model can read a
  pretraining checkpoint). `optimizer`'s slots (e.g. moving averages) are read from the
  trainer's `optimizer` entry too, and checked alike. Returns the checkpoint prefix read.

  Raises:
    CheckpointError: the checkpoint is missing or does not match the model.
  """
  path = resolve_checkpoint(checkpoint)
  optimizer_root = {'optimizer': optimizer} if optimizer else {}
  roots = [('model', {'model': model})] if whole_model else _backbone_roots(model, path)
  problems = []
  for where, root in roots:
    try:
      status = tf.train.Checkpoint(**root, **optimizer_root).read(path)
      status.expect_partial().assert_existing_objects_matched()
      return path
    except (AssertionError, ValueError, tf.errors.OpError) as e:
      problems.append(f'under {where!r}: {_describe_mismatch(e)}')
  restored = model if whole_model else model.backbone
  what = (
    "this experiment's whole model" if whole_model else "the weights of this experiment's backbone"
  )
  raise CheckpointError(
    f'checkpoint {path!r} does not hold {what}'
    + (' with their optimizer slots' if optimizer else '')
    + f' ({len(restored.variables)} variables; written by another experiment or config?)'
    + (f'; {"; ".join(problems)}' if problems else '')
  )


def _holds_moving_averages(path: str) -> bool:
  return any(MOVING_AVERAGE_SLOT in name for name, _ in tf.train.list_variables(path))


def restore_evaluated_model(
  task: base_task.Task,
  params: cfg.ExperimentConfig,
  model: tf_keras.Model,
  checkpoint: str,
  whole_model: bool = False,
) -> str:
  """Restores the weights train.py's evaluation scores; returns which checkpoint and weights.

  `checkpoint` is a prefix or a folder (see `choose_checkpoint`: a model_dir's best checkpoint
  first). When the optimizer keeps moving averages of the weights (`optimizer_config.ema`),
  Model Garden's evaluation swaps them in, so they are restored: from the optimizer's slots of
  a training checkpoint, or as the weights of a best checkpoint, which the trainer saves while
  the averages are swapped in. A checkpoint without averages gives its trained weights.
  """
  trainer = params.trainer
  chosen = choose_checkpoint(
    checkpoint, trainer.best_checkpoint_export_subdir, trainer.best_checkpoint_eval_metric
  )
  optimizer = train_utils.create_optimizer(task, params)
  # base_trainer swaps the averages in for evaluation exactly when its optimizer is this class
  # (not, e.g., when a float16 loss-scale optimizer wraps it).
  if not isinstance(optimizer, optimization.ExponentialMovingAverage):
    restore_checkpoint(model, chosen.path, whole_model)
    return f'{chosen.path} ({chosen.reason})'
  if chosen.is_best:
    restore_checkpoint(model, chosen.path, whole_model)
    return f'{chosen.path} ({chosen.reason}, saved with the moving-average weights)'
  if not _holds_moving_averages(chosen.path):
    restore_checkpoint(model, chosen.path, whole_model)
    return f'{chosen.path} ({chosen.reason}; trained weights: it holds no moving averages)'
  restored = model if whole_model else model.backbone
  optimizer.shadow_copy(restored)
  restore_checkpoint(model, chosen.path, whole_model, optimizer=optimizer)
  if trainer.optimizer_config.ema.trainable_weights_only:
    averaged = restored.trainable_variables
  else:
    averaged = restored.variables
  for variable in averaged:
    variable.assign(optimizer.get_slot(variable, 'average'))
  return f'{chosen.path} ({chosen.reason}; moving-average weights)'
