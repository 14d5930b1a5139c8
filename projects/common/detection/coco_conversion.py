"""COCO / LVIS instance annotations (JSON + image folder) to Model Garden detection TFRecords.

One `tf.train.Example` per image, in the keys `official.vision.dataloaders.tf_example_decoder.
TfExampleDecoder` reads (the RetinaNet and Mask R-CNN input of Model Garden):
  image/encoded (the file's bytes, unchanged), image/format, image/filename, image/source_id
  (the JSON image id), image/height, image/width, image/key/sha256;
  image/object/bbox/{xmin,ymin,xmax,ymax} (normalised to [0, 1]), image/object/class/label (the
  JSON category id, not remapped: Model Garden keeps 0 for background), image/object/class/text,
  image/object/is_crowd, image/object/area (pixels), and with masks image/object/mask (one PNG per
  instance, pixel values 0/1, the image's size).
LVIS images also carry their federated-evaluation lists: `LVIS_NEG_CATEGORY_IDS_KEY` and
`LVIS_NOT_EXHAUSTIVE_CATEGORY_IDS_KEY` (int64 lists of category ids).

Beside the shards: `label_map.json` ({category id: name}) and `categories.json` (the JSON's category
records as given, with LVIS `frequency`, `synset`, ...). Every image is either written or listed in
errors.csv (see projects/common/sharded_conversion.py); an annotation that cannot be used is left
out of its image and listed as a `dropped` row: `<reason>: annotation <id>: <detail>`.
"""

import dataclasses
import hashlib
import io
import json
import math
import os
import re

import numpy as np
import tensorflow as tf
from official.vision.data import tfrecord_lib
from PIL import Image
from pycocotools import mask as coco_mask

from projects.common import sharded_conversion

LABEL_MAP_FILE = 'label_map.json'
CATEGORIES_FILE = 'categories.json'
LVIS_NEG_CATEGORY_IDS_KEY = 'image/lvis/neg_category_ids'
LVIS_NOT_EXHAUSTIVE_CATEGORY_IDS_KEY = 'image/lvis/not_exhaustive_category_ids'
REQUIRED_KEYS = ('images', 'annotations', 'categories')
# summary.json's count of the most annotations on one image (before any is dropped as bad), which
# training compares with its parser's `max_num_instances`.
MAX_ANNOTATIONS_PER_IMAGE_KEY = 'max_annotations_per_image'

# Reasons: the text before the first colon of an errors.csv row, counted in summary.json.
MISSING_FILE = 'missing file'
UNDECODABLE_IMAGE = 'undecodable image'
IMAGE_SIZE_MISMATCH = 'image size mismatch'
BAD_IMAGE_ENTRY = 'bad image entry'
UNKNOWN_CATEGORY = 'unknown category id'
OUTSIDE_IMAGE = 'annotation outside the image'
DEGENERATE_BOX = 'degenerate box'
DEGENERATE_POLYGON = 'degenerate polygon'
BAD_SEGMENTATION = 'bad segmentation'
BAD_ANNOTATION = 'bad annotation'

# A box of an object touching the border can end a fraction of a pixel outside the image (float
# coordinates); up to this overshoot it is clipped to the image rather than dropped.
BOX_TOLERANCE_PX = 1.0
# Shards: one per ~1000 images (about 150 MB of COCO JPEGs, in the 100+ MB range that reads
# efficiently), at least 8 so that readers and converters can work in parallel.
_IMAGES_PER_AUTO_SHARD = 1000
_MIN_AUTO_SHARDS = 8
# Part of every shard's identity: bump it when the Example layout changes so reruns redo shards.
_EXAMPLE_FORMAT = 1
_LVIS_IMAGE_LISTS = {
  'neg_category_ids': LVIS_NEG_CATEGORY_IDS_KEY,
  'not_exhaustive_category_ids': LVIS_NOT_EXHAUSTIVE_CATEGORY_IDS_KEY,
}


class InputError(ValueError):
  """The annotation file or image folder is unusable as a whole; nothing has been converted."""


@dataclasses.dataclass(frozen=True)
class CocoDataset:
  """A validated COCO or LVIS annotation file."""

  images: list[dict]
  annotations_by_image: dict[int, list[dict]]
  categories: list[dict]  # Sorted by id, records as the file has them.

  @property
  def label_map(self) -> dict[int, str]:
    return {c['id']: c['name'] for c in self.categories}


@dataclasses.dataclass(frozen=True)
class ImageTask:
  """Everything a worker needs to convert one image (the payload of a sharded_conversion.Item)."""

  file_name: str  # As the JSON names it (LVIS: `<split>/<name>` from coco_url).
  image: dict  # The JSON image record.
  annotations: list[dict]
  # Names of the known categories this image's annotations use; absent ids are unknown.
  category_names: dict[int, str]
  image_dir: str
  include_masks: bool


class _DroppedAnnotation(Exception):
  """One annotation left out of its image; `str(error)` is its errors.csv reason."""

  def __init__(self, reason: str, annotation: dict, detail: str):
    super().__init__(f'{reason}: annotation {annotation.get("id", "without id")}: {detail}')


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def image_file_name(image: dict) -> str | None:
  """The image's path relative to the image folder: `file_name`, or for LVIS (which has none)
  `<split>/<name>` from `coco_url`, as the LVIS API lays images out."""
  if isinstance(image.get('file_name'), str) and image['file_name']:
    return image['file_name']
  url = image.get('coco_url')
  if isinstance(url, str) and '/' in url:
    return '/'.join(url.rstrip('/').split('/')[-2:])
  return None


def load_annotations(path: str) -> CocoDataset:
  """Reads and checks a COCO or LVIS instances JSON; raises InputError naming what is wrong."""
  try:
    with open(path, encoding='utf-8') as f:
      loaded = json.load(f)
  except OSError as e:
    raise InputError(f'cannot read annotation file {path}: {e.strerror or e}') from None
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise InputError(f'annotation file {path} is not valid JSON: {e}') from None
  if not isinstance(loaded, dict):
    raise InputError(
      f'annotation file {path}: expected a JSON object with keys {", ".join(REQUIRED_KEYS)}, '
      f'got a {type(loaded).__name__}'
    )
  for key in REQUIRED_KEYS:
    if key not in loaded:
      raise InputError(
        f'annotation file {path} has no top-level key {key!r} (COCO/LVIS instance files have '
        f'{", ".join(REQUIRED_KEYS)}; it has {", ".join(sorted(loaded)) or "none"})'
      )
    if not isinstance(loaded[key], list):
      raise InputError(
        f'annotation file {path}: {key!r} must be a list, got {type(loaded[key]).__name__}'
      )
  categories = _check_categories(path, loaded['categories'])
  images = _check_images(path, loaded['images'])
  return CocoDataset(
    images=images,
    annotations_by_image=_group_annotations(path, loaded['annotations'], images),
    categories=categories,
  )


def _check_categories(path: str, categories: list) -> list[dict]:
  seen = set()
  for i, category in enumerate(categories):
    if not isinstance(category, dict) or not _is_int(category.get('id')):
      raise InputError(f'annotation file {path}: categories[{i}] needs an integer id: {category}')
    if category['id'] < 1:
      raise InputError(
        f'annotation file {path}: category {category.get("name")!r} has id {category["id"]}; '
        'ids must be at least 1 (Model Garden reads class 0 as background)'
      )
    if not isinstance(category.get('name'), str):
      raise InputError(f'annotation file {path}: category id {category["id"]} has no name')
    if category['id'] in seen:
      raise InputError(f'annotation file {path}: category id {category["id"]} appears twice')
    seen.add(category['id'])
  if not categories:
    raise InputError(f'annotation file {path}: "categories" is empty')
  return sorted(categories, key=lambda c: c['id'])


def _check_images(path: str, images: list) -> list[dict]:
  ids, names = set(), set()
  for i, image in enumerate(images):
    image_id = image.get('id') if isinstance(image, dict) else None
    if not _is_int(image_id):
      # Model Garden's parsers read image/source_id back as an int64 (process_source_id).
      raise InputError(f'annotation file {path}: images[{i}] needs an integer id, got {image_id!r}')
    file_name = image_file_name(image)
    if file_name is None:
      raise InputError(
        f'annotation file {path}: image id {image_id} has neither file_name nor coco_url'
      )
    if image_id in ids:
      raise InputError(f'annotation file {path}: image id {image_id} appears twice')
    if file_name in names:
      raise InputError(f'annotation file {path}: image file {file_name!r} is listed twice')
    ids.add(image_id)
    names.add(file_name)
  return images


def _group_annotations(path: str, annotations: list, images: list[dict]) -> dict:
  by_image = {image['id']: [] for image in images}
  orphans = []
  for i, annotation in enumerate(annotations):
    if not isinstance(annotation, dict):
      raise InputError(f'annotation file {path}: annotations[{i}] is not an object')
    image_id = annotation.get('image_id')
    if isinstance(image_id, list | dict) or image_id not in by_image:
      orphans.append(annotation.get('id', f'annotations[{i}]'))
    else:
      by_image[image_id].append(annotation)
  if orphans:
    # Refused rather than skipped: these would vanish without a row in errors.csv.
    raise InputError(
      f'annotation file {path}: {len(orphans)} annotation(s) have an image_id that no image '
      f'has, e.g. annotation id(s) {", ".join(map(str, orphans[:5]))}'
    )
  return by_image


def image_tasks(dataset: CocoDataset, image_dir: str, include_masks: bool) -> list[ImageTask]:
  """One task per image of the dataset, in the JSON's order."""
  names = dataset.label_map
  tasks = []
  for image in dataset.images:
    annotations = dataset.annotations_by_image[image['id']]
    used = {a.get('category_id') for a in annotations}
    tasks.append(
      ImageTask(
        file_name=image_file_name(image),
        image=image,
        annotations=annotations,
        category_names={i: names[i] for i in used if _is_int(i) and i in names},
        image_dir=image_dir,
        include_masks=include_masks,
      )
    )
  return tasks


def convert_image(task: ImageTask) -> sharded_conversion.ItemResult:
  """The serialized Example of one image; annotations it cannot use are listed as dropped.

  Raises sharded_conversion.ItemFailed when the image itself cannot be written.
  """
  height, width = _image_size(task.image)
  path = _image_path(task)
  if path is None:
    raise sharded_conversion.ItemFailed(
      f'{MISSING_FILE}: no file {os.path.join(task.image_dir, task.file_name)}'
    )
  with open(path, 'rb') as f:
    encoded = f.read()
  image_format = _check_image(encoded, height, width)
  features = tfrecord_lib.image_info_to_feature_dict(
    height, width, task.file_name, task.image['id'], encoded, image_format
  )
  for field, key in _LVIS_IMAGE_LISTS.items():
    if field in task.image:
      ids = task.image[field]
      if not isinstance(ids, list) or not all(_is_int(i) for i in ids):
        raise sharded_conversion.ItemFailed(f'{BAD_IMAGE_ENTRY}: {field} is not a list of ids')
      features[key] = tfrecord_lib.convert_to_feature(ids, 'int64_list')
  objects, dropped = [], []
  for annotation in task.annotations:
    try:
      objects.append(_convert_annotation(annotation, task, height, width))
    except _DroppedAnnotation as e:
      dropped.append(str(e))
  features.update(_object_features(objects, task.include_masks))
  example = tf.train.Example(features=tf.train.Features(feature=features))
  # Deterministic map order: a rerun writes byte-identical shards.
  return sharded_conversion.ItemResult([example.SerializeToString(deterministic=True)], dropped)


def _image_size(image: dict) -> tuple[int, int]:
  height, width = image.get('height'), image.get('width')
  if not (_is_int(height) and _is_int(width) and height > 0 and width > 0):
    raise sharded_conversion.ItemFailed(
      f'{BAD_IMAGE_ENTRY}: height {height!r} and width {width!r} must be positive integers'
    )
  return height, width


def _image_path(task: ImageTask) -> str | None:
  """Where the image file is, or None."""
  path = os.path.join(task.image_dir, task.file_name)
  if os.path.isfile(path):
    return path
  if 'file_name' not in task.image:
    # The image folder may be the split folder itself: LVIS v1 train images all come from COCO
    # train2017.
    flat_path = os.path.join(task.image_dir, os.path.basename(task.file_name))
    if os.path.isfile(flat_path):
      return flat_path
  return None


def _check_image(encoded: bytes, height: int, width: int) -> str:
  """The image's format; fails unless TensorFlow decodes it (as the training input will) at the
  JSON's size, which the boxes and masks are relative to."""
  try:
    decoded_shape = tf.io.decode_image(encoded, channels=3, expand_animations=False).shape
    image_format = Image.open(io.BytesIO(encoded)).format.lower()
  except (tf.errors.OpError, OSError) as e:
    # TensorFlow's message names the kernel device in {{...}} and the op in [...]; the rest is
    # what went wrong.
    message = re.sub(r'\{\{.*?\}\}|\[Op:\w+\]', '', getattr(e, 'message', str(e))).strip()
    raise sharded_conversion.ItemFailed(f'{UNDECODABLE_IMAGE}: {message}') from None
  if tuple(decoded_shape[:2]) != (height, width):
    raise sharded_conversion.ItemFailed(
      f'{IMAGE_SIZE_MISMATCH}: the file is {decoded_shape[1]}x{decoded_shape[0]} (width x '
      f'height), the JSON says {width}x{height}'
    )
  return 'jpg' if image_format == 'jpeg' else image_format  # 'jpg' as Model Garden writes it.


@dataclasses.dataclass(frozen=True)
class _Object:
  box: tuple[float, float, float, float]  # ymin, xmin, ymax, xmax, normalised.
  label: int
  name: str
  is_crowd: int
  area: float
  mask_png: bytes | None


def _convert_annotation(annotation: dict, task: ImageTask, height: int, width: int) -> _Object:
  category_id = annotation.get('category_id')
  if not _is_int(category_id) or category_id not in task.category_names:
    raise _DroppedAnnotation(
      UNKNOWN_CATEGORY, annotation, f'category_id {category_id!r} is not in the JSON categories'
    )
  box = annotation.get('bbox')
  if not (isinstance(box, list) and len(box) == 4 and all(_is_finite_number(v) for v in box)):
    raise _DroppedAnnotation(BAD_ANNOTATION, annotation, f'bbox {box!r} is not 4 finite numbers')
  x, y, box_width, box_height = box
  if box_width <= 0 or box_height <= 0:
    raise _DroppedAnnotation(DEGENERATE_BOX, annotation, f'bbox {box} has no area')
  xmin, ymin = max(x, 0.0), max(y, 0.0)
  xmax, ymax = min(x + box_width, width), min(y + box_height, height)
  beyond = max(-x, -y, x + box_width - width, y + box_height - height)
  if beyond > BOX_TOLERANCE_PX or xmax <= xmin or ymax <= ymin:
    raise _DroppedAnnotation(
      OUTSIDE_IMAGE,
      annotation,
      f'bbox {box} (x, y, w, h) extends beyond the {width}x{height} image',
    )
  is_crowd = annotation.get('iscrowd', 0)  # LVIS annotations have no iscrowd.
  if is_crowd not in (0, 1) or isinstance(is_crowd, float):
    raise _DroppedAnnotation(BAD_ANNOTATION, annotation, f'iscrowd {is_crowd!r} is not 0 or 1')
  mask = _annotation_mask(annotation, height, width) if task.include_masks else None
  area = annotation.get('area')
  if area is None:
    area = box_width * box_height if mask is None else int(mask.sum())
  elif not _is_finite_number(area) or area < 0:
    raise _DroppedAnnotation(BAD_ANNOTATION, annotation, f'area {area!r} is not a number >= 0')
  return _Object(
    box=(ymin / height, xmin / width, ymax / height, xmax / width),
    label=category_id,
    name=task.category_names[category_id],
    is_crowd=int(is_crowd),
    area=float(area),
    mask_png=None if mask is None else tfrecord_lib.encode_mask_as_png(mask),
  )


def _is_finite_number(value) -> bool:
  return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _annotation_mask(annotation: dict, height: int, width: int) -> np.ndarray:
  """The instance's [height, width] uint8 mask of 0/1 from its polygons or RLE."""
  segmentation = annotation.get('segmentation')
  if isinstance(segmentation, list) and segmentation:
    for i, polygon in enumerate(segmentation):
      if not (isinstance(polygon, list) and all(_is_finite_number(v) for v in polygon)):
        raise _DroppedAnnotation(
          BAD_SEGMENTATION, annotation, f'polygon {i} is not a list of numbers'
        )
      # pycocotools would read a 2-point polygon (4 numbers) as a box, and an odd count drops
      # the last number, so both are refused here.
      if len(polygon) < 6 or len(polygon) % 2:
        raise _DroppedAnnotation(
          DEGENERATE_POLYGON,
          annotation,
          f'polygon {i} has {len(polygon)} coordinates; needs an even number, at least 3 points',
        )
    rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
  elif isinstance(segmentation, dict):
    rle = coco_mask.frPyObjects(
      {'size': [height, width], 'counts': _rle_counts(segmentation, annotation, height, width)},
      height,
      width,
    )
  else:
    raise _DroppedAnnotation(
      BAD_SEGMENTATION, annotation, f'segmentation {segmentation!r:.60} is not polygons or RLE'
    )
  return np.ascontiguousarray(coco_mask.decode(rle))


def _rle_counts(segmentation: dict, annotation: dict, height: int, width: int) -> list[int]:
  """Checked run lengths of an uncompressed (list) or compressed (string) RLE.

  pycocotools does not check that the runs cover the image: runs that fall short leave the
  remaining pixels uninitialised (pycocotools 2.0.11 decodes them to arbitrary values), so runs
  must add up to height * width exactly.
  """
  size, counts = segmentation.get('size'), segmentation.get('counts')
  if size != [height, width]:
    raise _DroppedAnnotation(
      BAD_SEGMENTATION, annotation, f'RLE size {size!r} is not the image size [{height}, {width}]'
    )
  if isinstance(counts, str):
    try:
      counts = compressed_rle_counts(counts)
    except ValueError as e:
      raise _DroppedAnnotation(BAD_SEGMENTATION, annotation, f'compressed RLE: {e}') from None
  if not (isinstance(counts, list) and all(_is_int(c) and c >= 0 for c in counts)):
    raise _DroppedAnnotation(
      BAD_SEGMENTATION, annotation, 'RLE counts are not non-negative integers'
    )
  if sum(counts) != height * width:
    raise _DroppedAnnotation(
      BAD_SEGMENTATION,
      annotation,
      f'RLE runs cover {sum(counts)} pixels, the image has {height}x{width}={height * width}',
    )
  return counts


def compressed_rle(mask: np.ndarray) -> dict:
  """COCO compressed RLE of a [H, W] mask (nonzero = object), JSON-ready."""
  rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
  return {'size': [int(s) for s in rle['size']], 'counts': rle['counts'].decode('ascii')}


def compressed_rle_counts(counts: str) -> list[int]:
  """Run lengths of a COCO compressed RLE string (the format of pycocotools' `encode`).

  Each run is a little-endian base-32 varint in characters from '0' (6 bits: 5 of value, one
  'more' flag); from the third run on, runs are stored as the difference to the run two before.
  """
  runs, chunks = [], [ord(c) - 48 for c in counts]
  position = 0
  while position < len(chunks):
    value, shift, more = 0, 0, True
    while more:
      if position == len(chunks):
        raise ValueError(f'{counts!r:.40} ends inside a run')
      chunk = chunks[position]
      if not 0 <= chunk < 64:
        raise ValueError(f'character {chr(chunk + 48)!r} is not in the RLE alphabet')
      value |= (chunk & 0x1F) << shift
      more = chunk & 0x20
      position += 1
      shift += 5
      if not more and chunk & 0x10:
        value |= -1 << shift  # Sign-extend a negative difference.
    if len(runs) > 2:
      value += runs[-2]
    runs.append(value)
  return runs


def _object_features(objects: list[_Object], include_masks: bool) -> dict[str, tf.train.Feature]:
  # Explicit list types: an image without usable annotations gets empty lists, which the decoder
  # reads as zero objects.
  def floats(values):
    return tfrecord_lib.convert_to_feature(values, 'float_list')

  ymin, xmin, ymax, xmax = zip(*(o.box for o in objects), strict=True) if objects else ([],) * 4
  features = {
    'image/object/bbox/xmin': floats(list(xmin)),
    'image/object/bbox/xmax': floats(list(xmax)),
    'image/object/bbox/ymin': floats(list(ymin)),
    'image/object/bbox/ymax': floats(list(ymax)),
    'image/object/class/label': tfrecord_lib.convert_to_feature(
      [o.label for o in objects], 'int64_list'
    ),
    'image/object/class/text': tfrecord_lib.convert_to_feature(
      [o.name.encode('utf-8') for o in objects], 'bytes_list'
    ),
    'image/object/is_crowd': tfrecord_lib.convert_to_feature(
      [o.is_crowd for o in objects], 'int64_list'
    ),
    'image/object/area': floats([o.area for o in objects]),
  }
  if include_masks:
    features['image/object/mask'] = tfrecord_lib.convert_to_feature(
      [o.mask_png for o in objects], 'bytes_list'
    )
  return features


def write_category_files(dataset: CocoDataset, output_dir: str) -> None:
  """label_map.json ({id: name}) and categories.json (the category records) in output_dir."""
  os.makedirs(output_dir, exist_ok=True)
  _write_json(
    os.path.join(output_dir, LABEL_MAP_FILE), {str(i): n for i, n in dataset.label_map.items()}
  )
  _write_json(os.path.join(output_dir, CATEGORIES_FILE), dataset.categories)


def _write_json(path: str, value) -> None:
  temp_path = f'{path}.tmp'
  with open(temp_path, 'w', encoding='utf-8') as f:
    json.dump(value, f, indent=2, ensure_ascii=False)
    f.write('\n')
  os.replace(temp_path, path)


def default_num_shards(num_images: int) -> int:
  """Shards for `num_images` images; independent of the machine, so a rerun elsewhere resumes."""
  return min(num_images, max(_MIN_AUTO_SHARDS, math.ceil(num_images / _IMAGES_PER_AUTO_SHARD)))


def convert_coco(
  image_dir: str,
  annotations_file: str,
  output_dir: str,
  *,
  num_shards: int | None = None,
  include_masks: bool = False,
  num_workers: int | None = None,
  allow_failures: bool = False,
) -> sharded_conversion.ConversionSummary:
  """Converts a COCO or LVIS instances JSON and its images into sharded TFRecords.

  Shards are `<annotations file stem>-0000i-of-0000N.tfrecord` in `output_dir`, beside
  label_map.json, categories.json, errors.csv and summary.json. A rerun keeps the shards whose
  images (file size and mtime), annotations and settings are unchanged. `num_workers` processes
  (default: one per CPU; 0 converts in this process). Raises InputError (nothing converted) for an
  unusable JSON or image folder, and sharded_conversion.ConversionFailed after the run if any image was not written,
  unless `allow_failures`. Dropped annotations alone do not fail the run: they are in errors.csv.
  Segmentations are read, and so checked, only with `include_masks`.
  """
  if not os.path.isdir(image_dir):
    raise InputError(f'image folder {image_dir} does not exist or is not a folder')
  dataset = load_annotations(annotations_file)
  if not dataset.images:
    raise InputError(f'annotation file {annotations_file} lists no images')
  write_category_files(dataset, output_dir)
  tasks = image_tasks(dataset, image_dir, include_masks)
  summary = sharded_conversion.run_conversion(
    [sharded_conversion.Item(t.file_name, t, _fingerprint(t)) for t in tasks],
    convert_image,
    output_dir,
    file_prefix=os.path.splitext(os.path.basename(annotations_file))[0],
    num_shards=num_shards or default_num_shards(len(tasks)),
    num_workers=os.cpu_count() if num_workers is None else num_workers,
    settings={'include_masks': include_masks, 'example_format': _EXAMPLE_FORMAT},
    progress_desc='images',
    extra_summary={
      'annotations_file': os.path.abspath(annotations_file),
      'image_dir': os.path.abspath(image_dir),
      'categories': len(dataset.categories),
      'annotations': sum(len(t.annotations) for t in tasks),
      MAX_ANNOTATIONS_PER_IMAGE_KEY: max((len(t.annotations) for t in tasks), default=0),
    },
  )
  if not summary.ok and not allow_failures:
    raise sharded_conversion.ConversionFailed(summary, output_dir)
  return summary


def _fingerprint(task: ImageTask) -> str:
  """What the image's Example is made from: its JSON records and its file's size and mtime."""
  path = _image_path(task)
  try:
    info = os.stat(path) if path else None
  except OSError:
    info = None
  file_stat = None if info is None else [path, info.st_size, info.st_mtime_ns]
  identity = [task.image, task.annotations, task.category_names, file_stat]
  return hashlib.sha256(json.dumps(identity, sort_keys=True).encode('utf-8')).hexdigest()
