"""Refuses a `--model_dir` whose checkpoints belong to another model.

Restoring is lenient in TensorFlow: variables missing from a checkpoint keep their fresh values
and extra ones are ignored, so training a different model in an old `model_dir` silently mixes
the two. `train.py` writes the config of each run to `model_dir/params.yaml`; a new run whose
`task.model` disagrees with it stops before anything is built or overwritten.
"""

import json
import os

import tensorflow as tf
from official.core import config_definitions as cfg
from official.modeling.hyperparams import params_dict

MODEL_KEY = 'model'
_MAX_LISTED_DIFFERENCES = 3


class ModelDirMismatchError(ValueError):
  """`model_dir` holds checkpoints of a different model."""


def differences(old: object, new: object, prefix: str) -> list[str]:
  """Dotted keys whose values differ between two nested dicts, with both values."""
  if isinstance(old, dict) and isinstance(new, dict):
    found = []
    for key in sorted(set(old) | set(new), key=str):
      found += differences(old.get(key), new.get(key), f'{prefix}.{key}')
    return found
  return [] if old == new else [f'{prefix}: {old!r} there, {new!r} now']


def check_model_dir(params: cfg.ExperimentConfig, model_dir: str) -> None:
  """Raises if `model_dir` has a checkpoint and a params.yaml whose `task.model` differs."""
  params_path = os.path.join(model_dir, 'params.yaml')
  checkpoint = tf.train.latest_checkpoint(model_dir)
  if checkpoint is None or not tf.io.gfile.exists(params_path):
    return
  # Through JSON, so both sides have the same types (tuples become lists).
  previous = json.loads(json.dumps(params_dict.read_yaml_to_params_dict(params_path).as_dict()))
  current = json.loads(json.dumps(params.as_dict()))
  found = differences(
    previous.get('task', {}).get(MODEL_KEY), current['task'][MODEL_KEY], f'task.{MODEL_KEY}'
  )
  if found:
    listed = '; '.join(found[:_MAX_LISTED_DIFFERENCES])
    more = (
      f' (and {len(found) - _MAX_LISTED_DIFFERENCES} more)'
      if len(found) > _MAX_LISTED_DIFFERENCES
      else ''
    )
    raise ModelDirMismatchError(
      f'--model_dir {model_dir} holds {os.path.basename(checkpoint)} of a different model '
      f'({listed}{more}); use a new --model_dir, or pass --allow_model_change to restore what '
      'matches and train on'
    )
