"""Training schedules counted in epochs, shared by the families, and how they follow the data.

`epoch_trainer` turns a recipe (epochs, warm-up epochs, learning rate per 256 videos) into Model
Garden's step-counted `TrainerConfig` for the factory's batch and dataset size. Those step counts
and the peak learning rate are plain numbers in the config, so a config file or override that
changes the batch or the dataset size would leave them describing the old data:
`follow_data_changes` recomputes, when the config is resolved, every such value the user left
at its default.
"""

import math

from absl import logging
from official.core import config_definitions as cfg
from official.modeling import optimization

# Learning rates are given per this many videos and scaled linearly with the global batch.
LEARNING_RATE_REFERENCE_BATCH = 256
# Trainer fields counted in training steps; each is a whole number of epochs' steps (or fewer).
_TRAINER_STEP_FIELDS = (
  'train_steps',
  'steps_per_loop',
  'summary_interval',
  'checkpoint_interval',
  'validation_interval',
)
# Fields of the selected learning-rate and warm-up configs that count training steps, and those
# that are learning rates.
_SCHEDULE_STEP_FIELDS = ('decay_steps', 'boundaries', 'warmup_steps')
_LEARNING_RATE_FIELDS = ('initial_learning_rate', 'values')


def scaled_learning_rate(base_learning_rate: float, global_batch_size: int) -> float:
  """The linear scaling rule (Goyal et al. 2017): `base_learning_rate` is per 256 videos."""
  return base_learning_rate * global_batch_size / LEARNING_RATE_REFERENCE_BATCH


def sgd_optimizer(nesterov: bool = False) -> dict:
  """SGD with momentum 0.9; weight decay, if any, comes from `task.losses.l2_weight_decay`."""
  return {'type': 'sgd', 'sgd': {'momentum': 0.9, 'nesterov': nesterov}}


def _num_examples(data: cfg.DataConfig | None) -> int:
  # Model Garden's base DataConfig has no size; its video and our configs do (-1: unknown).
  return getattr(data, 'num_examples', -1) if data is not None else -1


def steps_per_epoch(data: cfg.DataConfig) -> int:
  """Training steps in one pass over `data` (at least 1; a last partial batch is dropped)."""
  return max(1, data.num_examples // data.global_batch_size)


def validation_steps(data: cfg.DataConfig) -> int:
  """Steps that cover every validation example once (the last batch may be partial)."""
  return math.ceil(data.num_examples / data.global_batch_size)


def epoch_trainer(
  train_data: cfg.DataConfig,
  validation_data: cfg.DataConfig,
  epochs: float,
  warmup_epochs: float,
  base_learning_rate: float,
  optimizer: dict,
  validation_every_epochs: int = 1,
) -> cfg.TrainerConfig:
  """Linear warm-up from 0 then cosine decay to 0, counted in epochs of `train_data`.

  The peak learning rate is `scaled_learning_rate(base_learning_rate, global batch)`; each
  evaluation covers the whole validation set.
  """
  epoch_steps = steps_per_epoch(train_data)
  total_steps = int(epochs * epoch_steps)
  return cfg.TrainerConfig(
    train_steps=total_steps,
    steps_per_loop=epoch_steps,
    summary_interval=epoch_steps,
    checkpoint_interval=epoch_steps,
    validation_interval=min(total_steps, validation_every_epochs * epoch_steps),
    validation_steps=validation_steps(validation_data),
    optimizer_config=optimization.OptimizationConfig(
      {
        'optimizer': optimizer,
        'learning_rate': {
          'type': 'cosine',
          'cosine': {
            'initial_learning_rate': scaled_learning_rate(
              base_learning_rate, train_data.global_batch_size
            ),
            'decay_steps': total_steps,
          },
        },
        'warmup': {
          'type': 'linear',
          'linear': {
            'warmup_steps': int(warmup_epochs * epoch_steps),
            'warmup_learning_rate': 0.0,
          },
        },
      }
    ),
  )


def _scaled(value, ratio: float, steps: bool):
  """`value` (a number or a list) times `ratio`; positive step counts stay whole and at least 1."""
  if isinstance(value, list | tuple):
    return type(value)(_scaled(v, ratio, steps) for v in value)
  if not steps:
    return value * ratio
  return max(1, round(value * ratio)) if value > 0 else value


def _selected(trainer: cfg.TrainerConfig, name: str) -> tuple[str, object | None]:
  """(dotted key, config) of the learning-rate or warm-up alternative `trainer` selects."""
  one_of = getattr(trainer.optimizer_config, name)
  return f'trainer.optimizer_config.{name}.{one_of.type}', one_of.get()


def follow_data_changes(default: cfg.ExperimentConfig, params: cfg.ExperimentConfig) -> list[str]:
  """Keeps the recipe of `default` (a factory's config) in `params` (the same, overridden).

  When `params` trains on another global batch or number of examples than `default`, every step
  count still at its default value is rescaled so that training lasts the same number of epochs,
  and every learning rate still at its default follows the batch linearly (the rule of
  `scaled_learning_rate`). When the validation batch or size changed, `validation_steps` again
  covers the validation set once. Values the user set are theirs and stay. Returns the dotted
  keys it changed; raises ValueError, naming what to set, where a learning rate cannot follow.
  """
  old, new = default.task.train_data, params.task.train_data
  changed = []

  def follow(key: str, old_node, new_node, fields, ratio: float, steps: bool) -> None:
    for field in fields:
      if not hasattr(old_node, field) or getattr(new_node, field) != getattr(old_node, field):
        continue
      value = getattr(old_node, field)
      if value is None:
        continue
      new_value = _scaled(value, ratio, steps)
      if new_value != value:
        setattr(new_node, field, new_value)
        changed.append(f'{key}.{field}')

  # The learning-rate and warm-up alternatives that both configs select.
  parts = {}
  for name in ('learning_rate', 'warmup'):
    (key, old_part), (new_key, new_part) = (
      _selected(default.trainer, name),
      _selected(params.trainer, name),
    )
    if key == new_key and old_part is not None:
      parts[name] = (key, old_part, new_part)
  if min(_num_examples(old), _num_examples(new)) > 0:
    step_ratio = steps_per_epoch(new) / steps_per_epoch(old)
    follow('trainer', default.trainer, params.trainer, _TRAINER_STEP_FIELDS, step_ratio, True)
    for key, old_part, new_part in parts.values():
      follow(key, old_part, new_part, _SCHEDULE_STEP_FIELDS, step_ratio, True)
  if new.global_batch_size != old.global_batch_size and 'learning_rate' in parts:
    key, old_rate, new_rate = parts['learning_rate']
    if not any(hasattr(old_rate, field) for field in _LEARNING_RATE_FIELDS):
      raise ValueError(
        f'task.train_data.global_batch_size changed from {old.global_batch_size} to '
        f'{new.global_batch_size}, but {key} has no learning rate to scale with it; set the '
        f'learning rate for the new batch in the same override'
      )
    batch_ratio = new.global_batch_size / old.global_batch_size
    follow(key, old_rate, new_rate, _LEARNING_RATE_FIELDS, batch_ratio, False)

  old_val, new_val = default.task.validation_data, params.task.validation_data
  if (
    min(_num_examples(old_val), _num_examples(new_val)) > 0
    and default.trainer.validation_steps == validation_steps(old_val)
    and params.trainer.validation_steps == default.trainer.validation_steps
    and validation_steps(new_val) != default.trainer.validation_steps
  ):
    params.trainer.validation_steps = validation_steps(new_val)
    changed.append('trainer.validation_steps')
  if changed:
    logging.info('Following the data changes, recomputed %s', ', '.join(changed))
  return changed
