"""Tests for resolving built-in dataset names in task configs."""

import dataclasses
import types

import pytest
from official.core import config_definitions as cfg
from official.vision.configs import maskrcnn as mg_maskrcnn

from projects.common.configs import video_data
from projects.common.datasets import builtin


@dataclasses.dataclass
class _DetectionDataConfig(mg_maskrcnn.DataConfig):
  builtin_dataset: str = ''


@dataclasses.dataclass
class _DetectionTaskConfig(mg_maskrcnn.MaskRCNNTask):
  train_data: _DetectionDataConfig = dataclasses.field(
    default_factory=lambda: _DetectionDataConfig(is_training=True)
  )
  validation_data: _DetectionDataConfig = dataclasses.field(
    default_factory=lambda: _DetectionDataConfig(is_training=False)
  )


@dataclasses.dataclass
class _VideoTaskConfig(cfg.TaskConfig):
  train_data: video_data.VideoDataConfig = dataclasses.field(
    default_factory=lambda: video_data.VideoDataConfig(is_training=True)
  )
  validation_data: video_data.VideoDataConfig = dataclasses.field(
    default_factory=lambda: video_data.VideoDataConfig(is_training=False)
  )


def _fake_detection_data():
  return types.SimpleNamespace(
    train_pattern='/cache/train-*',
    validation_pattern='/cache/validation-*',
    validation_annotation_file='/cache/instances_validation.json',
  )


@pytest.fixture
def fake_digit_scenes(monkeypatch):
  monkeypatch.setitem(builtin.BUILTIN_DATASETS, 'digit_scenes', _fake_detection_data)


def test_detection_dataset_fills_input_paths_and_annotation_file(fake_digit_scenes):
  task = _DetectionTaskConfig()
  task.train_data.builtin_dataset = 'digit_scenes'
  task.validation_data.builtin_dataset = 'digit_scenes'
  builtin.materialize_builtin_datasets(task)
  assert task.train_data.input_path == '/cache/train-*'
  assert task.validation_data.input_path == '/cache/validation-*'
  assert task.annotation_file == '/cache/instances_validation.json'


def test_annotation_file_set_by_the_user_is_kept(fake_digit_scenes):
  task = _DetectionTaskConfig(annotation_file='/mine.json')
  task.validation_data.builtin_dataset = 'digit_scenes'
  builtin.materialize_builtin_datasets(task)
  assert task.annotation_file == '/mine.json'


def test_annotation_file_stays_empty_when_validation_data_is_the_users(fake_digit_scenes):
  task = _DetectionTaskConfig()
  task.train_data.builtin_dataset = 'digit_scenes'
  task.validation_data.input_path = '/data/val-*'
  builtin.materialize_builtin_datasets(task)
  assert task.train_data.input_path == '/cache/train-*'
  assert task.validation_data.input_path == '/data/val-*'
  assert not task.annotation_file


def test_video_dataset_fills_input_paths(monkeypatch):
  monkeypatch.setitem(
    builtin.BUILTIN_DATASETS,
    'moving_mnist',
    lambda: types.SimpleNamespace(train_pattern='/t-*', validation_pattern='/v-*'),
  )
  task = _VideoTaskConfig()
  task.train_data.builtin_dataset = 'moving_mnist'
  task.validation_data.builtin_dataset = 'moving_mnist'
  builtin.materialize_builtin_datasets(task)
  assert (task.train_data.input_path, task.validation_data.input_path) == ('/t-*', '/v-*')


def test_unknown_name_lists_the_choices():
  task = _DetectionTaskConfig()
  task.validation_data.builtin_dataset = 'digit_scene'
  with pytest.raises(ValueError, match=r"task.validation_data.builtin_dataset='digit_scene'.*"):
    builtin.materialize_builtin_datasets(task)


def test_registers_digit_scenes_and_moving_mnist():
  assert {'digit_scenes', 'moving_mnist', 'moving_mnist_direction'} <= set(builtin.BUILTIN_DATASETS)


def test_a_project_registers_its_dataset_once(monkeypatch):
  monkeypatch.setattr(builtin, 'BUILTIN_DATASETS', dict(builtin.BUILTIN_DATASETS))
  builtin.register_builtin_dataset('project_scenes', _fake_detection_data)
  builtin.register_builtin_dataset('project_scenes', _fake_detection_data)  # a re-import
  task = _DetectionTaskConfig()
  task.validation_data.builtin_dataset = 'project_scenes'
  builtin.materialize_builtin_datasets(task)
  assert task.validation_data.input_path == '/cache/validation-*'
  with pytest.raises(ValueError, match="'project_scenes' is already registered"):
    builtin.register_builtin_dataset('project_scenes', lambda: None)
