"""Tests for publishing generated datasets into the cache."""

import os

import pytest

from projects.common.datasets import cache


def _write_data(folder: str) -> dict:
  with open(os.path.join(folder, 'data.txt'), 'w') as f:
    f.write('data')
  return {'count': 1}


def test_generates_once_and_returns_the_manifest(tmp_path):
  directory, manifest = cache.build_once(str(tmp_path), 'set_a', {'seed': 1}, _write_data)
  assert directory == str(tmp_path / 'set_a')
  assert manifest == {'count': 1, 'params': {'seed': 1}}
  assert sorted(os.listdir(directory)) == ['data.txt', cache.MANIFEST_NAME]

  def fail(folder):
    raise AssertionError('regenerated')

  assert cache.build_once(str(tmp_path), 'set_a', {'seed': 1}, fail) == (directory, manifest)


def test_other_params_in_the_same_folder_are_refused(tmp_path):
  cache.build_once(str(tmp_path), 'set_a', {'seed': 1}, _write_data)
  with pytest.raises(ValueError, match=r"set_a/manifest.json was built with \{'seed': 1\}"):
    cache.build_once(str(tmp_path), 'set_a', {'seed': 2}, _write_data)


def test_failed_generation_publishes_nothing(tmp_path):
  def write_then_fail(folder):
    _write_data(folder)
    raise OSError('disk full')

  with pytest.raises(OSError, match='disk full'):
    cache.build_once(str(tmp_path), 'set_a', {}, write_then_fail)
  assert os.listdir(tmp_path) == []


def test_folder_without_manifest_is_reported(tmp_path):
  (tmp_path / 'set_a').mkdir()
  (tmp_path / 'set_a' / 'stray.txt').write_text('left by hand')
  with pytest.raises(FileExistsError, match='delete it'):
    cache.build_once(str(tmp_path), 'set_a', {}, _write_data)


def test_params_digest_ignores_key_order():
  assert cache.params_digest({'a': 1, 'b': [2]}) == cache.params_digest({'b': [2], 'a': 1})
  assert cache.params_digest({'a': 1}) != cache.params_digest({'a': 2})


def test_default_root_is_the_env_var_or_home_cache(monkeypatch):
  monkeypatch.setenv('PROJECTS_DATA_DIR', '/data/cache')
  assert cache.default_cache_root() == '/data/cache'
  monkeypatch.delenv('PROJECTS_DATA_DIR')
  assert cache.default_cache_root() == os.path.expanduser('~/.cache/projects_demo')
