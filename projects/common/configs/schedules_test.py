"""Epoch schedules: the factory's numbers, and how they follow a changed batch or dataset size."""

import pytest

from projects import registry_imports  # noqa: F401  (registers the experiments)
from projects.common import experiment_config
from projects.common.configs import schedules, video_data

KINETICS600_TRAIN = 366016


def trainer_of(name: str, override: str | None = None):
  return experiment_config.build_experiment_config(name, params_override=override).trainer


def schedule(trainer) -> tuple:
  optimizer = trainer.optimizer_config
  return (
    trainer.train_steps,
    optimizer.learning_rate.cosine.decay_steps,
    optimizer.warmup.linear.warmup_steps,
    optimizer.learning_rate.cosine.initial_learning_rate,
  )


def test_epoch_trainer_counts_epochs_and_scales_the_rate_per_256_videos():
  train = video_data.demo_video_data(True, num_frames=4, global_batch_size=32)
  validation = video_data.demo_video_data(False, num_frames=4, global_batch_size=300)
  trainer = schedules.epoch_trainer(
    train, validation, epochs=3, warmup_epochs=0.5, base_learning_rate=0.8, optimizer={}
  )
  assert (trainer.steps_per_loop, trainer.validation_interval, trainer.validation_steps) == (
    62,
    62,
    2,
  )
  assert schedule(trainer) == (186, 186, 31, pytest.approx(0.1))


def test_a_new_batch_keeps_the_epochs_and_the_rate_per_video():
  # cvrl_kinetics600: 800 epochs of 366016 videos, 5 warm-up, 0.32 at batch 1024.
  epoch_steps = KINETICS600_TRAIN // 256
  trainer = trainer_of('cvrl_kinetics600', 'task.train_data.global_batch_size=256')
  assert schedule(trainer) == (800 * epoch_steps, 800 * epoch_steps, 5 * epoch_steps, 0.08)
  assert (trainer.steps_per_loop, trainer.checkpoint_interval) == (epoch_steps, epoch_steps)
  assert trainer.validation_interval == 10 * epoch_steps


def test_a_new_dataset_size_keeps_the_epochs_and_the_rate():
  trainer = trainer_of('video_classification_demo', 'task.train_data.num_examples=1000')
  # 4 epochs of 1000 // 16 = 62 steps, half an epoch of warm-up, 0.1 at batch 16.
  assert schedule(trainer) == (248, 248, 31, 0.1)


def test_values_the_user_sets_are_kept():
  trainer = trainer_of(
    'cvrl_kinetics600',
    'task.train_data.global_batch_size=256,trainer.train_steps=1000,'
    'trainer.optimizer_config.learning_rate.cosine.initial_learning_rate=0.5',
  )
  epoch_steps = KINETICS600_TRAIN // 256
  assert schedule(trainer) == (1000, 800 * epoch_steps, 5 * epoch_steps, 0.5)


def test_validation_steps_follow_the_validation_batch():
  trainer = trainer_of('cvrl_linear_eval_demo', 'task.validation_data.global_batch_size=64')
  assert trainer.validation_steps == 8  # ceil(500 / 64)
  assert trainer_of('cvrl_linear_eval_demo').validation_steps == 5


def test_no_warm_up_stays_none():
  default = experiment_config.get_experiment('video_classification_demo')
  default.trainer.optimizer_config.warmup.linear.warmup_steps = 0
  params = experiment_config.get_experiment('video_classification_demo')
  params.trainer.optimizer_config.warmup.linear.warmup_steps = 0
  params.task.train_data.global_batch_size = 8
  schedules.follow_data_changes(default, params)
  assert params.trainer.optimizer_config.warmup.linear.warmup_steps == 0
  assert params.trainer.train_steps == 4 * (2000 // 8)


def test_unchanged_data_changes_nothing():
  name = 'resnet3d_rs50_kinetics400'
  default = experiment_config.get_experiment(name)
  params = experiment_config.get_experiment(name)
  assert schedules.follow_data_changes(default, params) == []
  assert params.as_dict() == default.as_dict()


def test_a_rate_that_cannot_follow_the_batch_is_named():
  constant_rate = {'trainer': {'optimizer_config': {'learning_rate': {'type': 'constant'}}}}
  default = experiment_config.get_experiment('video_classification_demo')
  default.override(constant_rate, is_strict=True)
  params = experiment_config.get_experiment('video_classification_demo')
  params.override(constant_rate, is_strict=True)
  params.task.train_data.global_batch_size = 8
  with pytest.raises(ValueError, match=r'learning_rate.constant has no learning rate to scale'):
    schedules.follow_data_changes(default, params)


def test_a_rate_the_user_replaced_is_theirs():
  trainer = trainer_of(
    'video_classification_demo',
    'task.train_data.global_batch_size=8,trainer.optimizer_config.learning_rate.type=constant',
  )
  assert trainer.optimizer_config.learning_rate.type == 'constant'
  assert trainer.train_steps == 4 * (2000 // 8)
