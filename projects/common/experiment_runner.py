"""Model Garden's experiment runner, made safe to stop and restart on one machine or several.

Two things `official.core.train_lib.OrbitExperimentRunner` leaves to its caller:
- Preemption. On SIGTERM (a preempted VM, `kill`, a cluster scheduler), TensorFlow's
  `PreemptionCheckpointHandler` has every worker save a checkpoint after the same training loop;
  the job then exits with a message naming that checkpoint, and the same command resumes from it.
- Multi-worker restarts. Every worker must take part in a checkpoint save, so Model Garden sends
  the non-chief workers' copies to a temporary folder; but on restart those workers would then
  find nothing to restore and start from fresh weights and step 0 while the chief resumes. Here
  every worker restores from the chief's `model_dir`, and the non-chief workers also write their
  summaries to their own temporary folder rather than over the chief's.
"""

import sys
import tempfile

import tensorflow as tf
from absl import logging
from official.core import train_lib

# 128 + SIGTERM, what a shell reports for a job that SIGTERM ended.
PREEMPTED_EXIT_CODE = 143


class ChiefCheckpointManager(tf.train.CheckpointManager):
  """Writes where it is told (a worker's temporary folder), restores from the chief's folder."""

  def __init__(self, checkpoint: tf.train.Checkpoint, chief_dir: str, **kwargs):
    super().__init__(checkpoint, **kwargs)
    self._chief_dir = chief_dir

  def restore_or_initialize(self):
    chief_latest = tf.train.latest_checkpoint(self._chief_dir)
    if chief_latest is None:
      return super().restore_or_initialize()
    self._checkpoint.restore(chief_latest)
    return chief_latest


def _exit_after_preemption_checkpoint(checkpoint_manager: tf.train.CheckpointManager) -> None:
  print(
    f'preempted (SIGTERM): saved checkpoint {checkpoint_manager.latest_checkpoint}; '
    'run the same command again to continue from it',
    file=sys.stderr,
    flush=True,
  )
  sys.exit(PREEMPTED_EXIT_CODE)


class ExperimentRunner(train_lib.OrbitExperimentRunner):
  """`OrbitExperimentRunner` with preemption checkpoints and chief-restored workers."""

  def __init__(self, distribution_strategy: tf.distribute.Strategy, *args, model_dir: str, **kw):
    self._chief_model_dir = model_dir
    if not distribution_strategy.extended.should_checkpoint:
      model_dir = tempfile.mkdtemp(prefix='non_chief_worker_')
    super().__init__(distribution_strategy, *args, model_dir=model_dir, **kw)

  def _maybe_build_checkpoint_manager(self) -> tf.train.CheckpointManager | None:
    manager = super()._maybe_build_checkpoint_manager()
    if manager is None or self.strategy.extended.should_checkpoint:
      return manager
    return ChiefCheckpointManager(
      self.trainer.checkpoint,
      chief_dir=self._chief_model_dir,
      directory=manager.directory,
      max_to_keep=1,
      step_counter=self.trainer.global_step,
      checkpoint_interval=self.params.trainer.checkpoint_interval,
      init_fn=self.trainer.initialize,
    )

  def _build_controller(self, trainer, evaluator, *args, train_actions=None, **kwargs):
    if trainer is not None:
      train_actions = [*(train_actions or []), self._preemption_action()]
    return super()._build_controller(
      trainer, evaluator, *args, train_actions=train_actions, **kwargs
    )

  def _preemption_action(self):
    """A train action that saves and exits after the loop in which any worker got SIGTERM."""
    manager = self.checkpoint_manager
    handler = tf.distribute.experimental.PreemptionCheckpointHandler(
      cluster_resolver=getattr(self.strategy, 'cluster_resolver', None),
      checkpoint_or_checkpoint_manager=manager,
      termination_config=tf.distribute.experimental.TerminationConfig(
        exit_fn=lambda: _exit_after_preemption_checkpoint(manager)
      ),
    )
    logging.info('SIGTERM saves a checkpoint in %s and exits', manager.directory)

    def save_if_preempted(_train_output) -> None:
      handler.save_checkpoint_if_preempted(
        checkpoint_number=self.trainer.global_step, check_interval=False
      )

    return save_if_preempted


def run_experiment(**kwargs):
  """`train_lib.run_experiment` on `ExperimentRunner`; returns (model, evaluation logs)."""
  return ExperimentRunner(**kwargs).run()
