"""Registered 3D ResNet-RS experiments: every paper row's config, its YAML file, and the demo."""

import os

import tensorflow as tf
from absl.testing import parameterized
from official.core import exp_factory, task_factory

from projects import registry_imports  # noqa: F401
from projects.common import experiment_config
from projects.common.testing import tiny_data
from projects.resnet3d_rs.configs import resnet3d_rs, scaling

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROWS = sorted(resnet3d_rs.PAPER_ROWS.items())


def _comparable(value):
  # A YAML file gives lists where the Python config holds tuples.
  if isinstance(value, dict):
    return {k: _comparable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_comparable(v) for v in value]
  return value


class PaperRowsTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.named_parameters((name, name, row) for name, row in ROWS)
  def test_row_config(self, name, row):
    config = exp_factory.get_exp_config(name)
    config.validate()
    backbone = config.task.model.backbone
    self.assertEqual(backbone.type, 'resnet_3d_rs')
    self.assertEqual(backbone.resnet_3d_rs.model_id, row.depth)
    self.assertEqual(backbone.resnet_3d_rs.se_ratio, 0.25)
    self.assertEqual(
      backbone.resnet_3d_rs.stochastic_depth_drop_rate, scaling.stochastic_depth_rate(row.depth)
    )
    self.assertEqual(config.task.train_data.feature_shape[0], row.num_frames)
    self.assertEqual(config.task.validation_data.feature_shape[0], row.num_frames)
    self.assertEqual(config.task.train_data.name, row.dataset)
    self.assertEqual(
      config.task.train_data.num_classes, {'kinetics400': 400, 'kinetics600': 600}[row.dataset]
    )
    self.assertIsNotNone(config.trainer.optimizer_config.ema)
    self.assertEqual(
      task_factory.get_task_cls(type(config.task)).__name__, 'VideoClassificationTask'
    )

  @parameterized.named_parameters((name, name, row) for name, row in ROWS)
  def test_yaml_restates_the_row_and_starts_with_its_command(self, name, row):
    path = os.path.join(REPO, 'experiments', 'resnet3d_rs', row.config_file)
    with open(path) as f:
      header = [line for line in f.read().splitlines() if line.startswith('#')]
    command = ' '.join(line.lstrip('# ').rstrip('\\ ') for line in header)
    self.assertIn(f'python train.py --experiment={name} ', command)
    self.assertIn(f'--config_file=experiments/resnet3d_rs/{row.config_file} ', command)
    self.assertIn(str(row.top_1), header[1])
    resolved = experiment_config.build_experiment_config(name, [path])
    self.assertEqual(
      _comparable(resolved.as_dict()), _comparable(exp_factory.get_exp_config(name).as_dict())
    )

  def test_every_row_is_a_documented_experiment(self):
    ours = experiment_config.registered_experiments()
    for name, row in ROWS:
      self.assertIn(name, ours)
      doc = exp_factory._REGISTERED_CONFIGS[name].__doc__  # noqa: SLF001
      self.assertIn(f'--config_file=experiments/resnet3d_rs/{row.config_file}', doc)
      self.assertIn(f'paper: {row.top_1}', doc)
    yamls = sorted(os.listdir(os.path.join(REPO, 'experiments', 'resnet3d_rs')))
    self.assertEqual(yamls, sorted(row.config_file for _, row in ROWS))


class DemoTest(tf.test.TestCase):
  def test_demo_trains_and_evaluates_a_few_steps(self):
    info = tiny_data.tiny_moving_mnist(os.path.join(self.get_temp_dir(), 'data'))
    config = exp_factory.get_exp_config('resnet3d_rs_demo')
    config.task.train_data.input_path = info.train_pattern
    config.task.validation_data.input_path = info.validation_pattern
    config.task.train_data.global_batch_size = 4
    config.task.validation_data.global_batch_size = 4
    self.assertEqual(config.task.model.backbone.type, 'slim_resnet_3d_rs')
    task = task_factory.get_task(config.task)
    model = task.build_model()
    self.assertLess(model.count_params(), 2_000_000)
    optimizer = task.create_optimizer(config.trainer.optimizer_config, config.runtime)
    optimizer.shadow_copy(model)  # What Model Garden's trainer does for an EMA optimizer.
    metrics = task.build_metrics()
    dataset = iter(task.build_inputs(config.task.train_data))
    losses = [float(task.train_step(next(dataset), model, optimizer, metrics=metrics)['loss'])]
    losses.append(float(task.train_step(next(dataset), model, optimizer, metrics=metrics)['loss']))
    self.assertTrue(all(tf.math.is_finite(loss) for loss in losses), losses)
    logs = task.validation_step(
      next(iter(task.build_inputs(config.task.validation_data))), model, task.build_metrics(False)
    )
    self.assertEqual(logs['report/num_views'], 4 * config.task.validation_data.num_test_clips)


if __name__ == '__main__':
  tf.test.main()
