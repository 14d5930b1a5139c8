"""check_model_dir refuses a model_dir whose params.yaml describes another model."""

import os

import tensorflow as tf
from official.core import exp_factory, train_utils

from projects import registry_imports  # noqa: F401  (registers the demos)
from projects.common import model_dir


def _run_dir_of(experiment: str, folder: str) -> None:
  """A model_dir as train.py leaves it: params.yaml and one checkpoint."""
  train_utils.serialize_config(exp_factory.get_exp_config(experiment), folder)
  tf.train.Checkpoint(step=tf.Variable(3)).save(os.path.join(folder, 'ckpt'))


class CheckModelDirTest(tf.test.TestCase):
  def test_same_model_with_other_training_settings_resumes(self):
    folder = self.get_temp_dir()
    _run_dir_of('cvrl_demo', folder)
    params = exp_factory.get_exp_config('cvrl_demo')
    params.trainer.train_steps += 100
    params.task.train_data.global_batch_size = 8
    model_dir.check_model_dir(params, folder)

  def test_other_model_is_refused_naming_the_differences(self):
    folder = self.get_temp_dir()
    _run_dir_of('cvrl_demo', folder)
    params = exp_factory.get_exp_config('cvrl_demo')
    params.task.model.backbone.slim_r3d.width_multiplier = 2.0
    with self.assertRaisesRegex(
      model_dir.ModelDirMismatchError,
      r'holds ckpt-1 of a different model \(task\.model\.backbone\.slim_r3d\.width_multiplier: '
      r'.* there, 2\.0 now\)',
    ):
      model_dir.check_model_dir(params, folder)

  def test_other_experiment_is_refused(self):
    folder = self.get_temp_dir()
    _run_dir_of('cvrl_demo', folder)
    with self.assertRaisesRegex(model_dir.ModelDirMismatchError, 'of a different model'):
      model_dir.check_model_dir(exp_factory.get_exp_config('video_classification_demo'), folder)

  def test_fresh_or_checkpointless_model_dir_passes(self):
    model_dir.check_model_dir(exp_factory.get_exp_config('cvrl_demo'), self.get_temp_dir())
    folder = os.path.join(self.get_temp_dir(), 'params_only')
    train_utils.serialize_config(exp_factory.get_exp_config('cvrl_demo'), folder)
    model_dir.check_model_dir(exp_factory.get_exp_config('video_classification_demo'), folder)
