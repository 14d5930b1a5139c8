r"""Converts video files into sharded video TFRecords (the contract in projects/common/tfrecords.py).

Usage (from the repo root; `python -m tools.video_to_tfrecord` works the same):
  python tools/video_to_tfrecord.py --input=train.csv --output_dir=/data/k400/train \
    --short_side=256 --num_workers=8

`--input` is a CSV `path,label[,start,end]` (header optional; paths relative to the CSV's folder,
start/end in seconds, optional per row) or a folder of class sub-folders holding video files
(projects/common/video_listing.py). Output in `--output_dir`: `<name>-0000i-of-0000N.tfrecord`
shards, `label_map.json`, `errors.csv` and `summary.json` (projects/common/sharded_conversion.py
writes them). A video goes to the shard a hash of its path picks, so adding videos redoes only
their shards. errors.csv (`input,kind,reason`; input: the path as listed, `#t=start,end` added
for a clip) has a row for every video not written, with its kind (`failed`: it cannot be decoded;
`crashed`: it killed its worker process, e.g. out of memory; `write`: writing its shard failed)
and reason; both reports are written even when the run itself fails. A
complete shard is recorded in a hidden `.<shard>.done.json` with its size and CRC-32; a rerun with
the same inputs and settings keeps shards that match and redoes the rest, and skips videos that
crashed a worker before (delete `.crashed.json` to retry them). Exit code 1 when any video was not
written (unless --allow_failures), 2 for bad arguments or inputs.
"""

import argparse
import dataclasses
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

if __package__ in (None, ''):
  # Run as a script: make the repo root importable, as `python -m` would.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Each worker process imports TensorFlow; its start-up banner would repeat once per worker.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np

from projects.common import sharded_conversion, tfrecords, video_decode, video_listing
from projects.common.video_listing import ListedVideo, ListingError

LABEL_MAP_FILE = 'label_map.json'
# Enough shards for parallel conversion and shuffling on any machine, chosen without looking at
# the machine so that a rerun elsewhere resumes the same shards.
_MIN_AUTO_SHARDS = 16
_VIDEOS_PER_AUTO_SHARD = 100


class InputError(ValueError):
  """The label map is unusable; nothing has been converted."""


@dataclasses.dataclass(frozen=True)
class ConversionSettings:
  """How frames are converted; part of each shard's identity for resuming."""

  short_side: int | None = 256
  fps: Fraction | None = None
  jpeg_quality: int = 90

  def to_json(self) -> dict:
    return {
      'short_side': self.short_side,
      'fps': None if self.fps is None else str(self.fps),
      'jpeg_quality': self.jpeg_quality,
    }


@dataclasses.dataclass(frozen=True)
class VideoInput:
  """What a worker converts: one listed video (or clip) with its label index and the settings."""

  video: ListedVideo
  label_index: int
  settings: ConversionSettings


def load_label_map(path: str) -> dict[str, int]:
  """Reads `{name: index}` JSON, a JSON list of names, or a text file with one name per line."""
  with open(path, encoding='utf-8') as f:
    if path.endswith('.json'):
      loaded = json.load(f)
    else:
      loaded = [line.strip() for line in f if line.strip()]
  if isinstance(loaded, list) and all(isinstance(name, str) for name in loaded):
    loaded = {name: i for i, name in enumerate(loaded)}
  indices = list(loaded.values()) if isinstance(loaded, dict) else None
  if not indices or not all(isinstance(i, int) and i >= 0 for i in indices):
    raise InputError(f'{path}: expected {{name: index}} with non-negative integer indices')
  if len(set(indices)) != len(indices):
    raise InputError(f'{path}: label indices repeat: {sorted(indices)}')
  return loaded


def check_labels(videos: Sequence[ListedVideo], label_map: dict[str, int], source: str) -> None:
  """Fails naming every label the map lacks."""
  missing = Counter(v.label for v in videos if v.label not in label_map)
  if missing:
    listed = ', '.join(f'{label!r} ({n} videos)' for label, n in sorted(missing.items()))
    raise InputError(f'label(s) not in label map {source}: {listed}')


def encode_video(video: ListedVideo, settings: ConversionSettings) -> list[bytes]:
  """Decodes, resizes, resamples and JPEG-encodes one video, a frame at a time."""
  encoded = []
  for frame, repeats in video_decode.iter_frames(
    video.path,
    short_side=settings.short_side,
    fps=settings.fps,
    start_sec=video.start_sec,
    end_sec=video.end_sec,
  ):
    jpeg = tfrecords.encode_jpeg_frames(frame[np.newaxis], settings.jpeg_quality)[0]
    encoded.extend([jpeg] * repeats)
  return encoded


def convert_video(video_input: VideoInput) -> sharded_conversion.ItemResult:
  """One video's serialized SequenceExample; ItemFailed (`reason: detail`) if it cannot decode."""
  video = video_input.video
  try:
    frames = encode_video(video, video_input.settings)
  except video_decode.VideoDecodeError as error:
    reason = f'{error.reason}: {error.detail}' if error.detail else error.reason
    raise sharded_conversion.ItemFailed(reason) from error
  example = tfrecords.make_video_example(
    frames, [video_input.label_index], [video.label], video.video_id
  )
  # Deterministic map order, as in tfrecords.write_sharded: reruns give byte-identical shards.
  return sharded_conversion.ItemResult([example.SerializeToString(deterministic=True)])


def default_num_shards(num_videos: int) -> int:
  return min(num_videos, max(_MIN_AUTO_SHARDS, math.ceil(num_videos / _VIDEOS_PER_AUTO_SHARD)))


def convert_dataset(
  videos: Sequence[ListedVideo],
  label_map: dict[str, int],
  output_dir: str,
  name: str,
  settings: ConversionSettings,
  num_shards: int,
  num_workers: int = 0,
  ignored_files: Sequence[str] = (),
) -> sharded_conversion.ConversionSummary:
  """Converts `videos` into shards with errors.csv and summary.json; returns the summary.

  `num_workers=0` converts in this process. `ignored_files` (files in the input folder that are
  not listed) are named in summary.json.
  """
  # A fingerprint of label and file stamp: a relabelled or replaced video redoes its shard.
  items = [
    sharded_conversion.Item(
      video.key,
      VideoInput(video, label_map[video.label], settings),
      json.dumps([video.label, label_map[video.label], sharded_conversion.file_stamp(video.path)]),
    )
    for video in videos
  ]
  return sharded_conversion.run_conversion(
    items,
    convert_video,
    output_dir,
    file_prefix=name,
    num_shards=num_shards,
    num_workers=num_workers,
    settings=settings.to_json(),
    progress_desc=name,
    extra_summary={'name': name, 'label_map': LABEL_MAP_FILE, 'ignored_files': list(ignored_files)},
  )


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    description=__doc__.split('\n', 1)[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--input', required=True, help='CSV (path,label[,start,end]) or a folder')
  parser.add_argument('--output_dir', required=True, help='folder for shards and reports')
  parser.add_argument('--name', help='shard name prefix (default: CSV or folder name)')
  parser.add_argument(
    '--num_shards',
    type=int,
    help=f'default: one per {_VIDEOS_PER_AUTO_SHARD} videos, at least {_MIN_AUTO_SHARDS} '
    '(at most one per video)',
  )
  parser.add_argument(
    '--num_workers',
    type=int,
    default=os.cpu_count(),
    help='worker processes (default: CPU count); 0 converts in this process, where a video '
    'that crashes the process ends the run',
  )
  parser.add_argument(
    '--short_side', type=int, default=256, help='resize so the short side has this many px; 0 keeps'
  )
  parser.add_argument(
    '--fps', type=Fraction, help='resample to this frame rate, e.g. 15 or 30000/1001'
  )
  parser.add_argument('--jpeg_quality', type=int, default=90, help='1 to 100')
  parser.add_argument(
    '--label_map',
    help='existing label map (JSON {name: index} or list, or text with one name per line); '
    'default: input classes sorted by name',
  )
  parser.add_argument(
    '--allow_failures', action='store_true', help='exit 0 even when some inputs failed'
  )
  args = parser.parse_args(argv)
  if args.num_workers < 0:
    parser.error(f'--num_workers must be 0 or more, got {args.num_workers}')
  if args.num_shards is not None and args.num_shards < 1:
    parser.error(f'--num_shards must be at least 1, got {args.num_shards}')
  if args.short_side < 0:
    parser.error(f'--short_side must be positive (or 0 to keep the size), got {args.short_side}')
  if args.fps is not None and args.fps <= 0:
    parser.error(f'--fps must be positive, got {args.fps}')
  if not 1 <= args.jpeg_quality <= 100:
    parser.error(f'--jpeg_quality must be in 1..100, got {args.jpeg_quality}')
  return args


def main(argv: Sequence[str] | None = None) -> int:
  args = _parse_args(argv)
  try:
    listing = video_listing.list_videos(args.input, require_labels=True)
    videos = listing.videos
    if args.label_map:
      label_map, source = load_label_map(args.label_map), args.label_map
    else:
      label_map = {label: i for i, label in enumerate(sorted({v.label for v in videos}))}
      source = f'built from {args.input}'
    check_labels(videos, label_map, source)
  except (ListingError, InputError, OSError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  os.makedirs(args.output_dir, exist_ok=True)
  sharded_conversion.write_json(
    os.path.join(args.output_dir, LABEL_MAP_FILE),
    dict(sorted(label_map.items(), key=lambda item: item[1])),
  )
  input_path = Path(os.path.abspath(args.input))
  name = args.name or (input_path.name if input_path.is_dir() else input_path.stem)
  settings = ConversionSettings(args.short_side or None, args.fps, args.jpeg_quality)
  summary = convert_dataset(
    videos,
    label_map,
    args.output_dir,
    name,
    settings,
    args.num_shards or default_num_shards(len(videos)),
    args.num_workers,
    listing.ignored,
  )
  print(
    f'{summary.inputs} inputs: {summary.written} converted, {summary.not_written} failed, in '
    f'{len(summary.shard_paths)} shards ({summary.shards_reused} reused from an earlier run) in '
    f'{summary.seconds} s'
  )
  for (kind, reason), count in sorted(summary.counts_by_reason().items()):
    print(f'  {kind}, {reason}: {count}')
  if listing.ignored:
    print(
      f'  ignored {len(listing.ignored)} non-video or unlabelled file(s), e.g. {listing.ignored[0]}'
    )
  print(
    f'wrote {LABEL_MAP_FILE}, {sharded_conversion.ERRORS_FILE} and '
    f'{sharded_conversion.SUMMARY_FILE} in {args.output_dir}'
  )
  if not summary.ok and not args.allow_failures:
    print(
      f'error: {summary.not_written} input(s) not written; see {sharded_conversion.ERRORS_FILE}',
      file=sys.stderr,
    )
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
