"""The last step of every experiment factory: keep the best checkpoint, state the restrictions."""

from official.core import config_definitions as cfg

# Sub-folder of the model dir where Model Garden's trainer keeps the best checkpoint so far
# (Model Garden's own experiments use the same name).
BEST_CHECKPOINT_SUBDIR = 'best_ckpt'

CLASSIFICATION_RESTRICTIONS = [
  'task.train_data.is_training != None',
  'task.validation_data.is_training != None',
  'task.train_data.num_classes == task.validation_data.num_classes',
]


def keep_best_checkpoint(
  trainer: cfg.TrainerConfig, eval_metric: str, higher_is_better: bool = True
) -> cfg.TrainerConfig:
  """Makes `trainer` keep the checkpoint with the best `eval_metric` in `BEST_CHECKPOINT_SUBDIR`.

  Model Garden's exporter needs both the metric and the sub-folder; with either empty it keeps
  nothing. The folder holds the checkpoint and `info.json` with its step and evaluation.
  """
  trainer.best_checkpoint_eval_metric = eval_metric
  trainer.best_checkpoint_export_subdir = BEST_CHECKPOINT_SUBDIR
  trainer.best_checkpoint_metric_comp = 'higher' if higher_is_better else 'lower'
  return trainer


def classification_experiment(
  task: cfg.TaskConfig, trainer: cfg.TrainerConfig, runtime: cfg.RuntimeConfig
) -> cfg.ExperimentConfig:
  """A video classification experiment that keeps the checkpoint with the best top-1."""
  return cfg.ExperimentConfig(
    runtime=runtime,
    task=task,
    trainer=keep_best_checkpoint(trainer, 'top_1_accuracy'),
    restrictions=CLASSIFICATION_RESTRICTIONS,
  )
