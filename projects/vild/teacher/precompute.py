"""ViLD's offline step: proposals of each detection TFRecord image → the image teacher's embeddings
of their 1x and 1.5x crops, written back into the record as the RoI fields ViLD-image reads.

Every record of the input TFRecords is one input of `projects/common/sharded_conversion`: it is
written (its fields unchanged, plus `image/roi/bbox/*` and `image/roi/feature`, see
`projects/vild/dataloaders/roi_features.py`) or listed in errors.csv, and reruns keep finished
shards. Records are located by byte offset, so no input is held in memory.
"""

import dataclasses
import glob
import hashlib
import json
import math
import os
import re
import struct

import numpy as np
import tensorflow as tf
from google.protobuf import message

from projects.common import sharded_conversion
from projects.vild.dataloaders import roi_features
from projects.vild.teacher import image_encoder

JITTERED_GROUNDTRUTH = 'jittered_groundtruth'
# Jittered groundtruth proposals: centres move by up to this fraction of the box size, sides scale
# by up to exp(±_MAX_LOG_SCALE); the random boxes that fill up to M have sides in this range
# (fraction of the image side).
_MAX_SHIFT = 0.1
_MAX_LOG_SCALE = 0.2
_RANDOM_BOX_SIDES = (0.1, 0.6)
# Part of every shard's identity: bump it when the written fields change so reruns redo shards.
_OUTPUT_FORMAT = 1
_HEADER_BYTES = 12  # uint64 length + uint32 masked CRC of the length.
_FOOTER_BYTES = 4  # uint32 masked CRC of the data.
_SHARD_SUFFIX = re.compile(r'-\d{5}-of-\d{5}\.tfrecord$')

# errors.csv reasons (the text before the first colon is counted in summary.json).
TRUNCATED_RECORD = 'truncated record'
UNDECODABLE_RECORD = 'undecodable record'
UNDECODABLE_IMAGE = 'undecodable image'
NO_PROPOSALS = 'no proposals'
BAD_PROPOSAL = 'bad proposal'


class InputError(ValueError):
  """The inputs, proposals or encoder are unusable as a whole; nothing has been written."""


@dataclasses.dataclass(frozen=True)
class Settings:
  """What every record's RoIs are made with (part of each shard's identity)."""

  image_encoder: str
  crop_size: int
  num_proposals: int
  proposals: str  # JITTERED_GROUNDTRUTH or the proposals JSON's path.
  seed: int
  scales: tuple[float, ...] = image_encoder.VILD_CROP_SCALES


@dataclasses.dataclass(frozen=True)
class RecordTask:
  """One input record, located in its file (the payload of a sharded_conversion.Item)."""

  path: str
  offset: int  # Where the record's header starts; -1 for bytes after the last whole record.
  length: int
  key: str
  settings: Settings
  # Given proposals for this image ([[ymin, xmin, ymax, xmax], ...] normalised), None when
  # they come from the groundtruth or the proposals file has none for the image.
  proposals: list | None


def list_records(path: str) -> list[tuple[int, int]]:
  """(offset, data length) of each record of a TFRecord file, reading only the headers; a final
  incomplete record is (offset, -1)."""
  size = os.path.getsize(path)
  records, offset = [], 0
  with open(path, 'rb') as f:
    while offset < size:
      header = f.read(_HEADER_BYTES)
      if len(header) < _HEADER_BYTES:
        return records + [(offset, -1)]
      (length,) = struct.unpack('<Q', header[:8])
      end = offset + _HEADER_BYTES + length + _FOOTER_BYTES
      if end > size:
        return records + [(offset, -1)]
      records.append((offset, length))
      offset = end
      f.seek(offset)
  return records


def read_record(path: str, offset: int, length: int) -> bytes:
  with open(path, 'rb') as f:
    f.seek(offset + _HEADER_BYTES)
    return f.read(length)


def feature_values(example: tf.train.Example, key: str, kind: str) -> list:
  """The `kind` ('bytes_list', 'float_list') values of a feature; looked up without indexing the
  map, which would add the key to the record."""
  features = example.features.feature
  return list(getattr(features[key], kind).value) if key in features else []


def image_source_id(example: tf.train.Example) -> str:
  values = feature_values(example, 'image/source_id', 'bytes_list')
  return values[0].decode('utf-8', 'replace') if values else ''


def load_proposals(path: str) -> dict[str, list]:
  """A proposals JSON: {"<image/source_id>": [[ymin, xmin, ymax, xmax], ...]} (normalised)."""
  try:
    with open(path) as f:
      proposals = json.load(f)
  except (OSError, ValueError) as e:
    raise InputError(f'cannot read proposals {path}: {e}') from None
  if not isinstance(proposals, dict) or not all(isinstance(v, list) for v in proposals.values()):
    raise InputError(
      f'proposals {path}: expected a JSON object {{"<image/source_id>": [[ymin, xmin, ymax, '
      'xmax], ...]}} with normalised boxes'
    )
  return proposals


def record_tasks(
  input_paths: list[str], settings: Settings, proposals: dict[str, list] | None
) -> list[RecordTask]:
  """One task per record of the input files (keys `<path relative to their folder>:<index>`)."""
  root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in input_paths])
  tasks = []
  for path in input_paths:
    relative = os.path.relpath(os.path.abspath(path), root)
    for index, (offset, length) in enumerate(list_records(path)):
      boxes = None
      if proposals is not None and length >= 0:
        try:
          example = tf.train.Example.FromString(read_record(path, offset, length))
          boxes = proposals.get(image_source_id(example))
        except message.DecodeError:  # The worker names what is wrong with the record.
          pass
      tasks.append(RecordTask(path, offset, length, f'{relative}:{index}', settings, boxes))
  return tasks


_ENCODERS: dict[tuple[str, int], image_encoder.ImageEncoder] = {}


def cached_encoder(path: str, crop_size: int | None) -> image_encoder.ImageEncoder:
  """The encoder at `path`, loaded once per process (each worker loads it on its first record)."""
  key = (path, crop_size)
  if key not in _ENCODERS:
    _ENCODERS[key] = image_encoder.load_image_encoder(path, crop_size)
    # Records name the crop size the encoder resolved: loaded without one, it is found by both.
    _ENCODERS[(path, _ENCODERS[key].crop_size)] = _ENCODERS[key]
  return _ENCODERS[key]


def jittered_groundtruth_proposals(
  example: tf.train.Example, num_proposals: int, rng: np.random.Generator
) -> np.ndarray:
  """[num_proposals, 4] normalised yxyx class-agnostic proposals: every groundtruth box (labels are
  never read) jittered like an RPN's imprecise box, then random boxes up to `num_proposals`.

  The demo's stand-in for the proposals of an RPN trained on base classes: like those, they cover
  objects of every class (an RPN generalises to novel objects, ViLD Sec. 4.2) and background.
  """
  boxes = np.stack(
    [
      np.asarray(feature_values(example, f'image/object/bbox/{c}', 'float_list'), np.float32)
      for c in ('ymin', 'xmin', 'ymax', 'xmax')
    ],
    axis=-1,
  )[:num_proposals]
  sizes = boxes[:, 2:] - boxes[:, :2]
  centres = (boxes[:, :2] + boxes[:, 2:]) / 2 + sizes * rng.uniform(
    -_MAX_SHIFT, _MAX_SHIFT, sizes.shape
  )
  sizes = sizes * np.exp(rng.uniform(-_MAX_LOG_SCALE, _MAX_LOG_SCALE, sizes.shape))
  jittered = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
  num_random = num_proposals - len(jittered)
  random_sizes = rng.uniform(*_RANDOM_BOX_SIDES, [num_random, 2])
  corners = rng.uniform(0, 1, [num_random, 2]) * (1 - random_sizes)
  random_boxes = np.concatenate([corners, corners + random_sizes], axis=1)
  return np.clip(np.concatenate([jittered, random_boxes]), 0.0, 1.0).astype(np.float32)


def _checked_proposals(proposals: list, num_proposals: int) -> tuple[np.ndarray, list[str]]:
  """The first `num_proposals` usable boxes, and a reason for each box left out."""
  boxes, dropped = [], []
  for i, box in enumerate(proposals):
    usable = (
      isinstance(box, list)
      and len(box) == 4
      and all(isinstance(v, int | float) and math.isfinite(v) for v in box)
      and 0 <= box[0] < box[2] <= 1
      and 0 <= box[1] < box[3] <= 1
    )
    if not usable:
      dropped.append(
        f'{BAD_PROPOSAL}: box {i} {box!r:.80} is not [ymin, xmin, ymax, xmax] with 0 <= ymin < '
        'ymax <= 1 and 0 <= xmin < xmax <= 1'
      )
    elif len(boxes) < num_proposals:
      boxes.append(box)
  return np.asarray(boxes, np.float32).reshape(-1, 4), dropped


def convert_record(task: RecordTask) -> sharded_conversion.ItemResult:
  """The record with its RoI fields: `num_proposals` rows, zero-padded (padding: all coordinates
  0, as ViLD-image's loss expects). Raises ItemFailed when the record cannot be written."""
  settings = task.settings
  if task.length < 0:
    raise sharded_conversion.ItemFailed(
      f'{TRUNCATED_RECORD}: {task.path} ends inside the record at byte {task.offset}'
    )
  try:
    example = tf.train.Example.FromString(read_record(task.path, task.offset, task.length))
  except message.DecodeError as e:
    raise sharded_conversion.ItemFailed(
      f'{UNDECODABLE_RECORD}: not a tf.train.Example ({e})'
    ) from None
  source_id = image_source_id(example)
  encoded = feature_values(example, 'image/encoded', 'bytes_list')
  try:
    image = tf.io.decode_image(encoded[0], channels=3, expand_animations=False)
  except (IndexError, tf.errors.OpError) as e:
    raise sharded_conversion.ItemFailed(
      f'{UNDECODABLE_IMAGE}: image/source_id {source_id!r}: '
      f'{getattr(e, "message", None) or "no image/encoded"}'
    ) from None
  dropped = []
  if settings.proposals == JITTERED_GROUNDTRUTH:
    seed = int.from_bytes(hashlib.sha256(task.key.encode()).digest()[:8], 'big')
    boxes = jittered_groundtruth_proposals(
      example, settings.num_proposals, np.random.default_rng([settings.seed, seed])
    )
  elif task.proposals is None:
    raise sharded_conversion.ItemFailed(
      f'{NO_PROPOSALS}: image/source_id {source_id!r} is not in {settings.proposals}'
    )
  else:
    boxes, dropped = _checked_proposals(task.proposals, settings.num_proposals)
  encoder = cached_encoder(settings.image_encoder, settings.crop_size)
  embeddings = encoder.embed_boxes(image[tf.newaxis], boxes, scales=settings.scales)
  padded_boxes = np.zeros([settings.num_proposals, 4], np.float32)
  padded_boxes[: len(boxes)] = boxes
  padded_embeddings = np.zeros([settings.num_proposals, embeddings.shape[-1]], np.float32)
  padded_embeddings[: len(boxes)] = embeddings
  for key, feature in roi_features.roi_feature_dict(padded_boxes, padded_embeddings).items():
    example.features.feature[key].CopyFrom(feature)
  return sharded_conversion.ItemResult([example.SerializeToString(deterministic=True)], dropped)


def _file_identity(path: str) -> list:
  """Size and mtime of the file, or of every file of the folder (a SavedModel)."""
  if os.path.isfile(path):
    return sharded_conversion.file_stamp(path)
  return sorted(
    [
      os.path.relpath(os.path.join(parent, name), path),
      sharded_conversion.file_stamp(os.path.join(parent, name)),
    ]
    for parent, _, names in os.walk(path)
    for name in names
  )


def output_file_prefix(input_paths: list[str]) -> str:
  """`instances_train` for inputs `instances_train-0000i-of-0000N.tfrecord`, plus `_rois`."""
  return _SHARD_SUFFIX.sub('', os.path.basename(input_paths[0])).removesuffix('.tfrecord') + '_rois'


def input_files(input_pattern: str) -> list[str]:
  """The files of comma-separated globs, sorted; InputError when there are none."""
  paths = sorted({p for part in input_pattern.split(',') for p in glob.glob(part.strip())})
  if not paths:
    raise InputError(f'no files match the input pattern {input_pattern!r}')
  return paths


def precompute_rois(
  input_pattern: str,
  output_dir: str,
  image_encoder_path: str,
  *,
  num_proposals: int = 20,
  proposals: str = JITTERED_GROUNDTRUTH,
  crop_size: int | None = None,
  seed: int = 0,
  num_shards: int | None = None,
  num_workers: int = 0,
  allow_failures: bool = False,
) -> sharded_conversion.ConversionSummary:
  """Writes the records of `input_pattern` (comma-separated globs) with RoI fields to
  `output_dir` as `<input prefix>_rois-0000i-of-0000N.tfrecord` (N: `num_shards`, default the
  number of input files), beside errors.csv and summary.json.

  `proposals` is JITTERED_GROUNDTRUTH or a proposals JSON (see `load_proposals`); `num_proposals`
  (M) rows are written per image, the first M usable boxes, zero-padded. Raises InputError when
  nothing can be done, sharded_conversion.ConversionFailed after the run if a record was not written (unless
  `allow_failures`).
  """
  input_paths = input_files(input_pattern)
  if num_proposals < 1:
    raise InputError(f'num_proposals must be at least 1, got {num_proposals}')
  image_encoder_path = os.path.abspath(image_encoder_path)
  try:
    encoder = cached_encoder(image_encoder_path, crop_size)
    # One blank crop: the encoder runs, and its embedding size goes into summary.json.
    blank_embedding = encoder.embed_crops(np.zeros([1, encoder.crop_size, encoder.crop_size, 3]))
  except (ValueError, OSError, tf.errors.OpError) as e:
    raise InputError(f'cannot use the image encoder {image_encoder_path}: {e}') from None
  given = None if proposals == JITTERED_GROUNDTRUTH else load_proposals(proposals)
  settings = Settings(
    image_encoder=image_encoder_path,
    crop_size=encoder.crop_size,
    num_proposals=num_proposals,
    proposals=proposals if given is None else os.path.abspath(proposals),
    seed=seed,
  )
  tasks = record_tasks(input_paths, settings, given)
  if not tasks:
    raise InputError(f'the files of {input_pattern!r} hold no records')
  identity = {
    **dataclasses.asdict(settings),
    'image_encoder_files': _file_identity(image_encoder_path),
    'output_format': _OUTPUT_FORMAT,
  }
  summary = sharded_conversion.run_conversion(
    [sharded_conversion.Item(t.key, t, _fingerprint(t)) for t in tasks],
    convert_record,
    output_dir,
    file_prefix=output_file_prefix(input_paths),
    num_shards=num_shards or len(input_paths),
    num_workers=num_workers,
    settings=identity,
    progress_desc='images',
    extra_summary={
      'input_files': [os.path.abspath(p) for p in input_paths],
      'embedding_dim': blank_embedding.shape[1],
    },
  )
  if not summary.ok and not allow_failures:
    raise sharded_conversion.ConversionFailed(summary, output_dir)
  return summary


def _fingerprint(task: RecordTask) -> str:
  """What the record's output is made from: its file, place and given proposals."""
  identity = [sharded_conversion.file_stamp(task.path), task.offset, task.length, task.proposals]
  return hashlib.sha256(json.dumps(identity).encode('utf-8')).hexdigest()
