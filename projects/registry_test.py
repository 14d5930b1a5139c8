"""Every registered experiment of ours builds, validates and survives a YAML round trip."""

import os
import types
from unittest import mock

import tensorflow as tf
import yaml
from absl.testing import parameterized
from official.core import exp_factory, train_utils

from projects import registry_imports  # noqa: F401
from projects.common import experiment_config
from projects.common.datasets import builtin

OUR_EXPERIMENTS = experiment_config.registered_experiments()


def _comparable(config) -> dict:
  """The config as plain YAML data, without paths that built-in datasets fill in."""
  data = yaml.safe_load(yaml.safe_dump(config.as_dict()))
  for value in data['task'].values():
    if isinstance(value, dict) and value.get('builtin_dataset'):
      value.pop('input_path')
  if data['task'].get('validation_data', {}).get('builtin_dataset'):
    # A built-in detection dataset also fills the evaluator's ground-truth JSON.
    data['task'].pop('annotation_file', None)
  return data


def _unbuilt_dataset():
  """Paths in place of a built-in dataset: the configs are checked here, not the data (ViLD's
  would train its image teacher)."""
  return types.SimpleNamespace(
    train_pattern='/builtin/train-*',
    validation_pattern='/builtin/validation-*',
    validation_annotation_file='/builtin/validation.json',
  )


class RegistryTest(tf.test.TestCase, parameterized.TestCase):
  def setUp(self):
    super().setUp()
    fakes = {name: _unbuilt_dataset for name in builtin.BUILTIN_DATASETS}
    self.enterContext(mock.patch.dict(builtin.BUILTIN_DATASETS, fakes))

  def test_every_family_registers_a_demo(self):
    self.assertIn('video_classification_demo', OUR_EXPERIMENTS)

  def test_names_do_not_collide_with_model_garden(self):
    model_garden = set(experiment_config.registered_experiments(ours_only=False)) - set(
      OUR_EXPERIMENTS
    )
    # Model Garden's own experiments are still reachable under their names.
    self.assertIn('video_classification_kinetics400', model_garden)

  @parameterized.named_parameters((name, name) for name in OUR_EXPERIMENTS)
  def test_experiment_builds_and_validates(self, name):
    config = exp_factory.get_exp_config(name)
    experiment_config.validate_all(config)
    self.assertTrue(config.task.train_data.global_batch_size > 0, name)
    self.assertTrue(config.trainer.train_steps > 0, name)
    doc = exp_factory._REGISTERED_CONFIGS[name].__doc__  # noqa: SLF001
    self.assertIn(f'--experiment={name}', doc, f'{name} factory docstring lacks its command')
    # The printed YAML must be loadable back as a strict override of the same experiment.
    path = os.path.join(self.get_temp_dir(), f'{name}.yaml')
    with open(path, 'w') as f:
      yaml.safe_dump(config.as_dict(), f)
    reloaded = experiment_config.build_experiment_config(name, [path])
    self.assertEqual(_comparable(reloaded), _comparable(config))

  @parameterized.named_parameters((name, name) for name in OUR_EXPERIMENTS)
  def test_a_named_best_checkpoint_is_kept(self, name):
    config = exp_factory.get_exp_config(name)
    if name.startswith(('cvrl_linear_eval', 'cvrl_finetune', 'video_classification')):
      self.assertEqual(config.trainer.best_checkpoint_eval_metric, 'top_1_accuracy', name)
    if config.trainer.best_checkpoint_eval_metric:
      # Model Garden keeps nothing unless both the metric and the sub-folder are set.
      exporter = train_utils.maybe_create_best_ckpt_exporter(config, self.get_temp_dir())
      self.assertIsNotNone(exporter, f'{name} names a best-checkpoint metric but keeps none')

  def test_experiment_yaml_files_apply_to_their_experiment(self):
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments')
    checked = 0
    for family in sorted(os.listdir(root)):
      if not os.path.isdir(os.path.join(root, family)):
        continue  # BUILD
      for filename in sorted(os.listdir(os.path.join(root, family))):
        path = os.path.join(root, family, filename)
        with open(path) as f:
          text = f.read()
        self.assertIn('--experiment=', text, f'{path} lacks the command that runs it')
        name = text.split('--experiment=', 1)[1].split()[0]
        self.assertIn(name, OUR_EXPERIMENTS, path)
        experiment_config.build_experiment_config(name, [path])
        checked += 1
    self.assertGreater(checked, 0)


if __name__ == '__main__':
  tf.test.main()
