"""Trains and evaluates any registered experiment with Model Garden's Orbit loop.

  python train.py --experiment=NAME [--config_file=A.yaml ...] [--params_override=...] \
    --mode=train_and_eval --model_dir=DIR

Config order: the experiment's Python defaults, then each --config_file in order, then
--params_override; unknown keys are errors. The resolved config is written to DIR/params.yaml.

A NaN or infinite training loss (or weight) stops training with exit status 1 and an error naming
the step and the last good checkpoint in DIR; `trainer.recovery_max_trials=N` instead restores that
checkpoint and retries, up to N times (projects/common/training/trainer.py).
"""

import os
import sys

# TensorFlow 2.20's CPU build leaves oneDNN off unless asked, and its Eigen 3D convolutions are
# slow, strided ones above all: on a 2-core AVX2 EPYC the forward pass and filter gradient of an
# R3D stem convolution (5x7x7, strides 2, two 8x112^2 clips) took 215 s against 0.23 s with
# oneDNN, and of a 3x3x3 stride-1 convolution 4.5x as long.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')

import gin
import tensorflow as tf
import tf_keras
import yaml
from absl import app, flags
from official.common import distribute_utils
from official.common import flags as tfm_flags
from official.core import task_factory, train_lib, train_utils
from official.modeling import performance

from projects import registry_imports  # noqa: F401  (registers every experiment)
from projects.common import experiment_config, model_stats
from projects.common.training import trainer as trainer_lib

FLAGS = flags.FLAGS

flags.DEFINE_bool('list_experiments', False, 'Print every registered experiment name and exit.')
flags.DEFINE_bool(
  'print_config',
  False,
  'Print the fully resolved config as YAML and exit without building a model.',
)
flags.DEFINE_bool(
  'print_model_stats',
  False,
  'Build only the model and print its parameters, GFLOPs per view and views per video, then exit.',
)

flags.DEFINE_integer(
  'seed',
  None,
  'Seeds Python, NumPy and TensorFlow before the model is built, so that weight initialisation '
  'and unseeded random ops repeat from run to run. Unset: a fresh draw each run.',
)


def _fail(message: str) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def main(_) -> None:
  if FLAGS.list_experiments:
    print('\n'.join(experiment_config.registered_experiments()))
    return
  if not FLAGS.experiment:
    _fail('--experiment is required (`train.py --list_experiments` lists them)')
  try:
    params = experiment_config.build_experiment_config(
      FLAGS.experiment, FLAGS.config_file, FLAGS.params_override, FLAGS.tpu
    )
    if FLAGS.print_config:
      print(yaml.safe_dump(params.as_dict(), sort_keys=False, default_flow_style=False))
      return
    if FLAGS.print_model_stats:
      print(f'experiment: {FLAGS.experiment}')
      print(model_stats.experiment_stats(params.task).summary())
      return
    for required in ('mode', 'model_dir'):
      if not FLAGS[required].value:
        _fail(f'--{required} is required to train or evaluate')
    experiment_config.check_input_paths(params, FLAGS.mode)
  except experiment_config.ExperimentConfigError as e:
    _fail(str(e))

  gin.parse_config_files_and_bindings(FLAGS.gin_file, FLAGS.gin_params)
  model_dir = FLAGS.model_dir
  if 'train' in FLAGS.mode:
    # Eval-only jobs don't write it: a continuous eval job would race the trainer for the file.
    train_utils.serialize_config(params, model_dir)
  if params.runtime.mixed_precision_dtype:
    performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
  if FLAGS.seed is not None:
    tf_keras.utils.set_random_seed(FLAGS.seed)

  strategy = distribute_utils.get_distribution_strategy(
    distribution_strategy=params.runtime.distribution_strategy,
    all_reduce_alg=params.runtime.all_reduce_alg,
    num_gpus=params.runtime.num_gpus,
    tpu_address=params.runtime.tpu,
  )
  with strategy.scope():
    task = task_factory.get_task(params.task, logging_dir=model_dir)
    # Ours, not Model Garden's: float32 stem under bfloat16 on CPU, and a stop on NaN/inf.
    trainer = trainer_lib.create_trainer(
      params, task, model_dir, train='train' in FLAGS.mode, evaluate='eval' in FLAGS.mode
    )
  try:
    _, eval_logs = train_lib.run_experiment(
      distribution_strategy=strategy,
      task=task,
      mode=FLAGS.mode,
      params=params,
      model_dir=model_dir,
      trainer=trainer,
    )
  except trainer_lib.NonFiniteTrainingError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  train_utils.save_gin_config(FLAGS.mode, model_dir)
  # Model Garden returns evaluation logs only for post-eval runs; Orbit's summaries have them all.
  final = eval_logs or last_evaluation(
    os.path.join(model_dir, params.trainer.validation_summary_subdir)
  )
  if final:
    print('final evaluation: ' + ', '.join(f'{k}={float(v):.4f}' for k, v in sorted(final.items())))


def last_evaluation(summary_dir: str) -> dict[str, float]:
  """Scalars of the highest step in an Orbit evaluation summary folder ({} if there is none)."""
  by_step: dict[int, dict[str, float]] = {}
  for path in tf.io.gfile.glob(os.path.join(summary_dir, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tensor = tf.make_ndarray(value.tensor) if value.HasField('tensor') else value.simple_value
        if getattr(tensor, 'ndim', 0) == 0:
          by_step.setdefault(event.step, {})[value.tag] = float(tensor)
  return by_step[max(by_step)] if by_step else {}


if __name__ == '__main__':
  tfm_flags.define_flags()
  app.run(main)
