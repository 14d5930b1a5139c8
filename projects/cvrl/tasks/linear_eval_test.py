"""CVRL linear evaluation: restores only the backbone, keeps it frozen, trains the classifier."""

import json
import os

import numpy as np
import tensorflow as tf
import tf_keras
from absl.testing import parameterized
from official.core import task_factory
from official.modeling import performance

from projects.common.testing import tiny_data
from projects.cvrl.configs import demo
from projects.cvrl.tasks import tiny_configs


def _values(variables) -> list[np.ndarray]:
  return [v.numpy() for v in variables]


class LinearEvalTaskTest(tf.test.TestCase, parameterized.TestCase):
  def setUp(self):
    super().setUp()
    self.info = tiny_data.tiny_moving_mnist(os.path.join(self.get_temp_dir(), 'data'))

  def tearDown(self):
    tf_keras.mixed_precision.set_global_policy('float32')
    super().tearDown()

  def _pretrained_checkpoint(self) -> tuple[str, list[np.ndarray]]:
    """Saves a pretraining model the way the trainer does; returns its path and backbone."""
    config = tiny_configs.tiny_experiment('cvrl_demo', self.info)
    model = task_factory.get_task(config.task).build_model()
    # Stands in for pretraining: rescales every value, keeping batch-norm variances positive.
    for variable in model.backbone.variables:
      variable.assign(variable * tf.random.uniform(variable.shape, 0.5, 1.5, dtype=variable.dtype))
    checkpoint = tf.train.Checkpoint(model=model, **model.checkpoint_items)
    path = checkpoint.save(os.path.join(self.get_temp_dir(), 'pretrain', 'ckpt'))
    return path, _values(model.backbone.variables)

  def _task_and_model(self, logging_dir=None, **task_overrides):
    config = tiny_configs.tiny_experiment('cvrl_linear_eval_demo', self.info, **task_overrides)
    task = task_factory.get_task(config.task, logging_dir=logging_dir)
    model = task.build_model()
    task.initialize(model)
    # No warm-up, so that the very first step already moves whatever is trainable.
    config.trainer.optimizer_config.warmup.linear.warmup_steps = 0
    optimizer = task.create_optimizer(config.trainer.optimizer_config)
    return config, task, model, optimizer

  def _train(self, config, task, model, optimizer, num_steps: int = 2):
    dataset = iter(task.build_inputs(config.task.train_data))
    for _ in range(num_steps):
      logs = task.train_step(next(dataset), model, optimizer, metrics=task.build_metrics())
    return logs

  def test_restores_the_backbone_only_and_keeps_it_frozen(self):
    path, pretrained = self._pretrained_checkpoint()
    config, task, model, optimizer = self._task_and_model(init_checkpoint=path)
    for expected, variable in zip(pretrained, model.backbone.variables, strict=True):
      self.assertAllEqual(expected, variable.numpy(), msg=variable.name)
    classifier_before = _values(model.classifier.variables)

    logs = self._train(config, task, model, optimizer)

    self.assertTrue(np.isfinite(logs['loss']))
    # Weights and batch-norm moving statistics alike: the backbone ran in inference mode.
    for expected, variable in zip(pretrained, model.backbone.variables, strict=True):
      self.assertAllEqual(expected, variable.numpy(), msg=variable.name)
    for before, variable in zip(classifier_before, model.classifier.variables, strict=True):
      self.assertNotAllClose(before, variable.numpy(), msg=variable.name)

  def test_fine_tuning_trains_the_backbone(self):
    path, pretrained = self._pretrained_checkpoint()
    config, task, model, optimizer = self._task_and_model(
      init_checkpoint=path, freeze_backbone=False
    )
    self._train(config, task, model, optimizer, num_steps=1)
    changed = [
      not np.array_equal(expected, variable.numpy())
      for expected, variable in zip(pretrained, model.backbone.variables, strict=True)
    ]
    self.assertTrue(all(changed))

  def test_bfloat16_linear_eval_trains_in_float32_logits(self):
    # What the demo runs where the CPU has native bfloat16 (projects.common.configs.runtime).
    performance.set_mixed_precision_policy('bfloat16')
    config, task, model, optimizer = self._task_and_model()
    self.assertEqual(model.backbone.compute_dtype, 'bfloat16')
    features, labels = next(iter(task.build_inputs(config.task.train_data)))
    self.assertEqual(model(features, training=False).dtype, tf.float32)
    classifier_before = _values(model.classifier.variables)
    logs = task.train_step((features, labels), model, optimizer, metrics=task.build_metrics())
    self.assertTrue(np.isfinite(logs['loss']))
    for before, variable in zip(classifier_before, model.classifier.variables, strict=True):
      self.assertNotAllClose(before, variable.numpy(), msg=variable.name)

  @parameterized.parameters((1, 1), (2, 3))
  def test_multi_view_evaluation_averages_views(self, num_test_clips, num_test_crops):
    config, task, model, _ = self._task_and_model(
      validation_data={'num_test_clips': num_test_clips, 'num_test_crops': num_test_crops}
    )
    features, labels = next(iter(task.build_inputs(config.task.validation_data)))
    num_views = num_test_clips * num_test_crops
    self.assertEqual(features['image'].shape.as_list(), [2 * num_views, *demo.DEMO_CLIP_SHAPE])
    logs = task.validation_step((features, labels), model, metrics=task.build_metrics(False))
    self.assertBetween(float(logs['top_1_accuracy']), 0.0, 1.0)
    self.assertEqual(task.inference_step(features, model).shape.as_list(), [2, 10])

  def test_evaluation_writes_the_report(self):
    model_dir = os.path.join(self.get_temp_dir(), 'linear_eval')
    config, task, model, _ = self._task_and_model(logging_dir=model_dir)
    metrics = task.build_metrics(training=False)
    state = None
    for batch in task.build_inputs(config.task.validation_data):
      state = task.aggregate_logs(state, task.validation_step(batch, model, metrics=metrics))
    report = task.reduce_aggregated_logs(state, global_step=tf.Variable(3))
    self.assertEqual(report['num_eval_videos'], self.info.num_validation)
    top_1 = {m.name: m for m in metrics}['top_1_accuracy'].result()
    self.assertAllClose(report['multi_view_top_1_accuracy'], top_1)
    report_dir = os.path.join(model_dir, 'eval_report')
    self.assertTrue(os.path.exists(os.path.join(report_dir, 'confusion_matrix_step_3.png')))
    with open(os.path.join(report_dir, 'per_class_accuracy_step_3.json')) as f:
      self.assertEqual(json.load(f)['num_eval_videos'], self.info.num_validation)


if __name__ == '__main__':
  tf.test.main()
