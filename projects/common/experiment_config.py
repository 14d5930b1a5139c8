"""Builds an experiment config from flags, turning every user mistake into one clear message.

Override order (as in Model Garden): registered Python defaults -> each `--config_file` in order
(strict) -> `--params_override` (strict) -> our experiments' epoch schedules follow a changed
batch or dataset size (`schedules.follow_data_changes`) -> `validate()` of the experiment and of
every config in it -> built-in datasets materialised -> `lock()`. Everything here runs before
any model or graph is built.
"""

import difflib
import os
from collections.abc import Sequence

import tensorflow as tf
import yaml
from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official.modeling.hyperparams import params_dict

from projects.common.configs import schedules
from projects.common.datasets import builtin


class ExperimentConfigError(ValueError):
  """A mistake in the experiment name, a config file, an override or an input path."""


def registered_experiments(ours_only: bool = True) -> list[str]:
  """Registered experiment names; `ours_only` keeps those registered from `projects.*`."""
  # exp_factory has no public listing; its registry dict is the one source of truth.
  registry = exp_factory._REGISTERED_CONFIGS  # noqa: SLF001
  return sorted(
    name
    for name, factory in registry.items()
    if not ours_only or factory.__module__.startswith('projects.')
  )


def get_experiment(name: str) -> cfg.ExperimentConfig:
  """Returns the registered experiment's default config, or says which names are close."""
  everything = registered_experiments(ours_only=False)
  if name not in everything:
    close = difflib.get_close_matches(name, registered_experiments(), n=3, cutoff=0.5)
    close = close or difflib.get_close_matches(name, everything, n=3, cutoff=0.5)
    hint = f'; did you mean {" or ".join(repr(c) for c in close)}?' if close else ''
    raise ExperimentConfigError(
      f'unknown experiment {name!r}{hint} (`train.py --list_experiments` lists them all)'
    )
  return exp_factory.get_exp_config(name)


def _field_names(node: hyperparams.Config) -> list[str]:
  # A OneOfConfig accepts every alternative's field, not only the selected one.
  return [k for k in vars(node) if not k.startswith('_')]


def find_unknown_key(config: hyperparams.Config, overrides: dict, prefix: str = '') -> str | None:
  """Dotted path of the first key in `overrides` that `config` does not have, else None."""
  for key, value in overrides.items():
    path = f'{prefix}{key}'
    if key not in _field_names(config):
      return path
    child = getattr(config, key)
    if isinstance(value, dict) and isinstance(child, hyperparams.ParamsDict):
      unknown = find_unknown_key(child, value, prefix=f'{path}.')
      if unknown:
        return unknown
  return None


def _closest_field(config: hyperparams.Config, dotted_key: str) -> str:
  *parents, leaf = dotted_key.split('.')
  node = config
  for part in parents:
    node = getattr(node, part)
  close = difflib.get_close_matches(leaf, _field_names(node), n=1, cutoff=0.6)
  return f"; did you mean '{'.'.join([*parents, close[0]])}'?" if close else ''


def load_override(source: str, what: str) -> dict:
  """Parses a YAML/JSON file, YAML/JSON string or `a.b=1,c=2` string the way Model Garden does."""
  if what.startswith('config file'):
    if not tf.io.gfile.exists(source):
      raise ExperimentConfigError(f'{what}: file not found')
    with tf.io.gfile.GFile(source) as f:
      text = f.read()
  else:
    text = source
    try:
      text = params_dict.nested_csv_str_to_json_str(text)
    except ValueError:
      pass
  try:
    loaded = yaml.load(text, Loader=params_dict._LOADER)  # noqa: SLF001
  except yaml.YAMLError as e:
    raise ExperimentConfigError(f'{what}: not valid YAML: {e}') from None
  if loaded is None:
    return {}
  if not isinstance(loaded, dict) and not what.startswith('config file') and os.path.isfile(text):
    return load_override(text, f'config file {text!r} (from --params_override)')
  if not isinstance(loaded, dict):
    raise ExperimentConfigError(f'{what}: expected a mapping of config keys, got {loaded!r}')
  return loaded


def _apply_override(params: cfg.ExperimentConfig, source: str, what: str) -> None:
  overrides = load_override(source, what)
  unknown = find_unknown_key(params, overrides)
  if unknown:
    raise ExperimentConfigError(
      f'{what}: unknown config key {unknown!r}{_closest_field(params, unknown)}'
    )
  try:
    params.override(overrides, is_strict=True)
  except (KeyError, ValueError, TypeError) as e:
    raise ExperimentConfigError(f'{what}: {e}') from None


def validate_all(config: hyperparams.Config, path: str = '') -> None:
  """Calls `validate()` on `config` and on every config nested in it, naming the one that fails.

  Model Garden's `ExperimentConfig.validate()` checks only the experiment's restrictions, so a
  sub-config's own checks (an unknown `gap_distribution`, say) would otherwise first fail inside
  the input pipeline. Of a one-of config only the selected alternative is checked.
  """
  if isinstance(config, hyperparams.OneOfConfig):
    alternatives = [name for name in _field_names(config) if name != 'type']
    if config.type is not None and config.type not in alternatives:
      raise ValueError(f'{path}.type={config.type!r} is not one of {alternatives}')
    children = [(config.type, config.get())] if config.type else []
  else:
    children = [(name, getattr(config, name)) for name in _field_names(config)]
  # Innermost first: a config's own restrictions read its children, which must be sound.
  for name, child in children:
    child_path = f'{path}.{name}' if path else name
    if isinstance(child, hyperparams.Config):
      validate_all(child, child_path)
    elif isinstance(child, list | tuple):
      for index, item in enumerate(child):
        if isinstance(item, hyperparams.Config):
          validate_all(item, f'{child_path}[{index}]')
  try:
    config.validate()
  except (KeyError, ValueError) as e:
    raise ValueError(f'{path}: {e}' if path else str(e)) from None


def build_experiment_config(
  experiment: str,
  config_files: Sequence[str] = (),
  params_override: str | None = None,
  tpu: str | None = None,
) -> cfg.ExperimentConfig:
  """Resolves, validates and locks the config of one run."""
  params = get_experiment(experiment)
  for path in config_files or ():
    _apply_override(params, path, f'config file {path!r}')
  if tpu:
    params.override({'runtime': {'tpu': tpu}}, is_strict=True)
  if params_override:
    _apply_override(params, params_override, '--params_override')
  try:
    if experiment in registered_experiments():
      schedules.follow_data_changes(get_experiment(experiment), params)
    validate_all(params)
    builtin.materialize_builtin_datasets(params.task)
  except (KeyError, ValueError) as e:
    raise ExperimentConfigError(f'experiment {experiment!r}: {e}') from None
  params.lock()
  return params


def check_input_paths(params: cfg.ExperimentConfig, mode: str) -> None:
  """Fails when an input the mode will read is unset or its pattern matches no file."""
  needed = []
  if 'train' in mode:
    needed.append('task.train_data')
  if 'eval' in mode:
    needed.append('task.validation_data')
  for key, data in builtin.data_configs(params.task):
    if key not in needed or data.tfds_name:
      continue
    if not isinstance(data.input_path, str):
      continue  # A mapping of named inputs; each reader checks its own entries.
    patterns = [p for p in data.input_path.split(',') if p.strip()]
    if not patterns:
      raise ExperimentConfigError(
        f'{key}.input_path is empty; set it in a --config_file or with '
        f'--params_override={key}.input_path=/path/to/*.tfrecord'
      )
    for pattern in patterns:
      if not tf.io.gfile.glob(pattern.strip()):
        raise ExperimentConfigError(f'{key}.input_path pattern {pattern!r} matches no file')
