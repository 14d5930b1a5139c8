"""Resumable, parallel conversion of inputs into sharded TFRecords that accounts for every input.

`run_conversion` converts each `Item` with `convert_item` in worker processes and writes the
serialized records into `<file_prefix>-0000i-of-0000N.tfrecord` shards in `output_dir`, with:
- `errors.csv` (`input,kind,reason`): one row per input not written (`failed`: `convert_item`
  raised; `crashed`: the input killed its worker process; `write`: writing its shard failed or
  the run stopped first) and per part of a written input that was left out (`dropped`).
- `summary.json`: counts by kind and by reason, shards, settings, wall time.
Both are written even when the run itself raises; the exception then propagates.

Shards are assigned by a hash of each input's key, so adding an input redoes one shard. A complete
shard has a hidden `.<shard>.done.json` holding the hash of its inputs and the settings, its size,
modification time and CRC-32; a rerun keeps shards whose record matches (reading a shard for its
CRC-32 only when its modification time changed) and redoes the rest. Inputs that killed a
worker are recorded in `.crashed.json` and skipped on reruns (delete that file to retry them).
"""

import collections
import concurrent.futures
import csv
import dataclasses
import hashlib
import json
import multiprocessing
import os
import signal
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence

import tqdm

ERRORS_FILE = 'errors.csv'
SUMMARY_FILE = 'summary.json'
CRASHED_FILE = '.crashed.json'
ERROR_COLUMNS = ('input', 'kind', 'reason')
_CHECKSUM_CHUNK_BYTES = 1 << 20
# Inputs handed to the pool ahead of the workers: keeps them busy while bounding how many results
# wait in memory for an earlier input of their shard (shards are written in a fixed order).
_QUEUED_PER_WORKER = 2


@dataclasses.dataclass(frozen=True)
class Item:
  """One input: `key` is its stable identity, `payload` what `convert_item` receives."""

  key: str  # E.g. the path relative to the input root; written in errors.csv, picks the shard.
  payload: object  # Picklable; handed to `convert_item` in a worker process.
  # Optional content identity (e.g. file size and mtime, label): a change redoes its shard.
  fingerprint: str = ''


class ItemFailed(Exception):
  """Raised by `convert_item`: this input is not written; `str(error)` is the reason."""


@dataclasses.dataclass
class ItemResult:
  """What `convert_item` returns for an input that is written."""

  records: list[bytes]  # Serialized examples for this input (usually one).
  # Reasons for parts of the input left out while the input itself is written.
  dropped: Sequence[str] = ()


@dataclasses.dataclass
class ConversionSummary:
  """Counts of one run (`write` counts inputs lost to shard write failures) and its rows."""

  inputs: int
  written: int
  failed: int
  dropped: int
  crashed: int
  write: int
  errors: list[tuple[str, str, str]]  # (input, kind, reason), as in errors.csv.
  shard_paths: list[str]
  shards_reused: int
  seconds: float

  @property
  def not_written(self) -> int:
    return self.failed + self.crashed + self.write

  @property
  def ok(self) -> bool:
    """Every input was written (parts of inputs may have been dropped)."""
    return not self.not_written

  def counts_by_reason(self) -> Counter:
    """Rows per `(kind, reason category)`; the category is the reason up to its first colon."""
    return Counter((kind, reason.split(':', 1)[0]) for _, kind, reason in self.errors)


class ConversionFailed(RuntimeError):
  """Some inputs were not written (see errors.csv); `summary` has the counts and rows."""

  def __init__(self, summary: ConversionSummary, output_dir: str):
    super().__init__(
      f'{summary.not_written} of {summary.inputs} images were not written; see '
      f'{os.path.join(output_dir, ERRORS_FILE)}'
    )
    self.summary = summary


def _key_digest(key: str) -> bytes:
  return hashlib.sha256(key.encode('utf-8')).digest()


def shard_index(key: str, num_shards: int) -> int:
  """Stable shard of an input: a hash of its key (so adding one input redoes one shard)."""
  return int.from_bytes(_key_digest(key)[:8], 'big') % num_shards


def file_stamp(path: str) -> list[int] | None:
  """`[size, mtime_ns]` of a file (None if it cannot be read): an `Item.fingerprint` part that
  stands in for the file's content, so a replaced file redoes its shard."""
  try:
    info = os.stat(path)
  except OSError:
    return None
  return [info.st_size, info.st_mtime_ns]


def run_conversion(
  items: Sequence[Item],
  convert_item: Callable[[object], ItemResult],
  output_dir: str,
  *,
  file_prefix: str,
  num_shards: int,
  num_workers: int,
  settings: dict,
  progress_desc: str = '',
  extra_summary: dict | None = None,
) -> ConversionSummary:
  """Converts `items` into `num_shards` shards; see the module docstring.

  `convert_item` must be a top-level function (it is pickled by name into worker processes); it
  raises `ItemFailed` (or any exception) for an input that cannot be written. `num_workers=0`
  converts in this process, where an input that kills the process ends the run. `settings`
  (JSON-able) is part of each shard's identity; `extra_summary` adds fields to summary.json.
  """
  if num_shards < 1:
    raise ValueError(f'num_shards must be at least 1, got {num_shards}')
  if num_workers < 0:
    raise ValueError(f'num_workers must be 0 (this process) or more, got {num_workers}')
  duplicates = sorted(key for key, n in Counter(item.key for item in items).items() if n > 1)
  if duplicates:
    raise ValueError(f'input keys must be unique; repeated: {", ".join(duplicates[:5])}')
  started = time.monotonic()
  os.makedirs(output_dir, exist_ok=True)
  run = _Run(items, output_dir, file_prefix, num_shards, settings)
  run.warn_about_stale_shards()
  try:
    with tqdm.tqdm(
      total=len(items), unit='input', desc=progress_desc or file_prefix, dynamic_ncols=True
    ) as bar:
      run.progress_bar = bar
      run.convert(convert_item, num_workers)
  except BaseException as error:
    run.write_reports(time.monotonic() - started, extra_summary, stopped_by=error)
    raise
  return run.write_reports(time.monotonic() - started, extra_summary)


@dataclasses.dataclass
class _Shard:
  path: str
  items: list[Item]  # In write order.
  input_hash: str
  next_position: int = 0
  outcomes: dict = dataclasses.field(default_factory=dict)  # position -> outcome, not yet used.
  writer: object = None
  written_keys: list[str] = dataclasses.field(default_factory=list)
  rows: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
  write_error: str | None = None
  complete: bool = False
  reused: bool = False

  @property
  def name(self) -> str:
    return os.path.basename(self.path)

  @property
  def temp_path(self) -> str:
    return _hidden_path(self.path, '.tmp')

  @property
  def done_path(self) -> str:
    return _hidden_path(self.path, '.done.json')


def _hidden_path(shard_path: str, suffix: str) -> str:
  # A leading dot keeps helper files out of `prefix-*` globs that select the shards.
  directory, basename = os.path.split(shard_path)
  return os.path.join(directory, f'.{basename}{suffix}')


# What happened to one input: ('ok', ItemResult), ('failed', reason) or ('crashed', reason).
Outcome = tuple[str, object]


class _Run:
  """State of one conversion: which inputs are accounted for, and how."""

  def __init__(self, items, output_dir, file_prefix, num_shards, settings):
    self.output_dir = output_dir
    self.file_prefix = file_prefix
    self.settings = settings
    self.progress_bar = None
    self.counts = Counter()
    by_shard = [[] for _ in range(num_shards)]
    for item in items:
      by_shard[shard_index(item.key, num_shards)].append(item)
    # Imported here (as TensorFlow in _open_writer), not at the top: worker processes import
    # this module, never write, and importing TensorFlow takes seconds in each.
    from projects.common import tfrecords

    paths = tfrecords.shard_paths(os.path.join(output_dir, file_prefix), num_shards)
    self.shards = []
    for path, shard_items in zip(paths, by_shard, strict=True):
      # Ordered by key hash, not key or listing order: a shard mixes classes (keys often start
      # with the class folder) and its bytes do not depend on the listing order.
      shard_items.sort(key=lambda item: _key_digest(item.key))
      identity = {
        'shard': os.path.basename(path),
        'settings': settings,
        'inputs': [[item.key, item.fingerprint] for item in shard_items],
      }
      self.shards.append(_Shard(path, shard_items, _json_hash(identity)))
    self.crashed_path = os.path.join(output_dir, CRASHED_FILE)
    self.crashed = _read_json(self.crashed_path) or {}

  def warn_about_stale_shards(self) -> None:
    current = {shard.name for shard in self.shards}
    stale = sorted(
      name
      for name in os.listdir(self.output_dir)
      if name.startswith(f'{self.file_prefix}-')
      and name.endswith('.tfrecord')
      and '-of-' in name
      and name not in current
    )
    if stale:
      print(
        f'warning: {len(stale)} shard(s) in {self.output_dir} are not part of this '
        f'{len(self.shards)}-shard output (an earlier shard count?), e.g. {stale[0]}; delete them '
        f"so that a '{self.file_prefix}-*' pattern does not pick them up",
        file=sys.stderr,
      )

  def convert(self, convert_item, num_workers: int) -> None:
    work = []
    for shard in self.shards:
      if self._reuse(shard):
        continue
      _remove(shard.done_path)
      for position, item in enumerate(shard.items):
        skip_reason = self._earlier_crash(item)
        if skip_reason is None:
          work.append((shard, position, item))
        else:
          self.accept(shard, position, ('crashed', skip_reason))
      if not shard.items:
        self._finish(shard)
    if num_workers == 0:
      for shard, position, item in work:
        self.accept(shard, position, _convert_guarded(convert_item, item.payload))
    else:
      self._convert_in_processes(work, convert_item, num_workers)

  def _reuse(self, shard: _Shard) -> bool:
    """Keeps a shard an earlier run completed from the same inputs and settings."""
    record = _read_json(shard.done_path)
    if not record or record.get('input_hash') != shard.input_hash:
      return False
    rows = [tuple(row) for row in record.get('errors', [])]
    # An input skipped as crashed whose crash record was deleted is to be retried.
    if any(kind == 'crashed' and key not in self.crashed for key, kind, _ in rows):
      return False
    rows = [
      (key, kind, _skipped_reason(reason) if kind == 'crashed' else reason)
      for key, kind, reason in rows
    ]
    try:
      info = os.stat(shard.path)
      if info.st_size != record.get('size'):
        return False
      # Unchanged since it was written: trusted without reading it. Otherwise (copied, restored,
      # touched, or written to) its bytes must still match.
      unchanged = info.st_mtime_ns == record.get('mtime_ns')
      if not unchanged and _file_crc32(shard.path) != record.get('crc32'):
        return False
    except OSError:
      return False
    shard.written_keys = list(record.get('written', []))
    shard.rows = rows
    shard.complete = shard.reused = True
    self.counts.update(written=len(shard.written_keys))
    self.counts.update(kind for _, kind, _ in rows)
    self._advance(len(shard.items))
    return True

  def _earlier_crash(self, item: Item) -> str | None:
    crash = self.crashed.get(item.key)
    if crash is None or crash.get('identity') != self._item_identity(item):
      return None
    return _skipped_reason(crash['reason'])

  def _item_identity(self, item: Item) -> str:
    return _json_hash([item.key, item.fingerprint, self.settings])

  def record_crash(self, item: Item, reason: str) -> None:
    self.crashed[item.key] = {'identity': self._item_identity(item), 'reason': reason}
    write_json(self.crashed_path, self.crashed)

  def accept(self, shard: _Shard, position: int, outcome: Outcome) -> None:
    """Takes one input's outcome; writes outcomes to the shard in its fixed order."""
    shard.outcomes[position] = outcome
    while shard.next_position in shard.outcomes:
      item = shard.items[shard.next_position]
      kind, value = shard.outcomes.pop(shard.next_position)
      shard.next_position += 1
      if kind == 'ok':
        self._write(shard, item, value)
      else:
        self._add_row(shard, item.key, kind, value)
    if shard.next_position == len(shard.items):
      self._finish(shard)
    self._advance(1)

  def _write(self, shard: _Shard, item: Item, result: ItemResult) -> None:
    for reason in result.dropped:
      self._add_row(shard, item.key, 'dropped', reason)
    if shard.write_error is None:
      try:
        if shard.writer is None:
          shard.writer = _open_writer(shard.temp_path)
        for record in result.records:
          shard.writer.write(record)
      # Whatever stops this shard (disk full, a failing writer) loses its inputs, not the run.
      except Exception as error:
        self._fail_shard(shard, f'{_describe(error)} (writing {shard.temp_path})')
    if shard.write_error is None:
      shard.written_keys.append(item.key)
    else:
      self._add_row(shard, item.key, 'write', shard.write_error)

  def _fail_shard(self, shard: _Shard, reason: str) -> None:
    shard.write_error = reason
    for key in shard.written_keys:
      self._add_row(shard, key, 'write', reason)
    shard.written_keys = []
    self._discard_temp(shard)

  def _discard_temp(self, shard: _Shard) -> None:
    if shard.writer is not None:
      try:
        shard.writer.close()
      except Exception:  # The shard is already lost; its error row says why.
        pass
      shard.writer = None
    _remove(shard.temp_path)

  def _finish(self, shard: _Shard) -> None:
    """Closes, checksums and renames a shard whose inputs are all accounted for."""
    if shard.write_error is None:
      try:
        if shard.writer is None:
          # Every shard exists, even one left empty, so the shard list matches `-of-N`.
          shard.writer = _open_writer(shard.temp_path)
        shard.writer.close()
        shard.writer = None
        record = {
          'shard': shard.name,
          'input_hash': shard.input_hash,
          'size': os.path.getsize(shard.temp_path),
          'mtime_ns': os.stat(shard.temp_path).st_mtime_ns,  # The rename keeps it.
          'crc32': _file_crc32(shard.temp_path),
          'written': shard.written_keys,
          'errors': shard.rows,
        }
        os.replace(shard.temp_path, shard.path)
        write_json(shard.done_path, record)
      except Exception as error:
        self._fail_shard(shard, f'{_describe(error)} (finishing {shard.path})')
    if shard.write_error is None:
      self.counts.update(written=len(shard.written_keys))
    else:
      _remove(shard.path)
      _remove(shard.done_path)
    shard.complete = True

  def _add_row(self, shard: _Shard, key: str, kind: str, reason: str) -> None:
    shard.rows.append((key, kind, reason))
    self.counts[kind] += 1

  def _advance(self, num_inputs: int) -> None:
    if self.progress_bar is not None:
      self.progress_bar.set_postfix(
        written=self.counts['written'],
        failed=self.counts['failed'] + self.counts['crashed'] + self.counts['write'],
        refresh=False,
      )
      self.progress_bar.update(num_inputs)

  def _convert_in_processes(self, work, convert_item, num_workers: int) -> None:
    # Spawned, not forked: forking a process that has run TensorFlow can deadlock the child.
    context = multiprocessing.get_context('spawn')
    queue = collections.deque(work)
    while queue:
      suspects = []
      with concurrent.futures.ProcessPoolExecutor(
        num_workers, mp_context=context, initializer=_init_worker
      ) as pool:
        running = {}
        while queue or running:
          while queue and len(running) < _QUEUED_PER_WORKER * num_workers:
            entry = queue.popleft()
            try:
              future = pool.submit(_convert_guarded, convert_item, entry[2].payload)
            except concurrent.futures.process.BrokenProcessPool:
              queue.appendleft(entry)
              break
            running[future] = entry
          if not running:
            break
          finished, _ = concurrent.futures.wait(
            running, return_when=concurrent.futures.FIRST_COMPLETED
          )
          if any(_is_broken(future) for future in finished):
            # A worker died. The pool fails every input in flight and cannot say which one
            # killed it; those that had finished before keep their results.
            finished = concurrent.futures.wait(running).done
          for future in finished:
            entry = running.pop(future)
            if _is_broken(future):
              suspects.append(entry)
              continue
            try:
              outcome = future.result()
            # The result could not come back (e.g. it does not pickle): the input is not written.
            except Exception as error:
              outcome = ('failed', _describe(error))
            shard, position, _ = entry
            self.accept(shard, position, outcome)
          if suspects:
            break
      if suspects:
        self._isolate(suspects, convert_item, context)

  def _isolate(self, suspects, convert_item, context) -> None:
    """Converts each suspect alone in a fresh process, naming those that kill it."""
    # One at a time: side by side, an out-of-memory kill would strike the largest process, which
    # need not be the culprit.
    for shard, position, item in suspects:
      outcome = _convert_alone(convert_item, item.payload, context)
      if outcome[0] == 'crashed':
        self.record_crash(item, outcome[1])
      self.accept(shard, position, outcome)

  def write_reports(
    self, seconds: float, extra_summary: dict | None, stopped_by: BaseException | None = None
  ) -> ConversionSummary:
    """Writes summary.json and errors.csv; a failure to write either becomes a reported error."""
    if stopped_by is not None:
      self._account_for_unfinished(stopped_by)
    rows = sorted(row for shard in self.shards for row in shard.rows)
    summary = ConversionSummary(
      inputs=sum(len(shard.items) for shard in self.shards),
      written=self.counts['written'],
      failed=self.counts['failed'],
      dropped=self.counts['dropped'],
      crashed=self.counts['crashed'],
      write=self.counts['write'],
      errors=rows,
      shard_paths=[shard.path for shard in self.shards],
      shards_reused=sum(shard.reused for shard in self.shards),
      seconds=round(seconds, 2),
    )
    by_reason = collections.defaultdict(dict)
    for (kind, category), count in sorted(summary.counts_by_reason().items()):
      by_reason[kind][category] = count
    summary_json = {
      'file_prefix': self.file_prefix,
      'settings': self.settings,
      **{
        field: getattr(summary, field)
        for field in ('inputs', 'written', 'failed', 'dropped', 'crashed', 'write')
      },
      'ok': summary.ok,
      'by_reason': by_reason,
      'shards': [shard.name for shard in self.shards],
      'shards_reused': summary.shards_reused,
      'shards_not_written': [shard.name for shard in self.shards if shard.write_error],
      'stopped_by': None if stopped_by is None else _describe(stopped_by),
      'seconds': summary.seconds,
      'errors_csv': ERRORS_FILE,
      **(extra_summary or {}),
    }
    summary_path = os.path.join(self.output_dir, SUMMARY_FILE)
    report_error = None
    try:
      write_json(summary_path, summary_json)
    except Exception as error:
      report_error = error
      rows.append((SUMMARY_FILE, 'write', f'{_describe(error)} (writing {summary_path})'))
    try:
      _write_csv(os.path.join(self.output_dir, ERRORS_FILE), rows)
    except Exception as error:
      report_error = report_error or error
      print(f'error: could not write {ERRORS_FILE}: {_describe(error)}', file=sys.stderr)
      for row in rows:
        print('  ' + ','.join(row), file=sys.stderr)
    if report_error is not None and stopped_by is None:
      raise report_error
    return summary

  def _account_for_unfinished(self, error: BaseException) -> None:
    """Lists every input of an unfinished shard that has no row yet as a `write` error."""
    for shard in self.shards:
      if shard.complete:
        continue
      self._discard_temp(shard)
      reason = f'run stopped by {_describe(error)} before {shard.name} was complete'
      for position, (kind, value) in sorted(shard.outcomes.items()):
        if kind != 'ok':
          self._add_row(shard, shard.items[position].key, kind, value)
      accounted = {key for key, kind, _ in shard.rows if kind != 'dropped'}
      for item in shard.items:
        if item.key not in accounted:
          self._add_row(shard, item.key, 'write', reason)
      shard.written_keys = []
      shard.complete = True


def _skipped_reason(crash_reason: str) -> str:
  if crash_reason.startswith('skipped:'):
    return crash_reason
  return (
    f'skipped: {crash_reason} in an earlier run (delete {CRASHED_FILE} in the output folder to '
    'retry)'
  )


def _convert_guarded(convert_item, payload) -> Outcome:
  """Runs `convert_item`; any exception fails just this input, with the reason."""
  try:
    result = convert_item(payload)
  except ItemFailed as error:
    return 'failed', str(error)
  except Exception as error:
    return 'failed', _describe(error)
  if not isinstance(result, ItemResult):
    return 'failed', f'convert_item returned {type(result).__name__}, expected ItemResult'
  return 'ok', result


def _is_broken(future: concurrent.futures.Future) -> bool:
  return isinstance(future.exception(), concurrent.futures.process.BrokenProcessPool)


def _init_worker() -> None:
  # Converters decode and encode on the CPU; N workers each claiming a GPU's memory would fail.
  os.environ['CUDA_VISIBLE_DEVICES'] = '-1'


def _convert_alone_main(connection, convert_item, payload) -> None:
  _init_worker()
  connection.send(_convert_guarded(convert_item, payload))
  connection.close()


def _convert_alone(convert_item, payload, context) -> Outcome:
  """Converts one input in a fresh process; ('crashed', reason) if the process dies."""
  receiver, sender = context.Pipe(duplex=False)
  process = context.Process(target=_convert_alone_main, args=(sender, convert_item, payload))
  process.start()
  sender.close()
  try:
    outcome = receiver.recv()
  except EOFError:
    outcome = None
  finally:
    receiver.close()
    process.join()
  if outcome is None:
    return 'crashed', f'killed its worker process ({_describe_exit(process.exitcode)})'
  return outcome


def _describe_exit(exitcode: int | None) -> str:
  if exitcode is not None and exitcode < 0:
    name = signal.Signals(-exitcode).name
    hint = ', e.g. out of memory' if name == 'SIGKILL' else ''
    return f'killed by {name}{hint}'
  return f'exit code {exitcode}'


def _describe(error: BaseException) -> str:
  """`Type: message`; summary.json counts reasons by the part before the colon."""
  message = str(error)
  return f'{type(error).__name__}: {message}' if message else type(error).__name__


def _open_writer(path: str):
  import tensorflow as tf

  return tf.io.TFRecordWriter(path)


def _file_crc32(path: str) -> int:
  crc = 0
  with open(path, 'rb') as f:
    while chunk := f.read(_CHECKSUM_CHUNK_BYTES):
      crc = zlib.crc32(chunk, crc)
  return crc


def _json_hash(value) -> str:
  return hashlib.sha256(json.dumps(value, sort_keys=True).encode('utf-8')).hexdigest()


def _read_json(path: str):
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def write_json(path: str, value) -> None:
  """Writes `value` as indented JSON under a temporary name, then renames: never half a file."""
  temp_path = f'{path}.tmp'
  with open(temp_path, 'w', encoding='utf-8') as f:
    json.dump(value, f, indent=2, ensure_ascii=False)
    f.write('\n')
  os.replace(temp_path, path)


def _write_csv(path: str, rows) -> None:
  temp_path = f'{path}.tmp'
  with open(temp_path, 'w', newline='', encoding='utf-8') as f:
    writer = csv.writer(f)
    writer.writerow(ERROR_COLUMNS)
    writer.writerows(rows)
  os.replace(temp_path, path)


def _remove(path: str) -> None:
  try:
    os.remove(path)
  except FileNotFoundError:
    pass
