"""Trains and evaluates any registered experiment with Model Garden's Orbit loop.

  python train.py --experiment=NAME [--config_file=A.yaml ...] [--params_override=...] \
    --mode=train_and_eval --model_dir=DIR

Config order: the experiment's Python defaults, then each --config_file in order, then
--params_override; unknown keys are errors. The resolved config is written to DIR/params.yaml.

A NaN or infinite training loss (or weight) stops training with exit status 1 and an error naming
the step and the last good checkpoint in DIR; `trainer.recovery_max_trials=N` instead restores that
checkpoint and retries, up to N times (projects/common/training/trainer.py). SIGTERM saves a
checkpoint and exits with status 143; the same command resumes from DIR's newest checkpoint
(projects/common/experiment_runner.py). A DIR whose params.yaml describes another model is
refused unless --allow_model_change. A config that cannot fit its data (a detector's
task.model.num_classes not above the data's largest class id) stops before the first step with
exit status 2 and an error naming the key and the file.
"""

import atexit
import gc
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
from official.core import task_factory, train_utils
from official.modeling import performance
from tensorflow.core.util import event_pb2

from projects import registry_imports  # noqa: F401  (registers every experiment)
from projects.common import (
  cluster,
  experiment_config,
  experiment_runner,
  input_errors,
  model_dir,
  model_stats,
)
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

flags.DEFINE_bool(
  'allow_model_change',
  False,
  'Train in a --model_dir whose params.yaml describes a different model: variables that match '
  'are restored from its checkpoint, the others start fresh. Without it, such a run refuses to start.',
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
    if 'train' in FLAGS.mode and not FLAGS.allow_model_change:
      # Before params.yaml is overwritten: it describes the model of the checkpoints there.
      model_dir.check_model_dir(params, FLAGS.model_dir)
    # Vertex AI describes the cluster in CLUSTER_SPEC; the strategies read TF_CONFIG.
    cluster.ensure_tf_config()
  except (
    experiment_config.ExperimentConfigError,
    model_dir.ModelDirMismatchError,
    cluster.ClusterSpecError,
  ) as e:
    _fail(str(e))

  gin.parse_config_files_and_bindings(FLAGS.gin_file, FLAGS.gin_params)
  run_dir = FLAGS.model_dir
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
  # Every worker of a multi-worker job runs this; only the chief writes into model_dir (the
  # others' checkpoints and summaries go to temporary folders, see experiment_runner).
  is_chief = strategy.extended.should_checkpoint
  if 'train' in FLAGS.mode and is_chief:
    # Eval-only jobs don't write it: a continuous eval job would race the trainer for the file.
    train_utils.serialize_config(params, run_dir)
  try:
    with strategy.scope():
      task = task_factory.get_task(params.task, logging_dir=run_dir)
      # Ours, not Model Garden's: float32 stem under bfloat16 on CPU, and a stop on NaN/inf.
      # Building its inputs checks the config against the data (e.g. num_classes).
      trainer = trainer_lib.create_trainer(
        params, task, run_dir, train='train' in FLAGS.mode, evaluate='eval' in FLAGS.mode
      )
    # Model Garden's runner plus SIGTERM checkpoints and multi-worker restarts from the chief.
    _, eval_logs = experiment_runner.run_experiment(
      distribution_strategy=strategy,
      task=task,
      mode=FLAGS.mode,
      params=params,
      model_dir=run_dir,
      trainer=trainer,
    )
  except input_errors.ConfigDataMismatchError as e:
    _fail(str(e))
  except trainer_lib.NonFiniteTrainingError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
    # tf.data names no file; this reads the inputs again to find the one at fault.
    explanation = input_errors.explain(params.task, FLAGS.mode, e)
    if explanation is None:
      raise
    print(f'error: {explanation}', file=sys.stderr)
    sys.exit(1)
  if is_chief:
    train_utils.save_gin_config(FLAGS.mode, run_dir)
  # Model Garden returns evaluation logs only for post-eval runs; Orbit's summaries have them all.
  final = eval_logs or last_evaluation(
    os.path.join(run_dir, params.trainer.validation_summary_subdir)
  )
  if final:
    print('final evaluation: ' + ', '.join(f'{k}={float(v):.4f}' for k, v in sorted(final.items())))


def last_evaluation(summary_dir: str) -> dict[str, float]:
  """Scalars of the highest step in an Orbit evaluation summary folder ({} if there is none)."""
  by_step: dict[int, dict[str, float]] = {}
  for path in tf.io.gfile.glob(os.path.join(summary_dir, 'events.out.tfevents.*')):
    for record in tf.data.TFRecordDataset(path):
      event = event_pb2.Event.FromString(record.numpy())
      for value in event.summary.value:
        tensor = tf.make_ndarray(value.tensor) if value.HasField('tensor') else value.simple_value
        if getattr(tensor, 'ndim', 0) == 0:
          by_step.setdefault(event.step, {})[value.tag] = float(tensor)
  return by_step[max(by_step)] if by_step else {}


if __name__ == '__main__':
  # Registered first, so it runs last at exit, after every flush. Without it the interpreter's
  # final garbage collection walks the traced graphs' objects: a detection demo run sat 5-40 s
  # after its last output (AMD EPYC), 0.3 s with the objects frozen out of the collection.
  atexit.register(gc.freeze)
  tfm_flags.define_flags()
  app.run(main)
