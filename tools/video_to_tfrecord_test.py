"""Tests for tools/video_to_tfrecord.py: round trips, failure reporting, resuming, CLI."""

import csv
import errno
import glob
import json
import os
import signal
import subprocess
import sys

import av
import numpy as np
import pytest
import tensorflow as tf

from projects.common import sharded_conversion, tfrecords, video_decode
from tools import video_to_tfrecord

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_video(path, num_frames=12, codec=None) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  rng = np.random.default_rng(num_frames)
  frames = (rng.integers(0, 256, (48, 64, 3), np.uint8) for _ in range(num_frames))
  video_decode.write_video(str(path), frames, fps=30, codec=codec)


def _write_csv(path, rows, columns=('path', 'label')) -> str:
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(columns)
    writer.writerows(rows)
  return str(path)


def _run(*args: str) -> int:
  return video_to_tfrecord.main(['--num_workers=0', *args])


def _records(output_dir) -> list[dict]:
  paths = sorted(glob.glob(os.path.join(output_dir, '*.tfrecord')))
  return [
    tfrecords.parse_video_example(serialized) for serialized in tf.data.TFRecordDataset(paths)
  ]


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def _errors(output_dir, kind='failed') -> dict[str, str]:
  with open(os.path.join(output_dir, 'errors.csv'), newline='') as f:
    return {row['input']: row['reason'] for row in csv.DictReader(f) if row['kind'] == kind}


@pytest.mark.parametrize(
  'filename,codec', [('v.mp4', 'libx264'), ('v.avi', 'mpeg4'), ('v.webm', 'libvpx-vp9')]
)
def test_folder_round_trip(tmp_path, filename, codec):
  try:
    av.codec.Codec(codec, 'w')
  except av.error.FFmpegError:
    pytest.skip(f'this PyAV build has no {codec} encoder')
  _write_video(tmp_path / 'videos' / 'cat' / filename, num_frames=12, codec=codec)
  _write_video(tmp_path / 'videos' / 'dog' / 'other.mp4', num_frames=5)
  out = tmp_path / 'out'
  assert _run(f'--input={tmp_path / "videos"}', f'--output_dir={out}', '--short_side=24') == 0
  records = {r[tfrecords.VIDEO_ID_KEY].numpy().decode(): r for r in _records(out)}
  assert sorted(records) == [f'cat/{filename}', 'dog/other.mp4']
  record = records[f'cat/{filename}']
  assert len(record[tfrecords.IMAGE_KEY]) == 12
  assert tf.io.decode_jpeg(record[tfrecords.IMAGE_KEY][0]).shape == (24, 32, 3)
  assert record[tfrecords.LABEL_INDEX_KEY].numpy().tolist() == [0]
  assert record[tfrecords.LABEL_TEXT_KEY].numpy().tolist() == [b'cat']
  assert _read_json(out / 'label_map.json') == {'cat': 0, 'dog': 1}
  assert glob.glob(str(out / 'videos-*-of-00002.tfrecord'))


def _bad_inputs_csv(tmp_path) -> str:
  _write_video(tmp_path / 'good.mp4')
  (tmp_path / 'corrupt.mp4').write_bytes(np.random.default_rng(0).bytes(5000))
  (tmp_path / 'empty.mp4').write_bytes(b'')
  rows = [('good.mp4', 'a'), ('corrupt.mp4', 'a'), ('empty.mp4', 'b'), ('missing.mp4', 'b')]
  return _write_csv(tmp_path / 'list.csv', rows)


def _check_bad_inputs_reported(out) -> None:
  errors = _errors(out)
  assert sorted(errors) == ['corrupt.mp4', 'empty.mp4', 'missing.mp4']
  assert errors['corrupt.mp4'].startswith('unreadable')
  assert errors['empty.mp4'].startswith('empty file')
  assert errors['missing.mp4'].startswith('missing file')
  summary = _read_json(out / 'summary.json')
  assert (summary['inputs'], summary['written'], summary['failed']) == (4, 1, 3)
  assert summary['by_reason']['failed'] == {'unreadable': 1, 'empty file': 1, 'missing file': 1}
  (record,) = _records(out)
  assert record[tfrecords.VIDEO_ID_KEY].numpy() == b'good.mp4'
  assert len(record[tfrecords.IMAGE_KEY]) == 12


def test_bad_inputs_are_listed_and_fail_the_run_unless_allowed(tmp_path):
  listing, out = _bad_inputs_csv(tmp_path), tmp_path / 'out'
  assert _run(f'--input={listing}', f'--output_dir={out}', '--num_shards=2') == 1
  _check_bad_inputs_reported(out)
  # The rerun reuses both shards; their failures still reach errors.csv and the summary.
  assert (
    _run(f'--input={listing}', f'--output_dir={out}', '--num_shards=2', '--allow_failures') == 0
  )
  _check_bad_inputs_reported(out)
  assert _read_json(out / 'summary.json')['shards_reused'] == 2


def test_script_with_worker_processes(tmp_path):
  listing, out = _bad_inputs_csv(tmp_path), tmp_path / 'out'
  result = subprocess.run(
    [
      sys.executable,
      os.path.join(_REPO_ROOT, 'tools', 'video_to_tfrecord.py'),
      f'--input={listing}',
      f'--output_dir={out}',
      '--num_shards=2',
      '--num_workers=2',
    ],
    cwd=tmp_path,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 1, result.stderr
  assert '4 inputs: 1 converted, 3 failed' in result.stdout
  _check_bad_inputs_reported(out)


def test_resume_skips_complete_shards_and_redoes_the_rest(tmp_path, capsys, monkeypatch):
  for i in range(4):
    _write_video(tmp_path / 'videos' / f'class{i % 2}' / f'v{i}.mp4', num_frames=3)
  out = tmp_path / 'out'
  args = [f'--input={tmp_path / "videos"}', f'--output_dir={out}', '--num_shards=2']
  shard0, shard1 = tfrecords.shard_paths(str(out / 'videos'), 2)

  def mtimes():
    return [os.stat(p).st_mtime_ns for p in (shard0, shard1)]

  def reused():
    return _read_json(out / 'summary.json')['shards_reused']

  assert _run(*args) == 0
  first = mtimes()

  def no_parsing(*args, **kwargs):
    raise AssertionError('a shard was read as TFRecords to check it')

  # Kept shards are checked by size and CRC-32 alone, not by reading their records.
  with monkeypatch.context() as patch:
    patch.setattr(tf.data, 'TFRecordDataset', no_parsing)
    assert _run(*args) == 0
  assert mtimes() == first
  assert reused() == 2

  os.remove(shard0)
  assert _run(*args) == 0
  assert reused() == 1
  assert mtimes()[1] == first[1]

  with open(shard1, 'r+b') as f:
    f.seek(os.path.getsize(shard1) // 2)
    byte = f.read(1)
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte[0] ^ 0xFF]))  # Same size: only the checksum tells.
  info = os.stat(shard1)
  # File systems stamp with a coarse clock: this write may keep the mtime the done record holds.
  os.utime(shard1, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
  assert _run(*args) == 0
  assert reused() == 1
  assert len(_records(out)) == 4

  assert _run(*args, '--jpeg_quality=50') == 0
  assert reused() == 0
  assert not glob.glob(str(out / '*.tmp'))

  capsys.readouterr()
  assert _run(*args[:-1], '--num_shards=3') == 0
  assert 'warning: 2 shard(s)' in capsys.readouterr().err


def test_fps_short_side_and_clip_window(tmp_path):
  _write_video(tmp_path / 'v.mp4', num_frames=30)
  listing = _write_csv(
    tmp_path / 'clips.csv',
    [('v.mp4', 'x', '', ''), ('v.mp4', 'x', '0.5', ''), ('v.mp4', 'x', '0.2', '0.5')],
    columns=('path', 'label', 'start', 'end'),
  )
  out = tmp_path / 'out'
  assert _run(f'--input={listing}', f'--output_dir={out}', '--fps=10', '--short_side=32') == 0
  records = _records(out)
  assert sorted(len(r[tfrecords.IMAGE_KEY]) for r in records) == [3, 5, 10]
  assert {tuple(tf.io.decode_jpeg(r[tfrecords.IMAGE_KEY][-1]).shape) for r in records} == {
    (32, 43, 3)
  }


def test_given_label_map_sets_indices(tmp_path):
  _write_video(tmp_path / 'videos' / 'a' / 'v.mp4', num_frames=2)
  _write_video(tmp_path / 'videos' / 'b' / 'v.mp4', num_frames=2)
  (tmp_path / 'labels.txt').write_text('b\na\nc\n')
  out = tmp_path / 'out'
  args = [f'--input={tmp_path / "videos"}', f'--output_dir={out}']
  assert _run(*args, f'--label_map={tmp_path / "labels.txt"}') == 0
  indices = {
    r[tfrecords.VIDEO_ID_KEY].numpy().decode(): r[tfrecords.LABEL_INDEX_KEY].numpy().tolist()
    for r in _records(out)
  }
  assert indices == {'a/v.mp4': [1], 'b/v.mp4': [0]}
  assert _read_json(out / 'label_map.json') == {'b': 0, 'a': 1, 'c': 2}


def test_label_missing_from_label_map_is_named(tmp_path, capsys):
  _write_video(tmp_path / 'videos' / 'zebra' / 'v.mp4', num_frames=2)
  (tmp_path / 'labels.json').write_text('{"horse": 0}')
  code = _run(
    f'--input={tmp_path / "videos"}',
    f'--output_dir={tmp_path / "out"}',
    f'--label_map={tmp_path / "labels.json"}',
  )
  assert code == 2
  assert "'zebra'" in capsys.readouterr().err


@pytest.mark.parametrize(
  'columns,row,message',
  [
    (('path', 'class'), ('v.mp4', 'a'), 'header is path,class'),
    (('path', 'label', 'start'), ('v.mp4', 'a', 'soon'), "start 'soon' is not a number"),
    (('path', 'label', 'start', 'end'), ('v.mp4', 'a', '2', '1'), 'end 1.0 s is not after'),
  ],
)
def test_bad_csv_is_rejected_naming_the_problem(tmp_path, capsys, columns, row, message):
  listing = _write_csv(tmp_path / 'list.csv', [row], columns=columns)
  assert _run(f'--input={listing}', f'--output_dir={tmp_path / "out"}') == 2
  err = capsys.readouterr().err
  assert message in err
  assert 'list.csv' in err


def test_adding_a_video_redoes_only_its_shard(tmp_path):
  for i in range(6):
    _write_video(tmp_path / 'videos' / f'class{i % 2}' / f'v{i}.mp4', num_frames=2)
  out = tmp_path / 'out'
  args = [f'--input={tmp_path / "videos"}', f'--output_dir={out}', '--num_shards=4']
  assert _run(*args) == 0
  shards = tfrecords.shard_paths(str(out / 'videos'), 4)
  before = [os.stat(path).st_mtime_ns for path in shards]

  _write_video(tmp_path / 'videos' / 'class0' / 'v6.mp4', num_frames=2)
  assert _run(*args) == 0

  after = [os.stat(path).st_mtime_ns for path in shards]
  redone = [i for i in range(4) if after[i] != before[i]]
  assert redone == [sharded_conversion.shard_index('class0/v6.mp4', 4)]
  assert _read_json(out / 'summary.json')['shards_reused'] == 3
  assert len(_records(out)) == 7


_convert_video = video_to_tfrecord.convert_video


def _convert_or_die(video_input):
  """convert_video, but a video named `killer*` kills its process as the out-of-memory killer."""
  if os.path.basename(video_input.video.video_id).startswith('killer'):
    os.kill(os.getpid(), signal.SIGKILL)
  return _convert_video(video_input)


class _FullDiskWriter:
  def __init__(self, path):
    self.path = path

  def write(self, record):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)

  def close(self):
    pass


def test_writer_failure_and_worker_killing_video_are_reported_and_rerun_converts_the_rest(
  tmp_path, monkeypatch
):
  names = ['good.mp4', 'corrupt.mp4', 'killer.mp4', *[f'v{i}.mp4' for i in range(5)]]
  for name in names:
    if name != 'corrupt.mp4':
      _write_video(tmp_path / name, num_frames=3)
  (tmp_path / 'corrupt.mp4').write_bytes(b'not a video' * 100)
  listing = _write_csv(tmp_path / 'list.csv', [(name, 'a') for name in names])
  out = tmp_path / 'out'
  args = [f'--input={listing}', f'--output_dir={out}', '--num_shards=3']
  shards = tfrecords.shard_paths(str(out / 'list'), 3)
  full_shard = next(i for i in range(3) if i != sharded_conversion.shard_index('killer.mp4', 3))
  lost = sorted(
    name
    for name in names
    if sharded_conversion.shard_index(name, 3) == full_shard and name != 'corrupt.mp4'
  )
  real_open_writer = sharded_conversion._open_writer
  monkeypatch.setattr(
    sharded_conversion,
    '_open_writer',
    lambda path: (
      _FullDiskWriter(path)
      if path.endswith(os.path.basename(shards[full_shard]) + '.tmp')
      else real_open_writer(path)
    ),
  )
  # Worker processes unpickle the function by name, so they run the test's version too.
  monkeypatch.setattr(video_to_tfrecord, 'convert_video', _convert_or_die)

  assert video_to_tfrecord.main([*args, '--num_workers=1']) == 1

  assert _errors(out, 'crashed') == {
    'killer.mp4': 'killed its worker process (killed by SIGKILL, e.g. out of memory)'
  }
  assert sorted(_errors(out, 'write')) == lost
  assert all('No space left on device' in r for r in _errors(out, 'write').values())
  assert list(_errors(out, 'failed')) == ['corrupt.mp4']
  summary = _read_json(out / 'summary.json')
  assert summary['crashed'] == 1 and summary['write'] == len(lost) and summary['failed'] == 1
  assert summary['written'] == len(names) - 2 - len(lost)

  monkeypatch.undo()
  # In this process: retrying the killer would end the test run, so this also shows it is skipped.
  assert _run(*args) == 1
  assert _errors(out, 'crashed')['killer.mp4'].startswith('skipped: killed its worker process')
  assert not _errors(out, 'write')
  assert sorted(r[tfrecords.VIDEO_ID_KEY].numpy().decode() for r in _records(out)) == sorted(
    set(names) - {'corrupt.mp4', 'killer.mp4'}
  )
  assert _read_json(out / 'summary.json')['shards_reused'] == 2
