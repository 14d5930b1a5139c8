"""User mistakes in names, config files, overrides and input paths give one clear message."""

import os
from unittest import mock

import tensorflow as tf

from projects import registry_imports  # noqa: F401
from projects.common import experiment_config

DEMO = 'video_classification_demo'
Error = experiment_config.ExperimentConfigError


class ExperimentConfigTest(tf.test.TestCase):
  def _write(self, name, text):
    path = os.path.join(self.get_temp_dir(), name)
    with open(path, 'w') as f:
      f.write(text)
    return path

  def test_unknown_experiment_suggests_close_names(self):
    with self.assertRaisesRegex(
      Error, r"unknown experiment 'video_clasification_demo'.*'video_classification_demo'"
    ):
      experiment_config.get_experiment('video_clasification_demo')

  def test_unknown_key_in_yaml_names_dotted_path_and_file(self):
    path = self._write('bad.yaml', 'task:\n  train_data:\n    global_bach_size: 4\n')
    with self.assertRaises(Error) as ctx:
      experiment_config.build_experiment_config(DEMO, [path])
    message = str(ctx.exception)
    self.assertIn(path, message)
    self.assertIn("'task.train_data.global_bach_size'", message)
    self.assertIn("did you mean 'task.train_data.global_batch_size'", message)

  def test_unknown_key_in_params_override(self):
    with self.assertRaisesRegex(
      Error, r"--params_override: unknown config key 'trainer.train_stepz'"
    ):
      experiment_config.build_experiment_config(DEMO, params_override='trainer.train_stepz=3')

  def test_one_of_alternatives_are_known_keys(self):
    path = self._write(
      'ok.yaml',
      'task:\n  model:\n    backbone:\n      type: resnet_3d\n      resnet_3d:\n        model_id: 50\n',
    )
    params = experiment_config.build_experiment_config(DEMO, [path])
    self.assertEqual(params.task.model.backbone.type, 'resnet_3d')

  def test_missing_config_file(self):
    with self.assertRaisesRegex(Error, r"config file '/no/such.yaml': file not found"):
      experiment_config.build_experiment_config(DEMO, ['/no/such.yaml'])

  def test_overrides_apply_in_order(self):
    first = self._write('a.yaml', 'trainer:\n  train_steps: 5\n  steps_per_loop: 5\n')
    second = self._write('b.yaml', 'trainer:\n  train_steps: 7\n')
    params = experiment_config.build_experiment_config(
      DEMO, [first, second], params_override='trainer.steps_per_loop=1'
    )
    self.assertEqual(params.trainer.train_steps, 7)
    self.assertEqual(params.trainer.steps_per_loop, 1)

  def test_nested_configs_are_validated(self):
    # Model Garden's validate() checks only the experiment's restrictions.
    with self.assertRaisesRegex(
      Error,
      r"^experiment 'cvrl_demo': task.train_data: gap_distribution must be one of "
      r"\['linear', 'uniform', 'power'\], got 'cubic'$",
    ):
      experiment_config.build_experiment_config(
        'cvrl_demo', params_override='task.train_data.gap_distribution=cubic'
      )

  def test_unknown_one_of_choice_is_named(self):
    with self.assertRaisesRegex(
      Error, r"task.model.backbone.type='resnet3d' is not one of \['resnet_3d', 'resnet_3d_rs'"
    ):
      experiment_config.build_experiment_config(
        DEMO, params_override='task.model.backbone.type=resnet3d'
      )

  def test_validate_all_reaches_configs_in_lists(self):
    params = experiment_config.get_experiment('video_classification_r3d50_kinetics400')
    third_block = params.task.model.backbone.resnet_3d.block_specs[2]

    def validate(block):
      if block is third_block:
        raise ValueError('bad block')

    with mock.patch.object(type(third_block), 'validate', validate):
      with self.assertRaisesRegex(
        ValueError, r'^task.model.backbone.resnet_3d.block_specs\[2\]: bad block$'
      ):
        experiment_config.validate_all(params)

  def test_empty_pattern_is_named(self):
    pattern = os.path.join(self.get_temp_dir(), 'nothing-*.tfrecord')
    params = experiment_config.build_experiment_config(
      'video_classification_r3d50_kinetics400',
      params_override=f'task.train_data.input_path={pattern}',
    )
    with self.assertRaises(Error) as ctx:
      experiment_config.check_input_paths(params, 'train')
    self.assertEqual(
      str(ctx.exception), f"task.train_data.input_path pattern '{pattern}' matches no file"
    )

  def test_unset_input_path_is_named(self):
    params = experiment_config.build_experiment_config('video_classification_r3d50_kinetics400')
    with self.assertRaisesRegex(Error, r'task.validation_data.input_path is empty'):
      experiment_config.check_input_paths(params, 'eval')


if __name__ == '__main__':
  tf.test.main()
