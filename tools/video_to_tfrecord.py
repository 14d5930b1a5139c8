r"""Converts video files into sharded video TFRecords (the contract in projects/common/tfrecords.py).

Usage (from the repo root; `python -m tools.video_to_tfrecord` works the same):
  python tools/video_to_tfrecord.py --input=train.csv --output_dir=/data/k400/train \
    --short_side=256 --num_workers=8

`--input` is a CSV with header `path,label[,start,end]` (paths relative to the CSV's folder,
start/end in seconds, optional per row) or a folder of class sub-folders holding video files.
Output in `--output_dir`: `<name>-0000i-of-0000N.tfrecord` shards, `label_map.json`, `errors.csv`
(every input that failed, with the reason) and `summary.json`. Each shard is written under a
temporary name, renamed when complete and recorded in a hidden `.<shard>.done.json`; a rerun
with the same inputs and settings keeps complete shards and redoes the rest. Exit code 1 when
any input failed (unless --allow_failures), 2 for bad arguments or inputs.
"""

import argparse
import concurrent.futures
import csv
import dataclasses
import glob
import hashlib
import json
import math
import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

if __package__ in (None, ''):
  # Run as a script: make the repo root importable, as `python -m` would.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Each worker process imports TensorFlow; its start-up banner would repeat once per worker.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import tensorflow as tf
import tqdm

from projects.common import tfrecords, video_decode

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.webm', '.mkv', '.mov')
LABEL_MAP_FILE = 'label_map.json'
ERRORS_FILE = 'errors.csv'
SUMMARY_FILE = 'summary.json'
CSV_COLUMNS = ('path', 'label', 'start', 'end')
# Enough shards for parallel conversion and shuffling on any machine, chosen without looking at
# the machine so that a rerun elsewhere resumes the same shards.
_MIN_AUTO_SHARDS = 16
_VIDEOS_PER_AUTO_SHARD = 100


class InputError(ValueError):
  """The input listing or label map is unusable; nothing has been converted."""


@dataclasses.dataclass(frozen=True)
class VideoInput:
  """One video (or clip of it) to convert."""

  path: str  # Where to open the file.
  video_id: str  # The path as the input listed it; written as `video/id`.
  label: str
  label_index: int = -1
  start_sec: float | None = None
  end_sec: float | None = None


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


def list_inputs(input_path: str) -> tuple[list[VideoInput], list[str]]:
  """Videos listed by a CSV or found in a folder of class folders, and files ignored there."""
  if os.path.isdir(input_path):
    return _list_folder(input_path)
  if os.path.isfile(input_path):
    return _read_csv(input_path), []
  raise InputError(f'--input {input_path!r} is neither a CSV file nor a folder')


def _read_csv(csv_path: str) -> list[VideoInput]:
  root = os.path.dirname(os.path.abspath(csv_path))
  with open(csv_path, newline='', encoding='utf-8') as f:
    reader = csv.DictReader(f, skipinitialspace=True)
    columns = [c.strip() for c in reader.fieldnames or []]
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if 'path' not in columns or 'label' not in columns or unknown:
      raise InputError(
        f'{csv_path}: header is {",".join(columns) or "empty"}; '
        'expected path,label with optional start,end'
      )
    reader.fieldnames = columns
    videos = []
    for row in reader:
      where = f'{csv_path}:{reader.line_num}'
      path, label = (row['path'] or '').strip(), (row['label'] or '').strip()
      if not path or not label:
        raise InputError(f'{where}: row needs both a path and a label, got {row}')
      start_sec = _parse_seconds(row.get('start'), where, 'start')
      end_sec = _parse_seconds(row.get('end'), where, 'end')
      if start_sec is not None and end_sec is not None and end_sec <= start_sec:
        raise InputError(f'{where}: end {end_sec} s is not after start {start_sec} s')
      videos.append(
        VideoInput(os.path.join(root, path), path, label, start_sec=start_sec, end_sec=end_sec)
      )
  if not videos:
    raise InputError(f'{csv_path}: lists no videos')
  return videos


def _parse_seconds(value: str | None, where: str, column: str) -> float | None:
  if value is None or not value.strip():
    return None
  try:
    seconds = float(value)
  except ValueError:
    raise InputError(f'{where}: {column} {value!r} is not a number of seconds') from None
  if not math.isfinite(seconds) or seconds < 0:
    raise InputError(f'{where}: {column} {value!r} must be a finite, non-negative number')
  return seconds


def _list_folder(root: str) -> tuple[list[VideoInput], list[str]]:
  videos, ignored = [], []
  for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
    dirnames.sort()
    for filename in sorted(filenames):
      video_id = Path(os.path.relpath(os.path.join(dirpath, filename), root)).as_posix()
      is_video = filename.lower().endswith(VIDEO_EXTENSIONS)
      if is_video and '/' in video_id:
        label = video_id.split('/', 1)[0]
        videos.append(VideoInput(os.path.join(dirpath, filename), video_id, label))
      else:
        ignored.append(video_id)
  if not videos:
    raise InputError(
      f'{root}: no class sub-folder holds a video file ({", ".join(VIDEO_EXTENSIONS)})'
    )
  return videos, ignored


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


def apply_label_map(videos: Sequence[VideoInput], label_map: dict[str, int], source: str):
  """Sets each video's label index; fails naming every label the map lacks."""
  missing = Counter(v.label for v in videos if v.label not in label_map)
  if missing:
    listed = ', '.join(f'{label!r} ({n} videos)' for label, n in sorted(missing.items()))
    raise InputError(f'label(s) not in label map {source}: {listed}')
  return [dataclasses.replace(v, label_index=label_map[v.label]) for v in videos]


def encode_video(video: VideoInput, settings: ConversionSettings) -> list[bytes]:
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


# Progress callback: (videos finished, frames written, videos failed) since the last call.
Progress = Callable[[int, int, int], None]


def convert_shard(
  shard_path: str,
  videos: Sequence[VideoInput],
  settings: ConversionSettings,
  progress: Progress,
) -> dict:
  """Writes one shard unless an earlier run completed it; returns its record.

  The record (also the `.done.json` sidecar) lists converted video ids, failures with reasons,
  frame and record counts, the hash of inputs + settings it was made from, and `reused`.
  """
  input_hash = _shard_hash(shard_path, videos, settings)
  done = _read_done_record(shard_path, input_hash)
  if done is not None:
    progress(len(videos), done['frames'], len(done['failures']))
    return {**done, 'reused': True}
  done_path = _done_path(shard_path)
  if os.path.exists(done_path):
    os.remove(done_path)
  video_ids, failures, num_frames = [], [], 0
  temp_path = _hidden_path(shard_path, '.tmp')
  with tf.io.TFRecordWriter(temp_path) as writer:
    for video in videos:
      try:
        serialized, num_video_frames = _serialize_video(video, settings)
      # Any error, even an unexpected one, fails just this video and is reported with it.
      except Exception as e:
        failures.append({'path': video.video_id, 'reason': _failure_reason(e)})
        progress(1, 0, 1)
        continue
      writer.write(serialized)
      # Not held while the next video is encoded: memory stays bounded by one video.
      del serialized
      video_ids.append(video.video_id)
      num_frames += num_video_frames
      progress(1, num_video_frames, 0)
  os.replace(temp_path, shard_path)
  record = {
    'shard': os.path.basename(shard_path),
    'input_hash': input_hash,
    'num_records': len(video_ids),
    'frames': num_frames,
    'video_ids': video_ids,
    'failures': failures,
  }
  _write_json(done_path, record)
  return {**record, 'reused': False}


def _serialize_video(video: VideoInput, settings: ConversionSettings) -> tuple[bytes, int]:
  """The video's serialized SequenceExample and its number of frames."""
  frames = encode_video(video, settings)
  example = tfrecords.make_video_example(frames, [video.label_index], [video.label], video.video_id)
  # Deterministic map order, as in tfrecords.write_sharded: reruns give byte-identical shards.
  return example.SerializeToString(deterministic=True), len(frames)


def _failure_reason(error: Exception) -> str:
  """`category: detail`; the category before the colon is what summary.json counts."""
  if isinstance(error, video_decode.VideoDecodeError):
    return f'{error.reason}: {error.detail}' if error.detail else error.reason
  return f'error: {error!r}'


def _hidden_path(shard_path: str, suffix: str) -> str:
  # A leading dot keeps helper files out of `name-*` globs that select the shards.
  directory, basename = os.path.split(shard_path)
  return os.path.join(directory, f'.{basename}{suffix}')


def _done_path(shard_path: str) -> str:
  return _hidden_path(shard_path, '.done.json')


def _shard_hash(shard_path: str, videos: Sequence[VideoInput], settings: ConversionSettings) -> str:
  # File size and mtime stand in for content: a replaced or newly added file redoes its shard.
  def stat(path):
    try:
      info = os.stat(path)
    except OSError:
      return None
    return [info.st_size, info.st_mtime_ns]

  identity = {
    'shard': os.path.basename(shard_path),
    'settings': settings.to_json(),
    'videos': [[*dataclasses.astuple(v), stat(v.path)] for v in videos],
  }
  return hashlib.sha256(json.dumps(identity, sort_keys=True).encode('utf-8')).hexdigest()


def _read_done_record(shard_path: str, input_hash: str) -> dict | None:
  """The sidecar record if it matches `input_hash` and the shard reads back whole."""
  try:
    with open(_done_path(shard_path), encoding='utf-8') as f:
      record = json.load(f)
  except (OSError, ValueError):
    return None
  if record.get('input_hash') != input_hash or not os.path.exists(shard_path):
    return None
  try:
    num_records = int(tf.data.TFRecordDataset(shard_path).reduce(0, lambda n, _: n + 1))
  except tf.errors.OpError:
    return None
  return record if num_records == record.get('num_records') else None


def _write_json(path: str, value) -> None:
  temp_path = f'{path}.tmp'
  with open(temp_path, 'w', encoding='utf-8') as f:
    json.dump(value, f, indent=2)
    f.write('\n')
  os.replace(temp_path, path)


def default_num_shards(num_videos: int) -> int:
  return min(num_videos, max(_MIN_AUTO_SHARDS, math.ceil(num_videos / _VIDEOS_PER_AUTO_SHARD)))


def convert_dataset(
  videos: Sequence[VideoInput],
  output_dir: str,
  name: str,
  settings: ConversionSettings,
  num_shards: int,
  num_workers: int = 1,
  ignored_files: Sequence[str] = (),
) -> dict:
  """Converts `videos` (label indices set) into shards; writes errors.csv and summary.json.

  Videos go round-robin to shards so that every shard mixes classes. `ignored_files` (files in
  the input that are not videos) are listed in the summary, which is returned.
  """
  started = time.monotonic()
  os.makedirs(output_dir, exist_ok=True)
  paths = tfrecords.shard_paths(os.path.join(output_dir, name), num_shards)
  tasks = [(path, videos[i::num_shards], settings) for i, path in enumerate(paths)]
  stale = sorted(set(glob.glob(os.path.join(output_dir, f'{name}-*-of-*.tfrecord'))) - set(paths))
  if stale:
    print(
      f'warning: {len(stale)} shard(s) in {output_dir} are not part of this {num_shards}-shard '
      f'output (an earlier --num_shards?), e.g. {os.path.basename(stale[0])}; delete them so '
      f"a '{name}-*' pattern does not pick them up",
      file=sys.stderr,
    )
  with tqdm.tqdm(total=len(videos), unit='video', desc=name, dynamic_ncols=True) as bar:
    totals = Counter()

    def progress(num_videos: int, num_frames: int, num_failed: int) -> None:
      totals.update(frames=num_frames, failed=num_failed)
      elapsed = max(time.monotonic() - started, 1e-6)
      bar.set_postfix(
        frames=totals['frames'],
        frames_per_s=f'{totals["frames"] / elapsed:.0f}',
        failed=totals['failed'],
        refresh=False,
      )
      bar.update(num_videos)

    if num_workers <= 1:
      records = [convert_shard(*task, progress) for task in tasks]
    else:
      records = _convert_in_processes(tasks, min(num_workers, num_shards), progress)
  summary = _write_reports(records, videos, output_dir, name, settings, paths)
  summary['ignored_files'] = list(ignored_files)
  summary['seconds'] = round(time.monotonic() - started, 2)
  _write_json(os.path.join(output_dir, SUMMARY_FILE), summary)
  return summary


_worker_progress_queue = None


def _init_worker(queue) -> None:
  global _worker_progress_queue
  _worker_progress_queue = queue
  # Workers only encode JPEG on the CPU; N of them each claiming a GPU's memory would fail.
  tf.config.set_visible_devices([], 'GPU')


def _convert_shard_in_worker(shard_path, videos, settings) -> dict:
  return convert_shard(
    shard_path, videos, settings, lambda *counts: _worker_progress_queue.put(counts)
  )


def _convert_in_processes(tasks, num_workers: int, progress: Progress) -> list[dict]:
  # Spawned, not forked: forking a process that has run TensorFlow can deadlock the child.
  context = multiprocessing.get_context('spawn')
  queue = context.Queue()
  records = [None] * len(tasks)
  with concurrent.futures.ProcessPoolExecutor(
    num_workers, mp_context=context, initializer=_init_worker, initargs=(queue,)
  ) as executor:
    futures = {executor.submit(_convert_shard_in_worker, *task): i for i, task in enumerate(tasks)}
    pending = set(futures)
    while pending:
      finished, pending = concurrent.futures.wait(pending, timeout=0.2)
      _drain(queue, progress)
      for future in finished:
        records[futures[future]] = _record_or_crash(future, tasks[futures[future]])
  _drain(queue, progress)
  return records


def _drain(queue, progress: Progress) -> None:
  while not queue.empty():
    progress(*queue.get())


def _record_or_crash(future: concurrent.futures.Future, task) -> dict:
  """The shard's record, or one failing all its videos if the worker died (e.g. out of memory)."""
  try:
    return future.result()
  except concurrent.futures.process.BrokenProcessPool as error:
    reason = f'worker crashed: {error}'
  shard_path, videos, _ = task
  return {
    'shard': os.path.basename(shard_path),
    'num_records': 0,
    'frames': 0,
    'video_ids': [],
    'failures': [{'path': v.video_id, 'reason': reason} for v in videos],
    'reused': False,
  }


def _write_reports(records, videos, output_dir, name, settings, paths) -> dict:
  failures = [f for r in records for f in r['failures']]
  with open(os.path.join(output_dir, ERRORS_FILE), 'w', newline='', encoding='utf-8') as f:
    writer = csv.DictWriter(f, fieldnames=['path', 'reason'])
    writer.writeheader()
    writer.writerows(failures)
  converted = sum(r['num_records'] for r in records)
  if converted + len(failures) != len(videos):
    raise RuntimeError(
      f'{output_dir}: {converted} converted + {len(failures)} failed != {len(videos)} inputs'
    )
  return {
    'name': name,
    'settings': settings.to_json(),
    'inputs': len(videos),
    'converted': converted,
    'failed': len(failures),
    'frames_written': sum(r['frames'] for r in records),
    'failures_by_reason': dict(Counter(f['reason'].split(':', 1)[0] for f in failures)),
    'shards': [os.path.basename(p) for p in paths],
    'shards_reused': sum(r['reused'] for r in records),
    'errors_csv': ERRORS_FILE,
  }


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
    '--num_workers', type=int, default=os.cpu_count(), help='processes (default: CPU count)'
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
    videos, ignored = list_inputs(args.input)
    if args.label_map:
      label_map, source = load_label_map(args.label_map), args.label_map
    else:
      label_map = {label: i for i, label in enumerate(sorted({v.label for v in videos}))}
      source = f'built from {args.input}'
    videos = apply_label_map(videos, label_map, source)
  except (InputError, OSError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  os.makedirs(args.output_dir, exist_ok=True)
  _write_json(
    os.path.join(args.output_dir, LABEL_MAP_FILE),
    dict(sorted(label_map.items(), key=lambda item: item[1])),
  )
  input_path = Path(os.path.abspath(args.input))
  name = args.name or (input_path.name if input_path.is_dir() else input_path.stem)
  settings = ConversionSettings(args.short_side or None, args.fps, args.jpeg_quality)
  summary = convert_dataset(
    videos,
    args.output_dir,
    name,
    settings,
    args.num_shards or default_num_shards(len(videos)),
    args.num_workers,
    ignored,
  )
  print(
    f'{summary["inputs"]} inputs: {summary["converted"]} converted, {summary["failed"]} failed, '
    f'{summary["frames_written"]} frames in {len(summary["shards"])} shards '
    f'({summary["shards_reused"]} reused from an earlier run) in {summary["seconds"]} s'
  )
  for reason, count in sorted(summary['failures_by_reason'].items()):
    print(f'  failed, {reason}: {count}')
  if ignored:
    print(f'  ignored {len(ignored)} non-video or unlabelled file(s), e.g. {ignored[0]}')
  print(f'wrote {LABEL_MAP_FILE}, {ERRORS_FILE} and {SUMMARY_FILE} in {args.output_dir}')
  if summary['failed'] and not args.allow_failures:
    print(f'error: {summary["failed"]} input(s) failed; see {ERRORS_FILE}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
