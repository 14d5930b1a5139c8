"""Tests for projects.common.sharded_conversion: accounting, injected failures, resuming."""

import csv
import errno
import json
import os
import signal

import pytest

from projects.common import sharded_conversion

_SETTINGS = {'quality': 90}
CALLS = []  # Payloads converted in this process (num_workers=0).


def _convert(payload: str) -> sharded_conversion.ItemResult:
  """Test `convert_item`: the payload's first word says how the input behaves."""
  CALLS.append(payload)
  behaviour = payload.split('-', 1)[0]
  if behaviour == 'unreadable':
    raise sharded_conversion.ItemFailed('unreadable: bad header')
  if behaviour == 'buggy':
    raise ZeroDivisionError('division by zero')
  if behaviour == 'exits':
    os._exit(3)
  if behaviour == 'oom':
    # What the kernel's out-of-memory killer does.
    os.kill(os.getpid(), signal.SIGKILL)
  dropped = ['annotation 2: empty box'] if behaviour == 'partial' else []
  return sharded_conversion.ItemResult([payload.encode()], dropped)


def _items(*keys: str) -> list[sharded_conversion.Item]:
  return [sharded_conversion.Item(key, key) for key in keys]


def _good(count: int, start: int = 0) -> list[str]:
  return [f'good-{i}' for i in range(start, start + count)]


def _run(output_dir, keys, num_workers=0, num_shards=4, settings=_SETTINGS):
  CALLS.clear()
  return sharded_conversion.run_conversion(
    _items(*keys),
    _convert,
    str(output_dir),
    file_prefix='data',
    num_shards=num_shards,
    num_workers=num_workers,
    settings=settings,
  )


def _errors_csv(output_dir) -> list[tuple[str, str, str]]:
  with open(os.path.join(output_dir, sharded_conversion.ERRORS_FILE), newline='') as f:
    rows = list(csv.reader(f))
  assert rows[0] == ['input', 'kind', 'reason']
  return [tuple(row) for row in rows[1:]]


def _summary_json(output_dir) -> dict:
  with open(os.path.join(output_dir, sharded_conversion.SUMMARY_FILE)) as f:
    return json.load(f)


def _written(output_dir) -> list[str]:
  # Imported here, not at the top: worker processes import this module for `_convert`, and
  # importing TensorFlow would add seconds to each.
  import tensorflow as tf

  paths = sorted(str(p) for p in output_dir.glob('data-*.tfrecord'))
  return sorted(record.decode() for record in tf.data.TFRecordDataset(paths).as_numpy_iterator())


def _shard_of(key: str, num_shards: int = 4) -> int:
  return sharded_conversion.shard_index(key, num_shards)


def _done_records(output_dir) -> dict[str, str]:
  return {path.name: path.read_text() for path in output_dir.glob('.data-*.done.json')}


def test_every_input_is_written_or_listed_with_its_reason(tmp_path):
  keys = [*_good(5), 'unreadable-a', 'buggy-b', 'partial-c']
  summary = _run(tmp_path, keys)

  assert _written(tmp_path) == sorted([*_good(5), 'partial-c'])
  expected = [
    ('buggy-b', 'failed', 'ZeroDivisionError: division by zero'),
    ('partial-c', 'dropped', 'annotation 2: empty box'),
    ('unreadable-a', 'failed', 'unreadable: bad header'),
  ]
  assert summary.errors == expected
  assert _errors_csv(tmp_path) == expected
  assert (summary.inputs, summary.written, summary.failed, summary.dropped) == (8, 6, 2, 1)
  assert not summary.ok and summary.not_written == 2
  assert summary.counts_by_reason() == {
    ('dropped', 'annotation 2'): 1,
    ('failed', 'ZeroDivisionError'): 1,
    ('failed', 'unreadable'): 1,
  }
  report = _summary_json(tmp_path)
  assert report['by_reason'] == {
    'dropped': {'annotation 2': 1},
    'failed': {'ZeroDivisionError': 1, 'unreadable': 1},
  }
  assert report['settings'] == _SETTINGS
  assert len(report['shards']) == 4 and report['written'] == 6
  # Every shard exists (an empty one too), so the names' `-of-N` holds.
  assert all(os.path.exists(path) for path in summary.shard_paths)


def test_shard_is_a_stable_hash_of_the_key(tmp_path):
  # Not Python's per-process salted hash(): the same key lands in the same shard in any process.
  assert sharded_conversion.shard_index('class_a/video_1.mp4', 1000) == 25
  _run(tmp_path, _good(12))
  before = _done_records(tmp_path)

  summary = _run(tmp_path, [*_good(12), 'good-new'])

  after = _done_records(tmp_path)
  changed = [name for name in after if after[name] != before[name]]
  assert changed == [f'.data-{_shard_of("good-new"):05d}-of-00004.tfrecord.done.json']
  assert summary.shards_reused == 3
  assert sorted(CALLS) == sorted(
    key for key in [*_good(12), 'good-new'] if _shard_of(key) == _shard_of('good-new')
  )
  assert _written(tmp_path) == sorted([*_good(12), 'good-new'])


def _bump_mtime(path) -> None:
  # File systems stamp with a coarse clock: a write right after the run may keep its mtime.
  info = os.stat(path)
  os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))


def test_resume_keeps_verified_shards_and_redoes_a_corrupted_one(tmp_path, monkeypatch):
  keys = _good(12)
  _run(tmp_path, keys)

  def no_reading(path):
    raise AssertionError(f'{path} was read although unchanged since it was written')

  # Shards untouched since they were written are kept on their size and mtime alone.
  with monkeypatch.context() as patch:
    patch.setattr(sharded_conversion, '_file_crc32', no_reading)
    assert _run(tmp_path, keys).shards_reused == 4 and CALLS == []

  flipped, truncated, touched, _ = sorted(tmp_path.glob('data-*.tfrecord'))
  data = bytearray(flipped.read_bytes())
  data[len(data) // 2] ^= 0xFF  # Same size: only the checksum tells.
  flipped.write_bytes(bytes(data))
  truncated.write_bytes(truncated.read_bytes()[:-3])
  for path in (flipped, truncated, touched):
    _bump_mtime(path)

  summary = _run(tmp_path, keys)

  # The touched shard's bytes still match its CRC-32: kept.
  assert summary.shards_reused == 2
  assert sorted(CALLS) == sorted(k for k in keys if _shard_of(k) in (0, 1))
  assert _written(tmp_path) == sorted(keys)
  assert summary.ok

  summary = _run(tmp_path, keys, settings={'quality': 50})
  assert summary.shards_reused == 0 and sorted(CALLS) == sorted(keys)


def test_resume_reports_failures_of_kept_shards_again(tmp_path):
  keys = [*_good(4), 'unreadable-a']
  _run(tmp_path, keys)

  summary = _run(tmp_path, keys)

  assert CALLS == [] and summary.shards_reused == 4
  assert summary.errors == [('unreadable-a', 'failed', 'unreadable: bad header')]
  assert summary.failed == 1 and summary.written == 4


class _FullDiskWriter:
  def __init__(self, path):
    self.path = path

  def write(self, record):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)

  def close(self):
    pass


def test_writer_failure_lists_every_input_of_its_shard_and_a_rerun_redoes_it(tmp_path, monkeypatch):
  keys = [*_good(12), 'unreadable-a']
  broken_shard = _shard_of('good-0')
  real_open_writer = sharded_conversion._open_writer

  def open_writer(path):
    if f'-{broken_shard:05d}-of-' in path:
      return _FullDiskWriter(path)
    return real_open_writer(path)

  monkeypatch.setattr(sharded_conversion, '_open_writer', open_writer)
  summary = _run(tmp_path, keys)

  lost = sorted(k for k in _good(12) if _shard_of(k) == broken_shard)
  write_rows = [row for row in _errors_csv(tmp_path) if row[1] == 'write']
  assert [row[0] for row in write_rows] == lost
  assert all('No space left on device' in row[2] for row in write_rows)
  assert ('unreadable-a', 'failed', 'unreadable: bad header') in summary.errors
  assert _written(tmp_path) == sorted(set(_good(12)) - set(lost))
  report = _summary_json(tmp_path)
  assert report['write'] == len(lost) and not report['ok']
  assert report['shards_not_written'] == [os.path.basename(summary.shard_paths[broken_shard])]
  assert not os.path.exists(summary.shard_paths[broken_shard])

  monkeypatch.setattr(sharded_conversion, '_open_writer', real_open_writer)
  summary = _run(tmp_path, keys)
  assert sorted(CALLS) == sorted(k for k in keys if _shard_of(k) == broken_shard)
  assert _written(tmp_path) == sorted(_good(12))
  assert summary.write == 0


def test_failing_rename_is_a_write_error_of_that_shard(tmp_path, monkeypatch):
  real_replace = os.replace

  def replace(source, target):
    if target.endswith('-00002-of-00004.tfrecord'):
      raise PermissionError(errno.EACCES, 'Permission denied', target)
    real_replace(source, target)

  monkeypatch.setattr(os, 'replace', replace)
  summary = _run(tmp_path, _good(12))

  lost = sorted(k for k in _good(12) if _shard_of(k) == 2)
  assert [key for key, kind, _ in summary.errors if kind == 'write'] == lost
  assert 'PermissionError' in summary.errors[0][2]
  assert summary.written == 12 - len(lost)
  assert not list(tmp_path.glob('.data-00002-*'))  # No temporary file or done record left.


def test_run_that_raises_still_accounts_for_every_input(tmp_path, monkeypatch):
  real_accept = sharded_conversion._Run.accept
  calls = []

  def accept_then_fail(self, *args):
    calls.append(args)
    if len(calls) == 7:
      raise RuntimeError('simulated bug in the runner')
    real_accept(self, *args)

  monkeypatch.setattr(sharded_conversion._Run, 'accept', accept_then_fail)
  keys = [*_good(10), 'unreadable-a']
  with pytest.raises(RuntimeError, match='simulated bug'):
    _run(tmp_path, keys)

  report = _summary_json(tmp_path)
  rows = _errors_csv(tmp_path)
  listed = {key for key, kind, _ in rows if kind != 'dropped'}
  written = _written(tmp_path)
  assert sorted([*listed, *written]) == sorted(keys)
  assert report['stopped_by'] == 'RuntimeError: simulated bug in the runner'
  assert report['written'] == len(written) and report['inputs'] == len(keys)
  stopped = [reason for _, kind, reason in rows if kind == 'write']
  assert stopped and all('simulated bug in the runner' in reason for reason in stopped)
  assert not list(tmp_path.glob('.*.tmp'))

  monkeypatch.undo()
  summary = _run(tmp_path, keys)
  assert _written(tmp_path) == sorted(_good(10))
  assert summary.written == 10


def test_failing_summary_write_is_listed_in_errors_csv(tmp_path, monkeypatch):
  real_write_json = sharded_conversion.write_json

  def write_json(path, value):
    if path.endswith(sharded_conversion.SUMMARY_FILE):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    real_write_json(path, value)

  monkeypatch.setattr(sharded_conversion, 'write_json', write_json)
  with pytest.raises(OSError, match='No space left'):
    _run(tmp_path, _good(3))

  ((key, kind, reason),) = _errors_csv(tmp_path)
  assert (key, kind) == ('summary.json', 'write') and 'No space left on device' in reason


def test_input_that_kills_its_worker_is_named_and_skipped_on_rerun(tmp_path):
  keys = [*_good(6), 'exits-a', 'oom-b', 'unreadable-c']
  summary = _run(tmp_path, keys, num_workers=2)

  crashed = {key: reason for key, kind, reason in summary.errors if kind == 'crashed'}
  assert crashed == {
    'exits-a': 'killed its worker process (exit code 3)',
    'oom-b': 'killed its worker process (killed by SIGKILL, e.g. out of memory)',
  }
  assert ('unreadable-c', 'failed', 'unreadable: bad header') in summary.errors
  assert _written(tmp_path) == _good(6)
  assert _errors_csv(tmp_path) == summary.errors
  assert _summary_json(tmp_path)['crashed'] == 2

  # Damaged shards are redone without retrying the inputs that crashed.
  for key in crashed:
    with open(summary.shard_paths[_shard_of(key)], 'ab') as f:
      f.write(b'x')
  summary = _run(tmp_path, keys)  # In this process: a retried crash would end the test.
  assert not {'exits-a', 'oom-b'} & set(CALLS)
  reasons = {key: reason for key, kind, reason in summary.errors if kind == 'crashed'}
  assert reasons['oom-b'].startswith('skipped: killed its worker process (killed by SIGKILL')
  assert '.crashed.json' in reasons['exits-a']
  assert _written(tmp_path) == _good(6)

  # Deleting the crash record retries them.
  os.remove(tmp_path / sharded_conversion.CRASHED_FILE)
  summary = _run(tmp_path, keys, num_workers=1)
  crashed = {key: reason for key, kind, reason in summary.errors if kind == 'crashed'}
  assert crashed['exits-a'] == 'killed its worker process (exit code 3)'


def test_file_stamp_changes_when_the_file_is_replaced(tmp_path):
  path = tmp_path / 'a.bin'
  path.write_bytes(b'one')
  first = sharded_conversion.file_stamp(str(path))
  assert first[0] == 3
  path.write_bytes(b'three')
  assert sharded_conversion.file_stamp(str(path))[0] == 5
  assert sharded_conversion.file_stamp(str(tmp_path / 'missing')) is None


def test_duplicate_keys_are_rejected(tmp_path):
  with pytest.raises(ValueError, match='repeated: good-1'):
    _run(tmp_path, ['good-1', 'good-2', 'good-1'])
