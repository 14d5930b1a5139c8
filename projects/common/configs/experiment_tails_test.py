"""The classification tail: Model Garden's trainer keeps the best checkpoint it names."""

import os

from official.core import config_definitions as cfg
from official.core import train_utils

from projects.common.configs import experiment_tails


def test_classification_experiment_keeps_the_best_top_1(tmp_path):
  experiment = experiment_tails.classification_experiment(
    cfg.TaskConfig(), cfg.TrainerConfig(), cfg.RuntimeConfig()
  )
  exporter = train_utils.maybe_create_best_ckpt_exporter(experiment, str(tmp_path))
  assert exporter is not None, 'Model Garden keeps no best checkpoint for this trainer'
  assert exporter.best_ckpt_logs_path == os.path.join(str(tmp_path), 'best_ckpt', 'info.json')
  assert experiment.trainer.best_checkpoint_eval_metric == 'top_1_accuracy'
  assert experiment.trainer.best_checkpoint_metric_comp == 'higher'


def test_a_lower_is_better_metric():
  trainer = experiment_tails.keep_best_checkpoint(
    cfg.TrainerConfig(), 'validation_loss', higher_is_better=False
  )
  assert trainer.best_checkpoint_metric_comp == 'lower'
  assert trainer.best_checkpoint_export_subdir == experiment_tails.BEST_CHECKPOINT_SUBDIR
