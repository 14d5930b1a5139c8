"""Model Garden's trainer, made safe: correct bfloat16 on any CPU, XLA on a CPU when asked, and no
training on past a NaN.

`train.py` and `bench/cvrl_throughput.py` build their trainer with `create_trainer` here.

- Under the bfloat16 policy on a CPU, the model's stem convolution computes in float32
  (`projects.common.modeling.mixed_precision` says why).
- After each training loop (`trainer.steps_per_loop` steps) the loop's mean loss and the
  trainable weights must be finite, else `NonFiniteTrainingError` names the first step whose loss
  was not finite and the last checkpoint in `model_dir`. The error is raised inside
  `trainer.train()`, before Orbit saves a checkpoint for that loop, so every checkpoint holds
  finite weights. Steps are global steps, as Orbit logs them and names checkpoints: `ckpt-N`
  holds the model after step N. Model Garden's blow-up recovery is the alternative: with
  `trainer.recovery_max_trials=N` (N > 0) a NaN loss, or one above `trainer.loss_upper_bound`
  after `trainer.recovery_begin_steps`, restores the last checkpoint and trains on, and stops after
  N restores; this trainer then leaves the loss check to it.
"""

import functools

import numpy as np
import tensorflow as tf
import tf_keras
from absl import logging
from official.core import base_task, base_trainer, config_definitions, train_lib, train_utils

from projects.common.modeling import mixed_precision


class NonFiniteTrainingError(RuntimeError):
  """The training loss or the weights became NaN or infinite."""


class Trainer(base_trainer.Trainer):
  """`base_trainer.Trainer` that keeps the stem float32 under bfloat16 and stops on NaN/inf."""

  def __init__(
    self,
    config: config_definitions.ExperimentConfig,
    task: base_task.Task,
    model: tf_keras.Model,
    optimizer: tf_keras.optimizers.Optimizer,
    *args,
    model_dir: str,
    **kwargs,
  ):
    """`base_trainer.Trainer`'s arguments, and the `model_dir` whose checkpoints it names."""
    if mixed_precision.runs_on_cpu_only():
      stem = mixed_precision.compute_stem_in_float32(model)
      if stem is not None:
        logging.info('bfloat16 policy on CPU: stem convolution %s computes in float32', stem.name)
    super().__init__(config, task, model, optimizer, *args, **kwargs)
    self._model_dir = model_dir
    # The loop's running-mean loss turns non-finite at the first bad step and stays so; this
    # records that step (-1: none yet). Not in the checkpoint.
    self._first_nonfinite_loss_step = tf.Variable(-1, dtype=tf.int64, trainable=False)
    # Model Garden compiles the step itself when a GPU is asked for; this covers the CPU case.
    self._jit_task_train_step = (
      tf.function(task.train_step, jit_compile=True)
      if config.runtime.enable_xla and config.runtime.num_gpus == 0
      else None
    )

  def train_step(self, iterator):
    if self._jit_task_train_step is None:
      super().train_step(iterator)
    else:
      self._jit_compiled_train_step(iterator)
    first_step = self._first_nonfinite_loss_step
    newly_nonfinite = (first_step < 0) & ~tf.math.is_finite(self.train_loss.result())
    first_step.assign(tf.where(newly_nonfinite, self.global_step, first_step))

  def _jit_compiled_train_step(self, iterator):
    """`base_trainer.Trainer.train_step` with the task's step under `jit_compile=True`."""

    def step_fn(inputs):
      logs = self._jit_task_train_step(
        inputs, model=self.model, optimizer=self.optimizer, metrics=self.train_metrics
      )
      self._train_loss.update_state(logs[self.task.loss])
      self.global_step.assign_add(1)

    inputs = self.next_train_inputs(iterator)
    self.strategy.run(step_fn, args=(inputs,), options=self._runtime_options)

  def train_loop_end(self):
    logs = super().train_loop_end()
    first_nonfinite_step = int(self._first_nonfinite_loss_step.numpy())
    self._first_nonfinite_loss_step.assign(-1)
    if self.config.trainer.recovery_max_trials > 0:
      return logs
    loss = float(logs[self.train_loss.name])
    if not np.isfinite(loss):
      raise NonFiniteTrainingError(
        f'the training loss is {loss} from global step {first_nonfinite_step} on (in the loop '
        f'that ended at global step {int(self.global_step.numpy())}); ' + self._stop_message()
      )
    if not _all_finite(self.model.trainable_variables):
      names = [v.name for v in self.model.trainable_variables if not np.isfinite(v.numpy()).all()]
      raise NonFiniteTrainingError(
        f'{len(names)} trainable weights are non-finite after global step '
        f'{int(self.global_step.numpy())} although the loss is finite ({loss:.4g}), first '
        f'{names[0]}; ' + self._stop_message()
      )
    return logs

  def _stop_message(self) -> str:
    checkpoint = tf.train.latest_checkpoint(self._model_dir)
    where = (
      f'the last good checkpoint is {checkpoint}'
      if checkpoint
      else f'no checkpoint was saved in {self._model_dir} before it'
    )
    return (
      f'{where}, and nothing was saved after it. Training stopped: restart from it with a lower '
      'learning rate or runtime.mixed_precision_dtype=float32, or set '
      'trainer.recovery_max_trials=N to restore it and retry up to N times.'
    )


@tf.function
def _all_finite(variables) -> tf.Tensor:
  return tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables])


def create_trainer(
  params: config_definitions.ExperimentConfig,
  task: base_task.Task,
  model_dir: str,
  train: bool,
  evaluate: bool,
) -> Trainer:
  """Our `Trainer` for `task`, as `train_lib.run_experiment` would build Model Garden's.

  Call it inside the distribution strategy's scope and pass the result to
  `train_lib.run_experiment(trainer=...)`.
  """
  return train_utils.create_trainer(
    params,
    task,
    train=train,
    evaluate=evaluate,
    checkpoint_exporter=train_lib.maybe_create_best_ckpt_exporter(params, model_dir),
    trainer_cls=functools.partial(Trainer, model_dir=model_dir),
  )
