"""Tests for the built-in Moving MNIST video dataset."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from projects.common import tfrecords
from projects.common.datasets import moving_mnist

TINY = dict(num_train=40, num_validation=20, num_frames=6, frame_size=40, num_shards=2, seed=3)


def _read_records(pattern: str) -> list[bytes]:
  return [r.numpy() for r in tf.data.TFRecordDataset(sorted(glob.glob(pattern)))]


def _context_ints(record: bytes, key: str) -> list[int]:
  example = tf.train.SequenceExample.FromString(record)
  return list(example.context.feature[key].int64_list.value)


def _decode_frames(record: bytes) -> np.ndarray:
  parsed = tfrecords.parse_video_example(record)
  return np.stack([tf.io.decode_jpeg(f).numpy() for f in parsed[tfrecords.IMAGE_KEY]])


def _file_bytes(directory: str) -> dict[str, bytes]:
  paths = sorted(glob.glob(os.path.join(directory, '*')))
  return {os.path.basename(p): open(p, 'rb').read() for p in paths}


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  return moving_mnist.build_moving_mnist(cache_dir=str(tmp_path_factory.mktemp('mm')), **TINY)


def test_records_follow_video_contract(tiny):
  assert tiny.num_classes == 10
  for split, pattern, count in (
    ('train', tiny.train_pattern, tiny.num_train),
    ('validation', tiny.validation_pattern, tiny.num_validation),
  ):
    records = _read_records(pattern)
    assert len(records) == count
    for record in records:
      parsed = tfrecords.parse_video_example(record)
      frames = _decode_frames(record)
      assert frames.shape == (TINY['num_frames'], TINY['frame_size'], TINY['frame_size'], 3)
      assert frames.dtype == np.uint8
      (label,) = parsed[tfrecords.LABEL_INDEX_KEY].numpy()
      assert 0 <= label < 10
      assert parsed[tfrecords.LABEL_TEXT_KEY].numpy().tolist() == [f'digit_{label}'.encode()]
      assert parsed[tfrecords.VIDEO_ID_KEY].numpy().decode().startswith(f'{split}_')
      (direction,) = _context_ints(record, moving_mnist.MOTION_INDEX_KEY)
      assert 0 <= direction < 8


def test_labels_and_directions_are_balanced(tiny):
  records = _read_records(tiny.train_pattern)
  digits = [_context_ints(r, tfrecords.LABEL_INDEX_KEY)[0] for r in records]
  directions = [_context_ints(r, moving_mnist.MOTION_INDEX_KEY)[0] for r in records]
  for values, num_classes in ((digits, 10), (directions, 8)):
    counts = np.bincount(values, minlength=num_classes)
    assert counts.max() - counts.min() <= 1, counts


def test_digit_moves_and_stays_whole_inside_frame(tiny):
  for record in _read_records(tiny.train_pattern):
    frames = _decode_frames(record).astype(np.float64)
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    # A bounce may bring the digit back to where it was one frame earlier.
    assert (steps > 1.0).mean() >= 0.5, steps
    # A digit cut by the frame edge would lose ink in some frames.
    ink = frames.sum(axis=(1, 2, 3))
    assert ink.std() / ink.mean() < 0.05, ink


def test_bounce_positions_reflect_off_both_walls():
  np.testing.assert_array_equal(moving_mnist.bounce_positions(0.0, 3.0, 6, 5), [0, 3, 4, 1, 2, 5])
  np.testing.assert_array_equal(moving_mnist.bounce_positions(4.0, -3.0, 4, 5), [4, 1, 2, 5])
  rng = np.random.default_rng(0)
  for start, velocity in zip(rng.uniform(0, 12, 50), rng.uniform(-20, 20, 50), strict=True):
    positions = moving_mnist.bounce_positions(start, velocity, 30, 12)
    assert positions.min() >= 0 and positions.max() <= 12


def test_direction_velocities_follow_compass_in_image_coordinates():
  directions = np.arange(8)
  velocities = moving_mnist.direction_velocities(directions, np.full(8, 2.0))
  by_name = dict(zip(moving_mnist.DIRECTION_NAMES, np.round(velocities, 6).tolist(), strict=True))
  assert by_name['east'] == [0.0, 2.0]
  assert by_name['north'] == [-2.0, 0.0]
  assert by_name['south'] == [2.0, 0.0]
  assert by_name['west'] == [0.0, -2.0]
  np.testing.assert_allclose(np.linalg.norm(velocities, axis=-1), 2.0)


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tiny, tmp_path):
  again = moving_mnist.build_moving_mnist(cache_dir=str(tmp_path / 'again'), **TINY)
  assert _file_bytes(again.directory) == _file_bytes(tiny.directory)
  other = moving_mnist.build_moving_mnist(
    cache_dir=str(tmp_path / 'other'), **{**TINY, 'seed': TINY['seed'] + 1}
  )
  assert os.path.basename(other.directory) != os.path.basename(tiny.directory)
  assert _read_records(other.train_pattern) != _read_records(tiny.train_pattern)


def test_records_are_canonically_serialized(tiny):
  # Canonical bytes do not depend on the per-process hash order of the context map.
  for record in _read_records(tiny.validation_pattern):
    example = tf.train.SequenceExample.FromString(record)
    assert example.SerializeToString(deterministic=True) == record


def test_second_build_reuses_cache(tmp_path, monkeypatch):
  first = moving_mnist.build_moving_mnist(cache_dir=str(tmp_path), **TINY)
  mtimes = {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(first.directory, '*'))}

  def fail_generate(*args):
    raise AssertionError('cached dataset was regenerated')

  monkeypatch.setattr(moving_mnist, '_generate', fail_generate)
  assert moving_mnist.build_moving_mnist(cache_dir=str(tmp_path), **TINY) == first
  assert {p: os.stat(p).st_mtime_ns for p in mtimes} == mtimes
  assert os.listdir(tmp_path) == [os.path.basename(first.directory)]


def test_cache_root_defaults_to_env_var(tmp_path, monkeypatch):
  monkeypatch.setenv('PROJECTS_DATA_DIR', str(tmp_path))
  info = moving_mnist.build_moving_mnist(**{**TINY, 'num_train': 2, 'num_validation': 2})
  assert os.path.dirname(info.directory) == str(tmp_path)


def test_digit_split_is_disjoint_and_stratified():
  _, labels = moving_mnist.load_mnist_digits()
  assert labels.shape == (5000,)
  train, validation = moving_mnist.split_digit_indices(labels)
  assert not set(train) & set(validation)
  assert len(train) + len(validation) == 5000
  np.testing.assert_array_equal(np.bincount(labels[train]), [400] * 10)
  np.testing.assert_array_equal(np.bincount(labels[validation]), [100] * 10)


def test_clips_draw_digits_from_their_own_split(tiny):
  _, labels = moving_mnist.load_mnist_digits()
  pools = dict(zip(('train', 'validation'), moving_mnist.split_digit_indices(labels), strict=True))
  for split, pattern in (('train', tiny.train_pattern), ('validation', tiny.validation_pattern)):
    for record in _read_records(pattern):
      video_id = tfrecords.parse_video_example(record)[tfrecords.VIDEO_ID_KEY].numpy().decode()
      source = int(video_id.rsplit('_', 1)[1])
      assert source in pools[split]
      assert labels[source] == _context_ints(record, tfrecords.LABEL_INDEX_KEY)[0]


def test_direction_label_goes_into_label_index(tmp_path):
  info = moving_mnist.build_moving_mnist(cache_dir=str(tmp_path), label='direction', **TINY)
  assert info.num_classes == 8
  for record in _read_records(info.train_pattern):
    parsed = tfrecords.parse_video_example(record)
    (direction,) = _context_ints(record, moving_mnist.MOTION_INDEX_KEY)
    assert parsed[tfrecords.LABEL_INDEX_KEY].numpy().tolist() == [direction]
    name = moving_mnist.DIRECTION_NAMES[direction]
    assert parsed[tfrecords.LABEL_TEXT_KEY].numpy().tolist() == [f'direction_{name}'.encode()]


def test_several_digits_carry_one_label_each(tmp_path):
  info = moving_mnist.build_moving_mnist(cache_dir=str(tmp_path), num_digits=2, **TINY)
  for record in _read_records(info.validation_pattern):
    assert len(_context_ints(record, tfrecords.LABEL_INDEX_KEY)) == 2
    assert len(_context_ints(record, moving_mnist.MOTION_INDEX_KEY)) == 2


@pytest.mark.parametrize(
  'override, message',
  [
    ({'label': 'colour'}, 'label must be one of'),
    ({'frame_size': 28}, 'frame_size must exceed'),
    ({'num_train': 0}, 'num_train must be at least 1'),
  ],
)
def test_rejects_bad_arguments(tmp_path, override, message):
  with pytest.raises(ValueError, match=message):
    moving_mnist.build_moving_mnist(cache_dir=str(tmp_path), **{**TINY, **override})


def test_main_prints_info(tmp_path, capsys):
  moving_mnist.main([f'--cache_dir={tmp_path}', '--num_train=2', '--num_validation=2'])
  out = capsys.readouterr().out
  assert '"num_train": 2' in out and 'train_pattern' in out
