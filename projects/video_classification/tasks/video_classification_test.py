"""Video classification inputs (train crops, multi-view eval) and one training step on CPU."""

import os

import tensorflow as tf
from absl.testing import parameterized
from official.core import exp_factory, task_factory

from projects import registry_imports  # noqa: F401
from projects.common.testing import tiny_data


def tiny_demo_config(data_dir: str, num_test_clips: int = 1, num_test_crops: int = 1):
  info = tiny_data.tiny_moving_mnist(data_dir)
  config = exp_factory.get_exp_config('video_classification_demo')
  config.task.train_data.input_path = info.train_pattern
  config.task.validation_data.input_path = info.validation_pattern
  config.task.train_data.global_batch_size = 2
  config.task.validation_data.global_batch_size = 2
  config.task.validation_data.num_test_clips = num_test_clips
  config.task.validation_data.num_test_crops = num_test_crops
  config.task.model.backbone.slim_r3d.width_multiplier = 0.125
  return config


class VideoClassificationTaskTest(tf.test.TestCase, parameterized.TestCase):
  def test_train_inputs(self):
    config = tiny_demo_config(os.path.join(self.get_temp_dir(), 'data'))
    task = task_factory.get_task(config.task)
    features, labels = next(iter(task.build_inputs(config.task.train_data)))
    self.assertEqual(features['image'].shape.as_list(), [2, 8, 32, 32, 3])
    self.assertEqual(features['image'].dtype, tf.float32)
    self.assertAllInRange(features['image'], 0.0, 1.0)
    self.assertEqual(labels.shape.as_list(), [2, 10])
    self.assertAllEqual(tf.reduce_sum(labels, axis=1), [1.0, 1.0])

  @parameterized.parameters((1, 1), (2, 1), (2, 3))
  def test_eval_inputs_stack_views(self, clips, crops):
    config = tiny_demo_config(os.path.join(self.get_temp_dir(), 'data'), clips, crops)
    task = task_factory.get_task(config.task)
    features, labels = next(iter(task.build_inputs(config.task.validation_data)))
    self.assertEqual(features['image'].shape.as_list(), [2 * clips * crops, 8, 32, 32, 3])
    self.assertEqual(labels.shape.as_list(), [2, 10])

  def test_multi_view_eval_averages_views(self):
    config = tiny_demo_config(os.path.join(self.get_temp_dir(), 'data'), 2, 1)
    task = task_factory.get_task(config.task)
    model = task.build_model()
    features, _ = next(iter(task.build_inputs(config.task.validation_data)))
    probabilities = task.inference_step(features, model)
    self.assertEqual(probabilities.shape.as_list(), [2, 10])
    per_view = tf.nn.softmax(model(features, training=False))
    self.assertAllClose(probabilities, tf.reduce_mean(tf.reshape(per_view, [2, 2, 10]), axis=1))

  def test_train_step_reduces_nothing_to_nan(self):
    config = tiny_demo_config(os.path.join(self.get_temp_dir(), 'data'))
    task = task_factory.get_task(config.task)
    model = task.build_model()
    optimizer = task.create_optimizer(config.trainer.optimizer_config)
    metrics = task.build_metrics()
    batch = next(iter(task.build_inputs(config.task.train_data)))
    logs = task.train_step(batch, model, optimizer, metrics=metrics)
    self.assertTrue(tf.math.is_finite(logs['loss']))


if __name__ == '__main__':
  tf.test.main()
