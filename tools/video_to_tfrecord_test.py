"""Tests for tools/video_to_tfrecord.py: round trips, failure reporting, resuming, CLI."""

import concurrent.futures
import csv
import glob
import json
import os
import subprocess
import sys

import av
import numpy as np
import pytest
import tensorflow as tf

from projects.common import tfrecords, video_decode
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
  return video_to_tfrecord.main(['--num_workers=1', *args])


def _records(output_dir) -> list[dict]:
  paths = sorted(glob.glob(os.path.join(output_dir, '*.tfrecord')))
  return [
    tfrecords.parse_video_example(serialized) for serialized in tf.data.TFRecordDataset(paths)
  ]


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def _errors(output_dir) -> dict[str, str]:
  with open(os.path.join(output_dir, 'errors.csv'), newline='') as f:
    return {row['path']: row['reason'] for row in csv.DictReader(f)}


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
  assert (summary['inputs'], summary['converted'], summary['failed']) == (4, 1, 3)
  assert summary['frames_written'] == 12
  assert [r[tfrecords.VIDEO_ID_KEY].numpy() for r in _records(out)] == [b'good.mp4']


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


def test_resume_skips_complete_shards_and_redoes_the_rest(tmp_path, capsys):
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
  assert _run(*args) == 0
  assert mtimes() == first
  assert reused() == 2

  os.remove(shard0)
  assert _run(*args) == 0
  assert reused() == 1
  assert mtimes()[1] == first[1]

  with open(shard1, 'r+b') as f:
    f.truncate(os.path.getsize(shard1) - 10)
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


def test_crashed_worker_fails_its_shard_videos():
  videos = [video_to_tfrecord.VideoInput(f'/v{i}.mp4', f'v{i}.mp4', 'a') for i in range(2)]
  future = concurrent.futures.Future()
  future.set_exception(concurrent.futures.process.BrokenProcessPool('killed'))
  record = video_to_tfrecord._record_or_crash(
    future, ('/out/x-00000-of-00001.tfrecord', videos, None)
  )
  assert record['num_records'] == 0
  assert [f['path'] for f in record['failures']] == ['v0.mp4', 'v1.mp4']
  assert record['failures'][0]['reason'].startswith('worker crashed')
