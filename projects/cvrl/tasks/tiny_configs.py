"""Tiny CVRL demo configs for tests: tiny moving digits, batch 2, slim R3D-18 at 1/8 width."""

from official.core import config_definitions as cfg
from official.core import exp_factory

from projects import registry_imports  # noqa: F401  (registers the experiments)
from projects.common.datasets import moving_mnist

TINY_WIDTH = 0.125


def tiny_overrides(info: moving_mnist.MovingMnistInfo, batch_size: int = 2) -> dict:
  """Overrides that point a demo experiment at `info` (`tiny_data.tiny_moving_mnist`)."""
  return {
    'task': {
      'train_data': {
        'input_path': info.train_pattern,
        'num_examples': info.num_train,
        'global_batch_size': batch_size,
      },
      'validation_data': {
        'input_path': info.validation_pattern,
        'num_examples': info.num_validation,
        'global_batch_size': batch_size,
      },
      'model': {'backbone': {'slim_r3d': {'width_multiplier': TINY_WIDTH}}},
    }
  }


def tiny_experiment(name: str, info: moving_mnist.MovingMnistInfo, **task_overrides):
  """The `cvrl_demo` / `cvrl_linear_eval_demo` config shrunk to `info`'s data."""
  config: cfg.ExperimentConfig = exp_factory.get_exp_config(name)
  config.override(tiny_overrides(info), is_strict=True)
  config.task.override(task_overrides, is_strict=True)
  return config
