r"""Benchmarks video-to-TFRecord conversion: frames/s and peak memory for short and long videos.

Usage (from the repo root; `python -m bench.video_convert` works the same):
  python bench/video_convert.py [--durations_sec=2,60] [--short_side=256] [--fps=15]

Each case converts one generated 320x240, 30 fps H.264 video with tools/video_to_tfrecord's
library functions in a fresh process, so that its peak RSS is its own. Memory should grow with
the video's JPEG bytes (one SequenceExample is built in memory), not with its raw frames.
"""

import argparse
import concurrent.futures
import dataclasses
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from fractions import Fraction

if __package__ in (None, ''):
  # Run as a script: make the repo root importable, as `python -m` would.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import tensorflow as tf

from projects.common import tfrecords, video_decode, video_listing
from tools import video_to_tfrecord

_FPS = 30
_HEIGHT, _WIDTH = 240, 320


def _synthetic_frames(num_frames: int) -> Iterator[np.ndarray]:
  """A drifting gradient, a moving checkerboard square and mild noise, so JPEGs are not trivial."""
  rng = np.random.default_rng(0)
  y, x = np.mgrid[0:_HEIGHT, 0:_WIDTH]
  checker = ((y // 8 + x // 8) % 2 * 255).astype(np.uint8)
  for i in range(num_frames):
    frame = np.empty((_HEIGHT, _WIDTH, 3), np.uint8)
    frame[..., 0] = (x + 2 * i) % 256
    frame[..., 1] = (y + i) % 256
    frame[..., 2] = 128
    top, left = (3 * i) % (_HEIGHT - 64), (5 * i) % (_WIDTH - 64)
    frame[top : top + 64, left : left + 64] = checker[:64, :64, np.newaxis]
    frame += rng.integers(0, 8, frame.shape, np.uint8)
    yield frame


def _peak_rss_mb() -> float:
  # ru_maxrss is in KiB on Linux.
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure_case(video_path: str, output_dir: str, settings) -> dict:
  """Runs in a fresh process: warms up on the first frames, then converts the whole video."""
  video = video_listing.ListedVideo(video_path, os.path.basename(video_path), 'synthetic')
  # Loads TensorFlow's JPEG kernels and the decoder, so the baseline holds all fixed costs.
  video_to_tfrecord.encode_video(dataclasses.replace(video, end_sec=0.2), settings)
  baseline_mb = _peak_rss_mb()
  started = time.perf_counter()
  summary = video_to_tfrecord.convert_dataset(
    [video], {'synthetic': 0}, output_dir, 'bench', settings, num_shards=1
  )
  seconds = time.perf_counter() - started
  peak_mb = _peak_rss_mb()
  if not summary.ok:
    raise RuntimeError(f'{video_path} failed to convert: {summary.errors}')
  shard_path = summary.shard_paths[0]
  (serialized,) = tf.data.TFRecordDataset(shard_path)
  return {
    'frames': len(tfrecords.parse_video_example(serialized)[tfrecords.IMAGE_KEY]),
    'seconds': seconds,
    'baseline_mb': baseline_mb,
    'peak_mb': peak_mb,
    'shard_mb': os.path.getsize(shard_path) / 2**20,
  }


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('--durations_sec', default='2,60', help='comma-separated video lengths')
  parser.add_argument('--short_side', type=int, default=256)
  parser.add_argument('--fps', type=Fraction, help='resample to this rate (default: keep 30)')
  args = parser.parse_args(argv)
  durations = [int(d) for d in args.durations_sec.split(',')]
  settings = video_to_tfrecord.ConversionSettings(args.short_side or None, args.fps)
  height, width = video_decode.resized_shape(_HEIGHT, _WIDTH, settings.short_side)
  rows = []
  with tempfile.TemporaryDirectory() as temp_dir:
    for duration in durations:
      video_path = os.path.join(temp_dir, f'video_{duration}s.mp4')
      video_decode.write_video(video_path, _synthetic_frames(duration * _FPS), fps=_FPS)
      # A fresh spawned process per case: ru_maxrss only ever grows within a process.
      with concurrent.futures.ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context('spawn')
      ) as executor:
        result = executor.submit(
          _measure_case, video_path, os.path.join(temp_dir, f'out_{duration}s'), settings
        ).result()
      rows.append((duration, result))

  resampled = f' at {settings.fps} fps' if settings.fps else ''
  print(
    f'\nvideo_to_tfrecord, 1 process: {_WIDTH}x{_HEIGHT} {_FPS} fps H.264 -> '
    f'{width}x{height} JPEG q{settings.jpeg_quality}{resampled}'
  )
  print(
    f'{"video":>7} {"frames":>7} {"frames/s":>9} {"peak RSS":>9} {"growth":>8} '
    f'{"JPEG":>8} {"growth/JPEG":>12} {"raw frames":>11}'
  )
  for duration, r in rows:
    raw_mb = r['frames'] * height * width * 3 / 2**20
    growth_mb = r['peak_mb'] - r['baseline_mb']
    print(
      f'{duration:>6}s {r["frames"]:>7} {r["frames"] / r["seconds"]:>9.0f} '
      f'{r["peak_mb"]:>7.0f}MB {growth_mb:>6.0f}MB '
      f'{r["shard_mb"]:>6.1f}MB {growth_mb / r["shard_mb"]:>12.1f} {raw_mb:>9.0f}MB'
    )
  print(
    'growth: peak RSS above the same process after warm-up (TensorFlow, codecs); JPEG: shard '
    'size; raw frames: what holding the decoded frames would take'
  )
  return 0


if __name__ == '__main__':
  sys.exit(main())
