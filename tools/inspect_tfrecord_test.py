"""Tests for tools/inspect_tfrecord.py: printed statistics and the contact sheet PNG."""

import matplotlib.image
import numpy as np

from projects.common import tfrecords
from tools import inspect_tfrecord


def _write_clips(tmp_path) -> str:
  """Six clips: labels 0, 1, 0, 1, 0, 1 named 'even'/'odd', 3 to 8 frames of 24x32."""
  rng = np.random.default_rng(0)
  examples = []
  for i in range(6):
    frames = rng.integers(0, 256, (3 + i, 24, 32, 3), np.uint8)
    examples.append(
      tfrecords.make_video_example(
        tfrecords.encode_jpeg_frames(frames),
        [i % 2],
        ['odd' if i % 2 else 'even'],
        f'clip{i}.mp4',
      )
    )
  tfrecords.write_sharded(examples, str(tmp_path / 'clips'), num_shards=2)
  return str(tmp_path / 'clips-*')


def test_prints_counts_and_writes_contact_sheet(tmp_path, capsys):
  pattern = _write_clips(tmp_path)
  sheet = tmp_path / 'sheet.png'
  code = inspect_tfrecord.main(
    [f'--input_path={pattern}', f'--contact_sheet={sheet}', '--num_clips=3', '--num_frames=4']
  )
  assert code == 0
  out = capsys.readouterr().out
  assert 'files: 2' in out
  assert 'records: 6' in out
  assert '      0      3  even' in out
  assert '      1      3  odd' in out
  assert 'frames per clip: min 3, mean 5.5, max 8' in out
  assert '24x32 (6 clips)' in out
  image = matplotlib.image.imread(sheet)
  assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 300


def test_no_matching_file_is_an_error(tmp_path, capsys):
  assert inspect_tfrecord.main([f'--input_path={tmp_path}/nothing-*']) == 2
  assert 'nothing-*' in capsys.readouterr().err
