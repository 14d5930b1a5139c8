"""Video classification inputs, one training step, and the evaluation report (also mirrored)."""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from official.core import base_trainer, exp_factory, task_factory

from projects import registry_imports  # noqa: F401
from projects.common.testing import tiny_data
from projects.video_classification.tasks import video_classification

# Set in the fresh process that runs the mirrored test: TF must split the CPU before it starts.
_TWO_CPUS_ENV = 'VIDEO_CLASSIFICATION_TEST_TWO_CPUS'
if os.environ.get(_TWO_CPUS_ENV):
  tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices('CPU')[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
  )


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


def _evaluate(task, model, config, num_steps: int, global_step: int):
  """The evaluation loop of Model Garden's trainer, without a strategy: steps, aggregate, reduce."""
  metrics = task.build_metrics(training=False)
  dataset = iter(task.build_inputs(config.task.validation_data))
  state = None
  for _ in range(num_steps):
    state = task.aggregate_logs(state, task.validation_step(next(dataset), model, metrics))
  report = task.reduce_aggregated_logs(state, global_step=tf.Variable(global_step))
  return report, {m.name: float(m.result()) for m in metrics}


class EvaluationReportTest(tf.test.TestCase):
  def test_report_matches_keras_metrics_and_writes_files(self):
    config = tiny_demo_config(os.path.join(self.get_temp_dir(), 'data'), num_test_clips=2)
    model_dir = os.path.join(self.get_temp_dir(), 'run')
    task = task_factory.get_task(config.task, logging_dir=model_dir)
    report, keras_metrics = _evaluate(task, task.build_model(), config, num_steps=2, global_step=7)
    self.assertEqual(report['num_eval_videos'], 4)
    self.assertAllClose(report['multi_view_top_1_accuracy'], keras_metrics['top_1_accuracy'])
    self.assertAllClose(report['multi_view_top_5_accuracy'], keras_metrics['top_5_accuracy'])
    for key in ('single_view_top_1_accuracy', 'mean_per_class_accuracy'):
      self.assertBetween(report[key], 0.0, 1.0)

    report_dir = os.path.join(model_dir, 'eval_report')
    with open(os.path.join(report_dir, 'confusion_matrix_step_7.png'), 'rb') as f:
      self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')
    with open(os.path.join(report_dir, 'per_class_accuracy_step_7.json')) as f:
      record = json.load(f)
    self.assertEqual(record['global_step'], 7)
    self.assertEqual(record['views_per_video'], 2)
    self.assertLen(record['per_class'], 10)
    self.assertEqual(sum(row['num_videos'] for row in record['per_class']), 4)
    self.assertEqual(sum(count for _, _, count in record['confusion_matrix_nonzero']), 4)
    self.assertAllClose(record['multi_view_top_1_accuracy'], report['multi_view_top_1_accuracy'])

  def test_without_logging_dir_nothing_is_written(self):
    config = tiny_demo_config(os.path.join(self.get_temp_dir(), 'data'))
    task = task_factory.get_task(config.task)
    cwd = os.getcwd()
    os.chdir(self.get_temp_dir())
    try:
      report, _ = _evaluate(task, task.build_model(), config, num_steps=1, global_step=1)
    finally:
      os.chdir(cwd)
    self.assertEqual(report['num_eval_videos'], 2)
    self.assertFalse(os.path.exists(os.path.join(self.get_temp_dir(), 'eval_report')))

  def test_report_of_a_known_confusion_matrix(self):
    # Class 0: 2 of 3 right (1 taken for class 2); class 1: no videos; class 2: 1 of 1 right.
    confusion = np.array([[2, 0, 1], [0, 0, 0], [0, 0, 1]])
    report = video_classification.evaluation_report(
      confusion, top_5_correct=4, single_view_correct=5, num_views=8
    )
    self.assertAllClose(report['multi_view_top_1_accuracy'], 0.75)
    self.assertAllClose(report['multi_view_top_5_accuracy'], 1.0)
    self.assertAllClose(report['single_view_top_1_accuracy'], 5 / 8)
    self.assertAllClose(report['mean_per_class_accuracy'], (2 / 3 + 1) / 2)
    self.assertEqual(report['views_per_video'], 2)
    first, empty, _ = report['per_class']
    self.assertEqual((first['most_confused_with'], first['most_confused_count']), (2, 1))
    self.assertIsNone(empty['accuracy'])

  def test_report_counts_every_replica_once(self):
    """Under a 2-replica MirroredStrategy, through Model Garden's trainer (fresh process)."""
    if not os.environ.get(_TWO_CPUS_ENV):
      result = subprocess.run(
        [
          sys.executable,
          '-m',
          'pytest',
          __file__,
          '-q',
          '-p',
          'no:cacheprovider',
          '-k',
          self._testMethodName,
        ],
        env={**os.environ, _TWO_CPUS_ENV: '1'},
        capture_output=True,
        text=True,
        timeout=600,
      )
      self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-2000:])
      self.assertIn('1 passed', result.stdout)
      return
    config = tiny_demo_config(os.path.join(self.get_temp_dir(), 'data'), num_test_clips=2)
    model_dir = os.path.join(self.get_temp_dir(), 'run')
    strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    with strategy.scope():
      task = task_factory.get_task(config.task, logging_dir=model_dir)
      model = task.build_model()
      trainer = base_trainer.Trainer(
        config,
        task,
        model=model,
        optimizer=task.create_optimizer(config.trainer.optimizer_config, config.runtime),
        train=False,
        evaluate=True,
      )
    # 4 videos in 2 global batches of 2: one video per replica per step.
    logs = trainer.evaluate(tf.constant(2))
    self.assertEqual(logs['num_eval_videos'], 4)
    self.assertAllClose(logs['multi_view_top_1_accuracy'], logs['top_1_accuracy'])
    self.assertAllClose(logs['multi_view_top_5_accuracy'], logs['top_5_accuracy'])
    self.assertTrue(os.path.exists(os.path.join(model_dir, 'eval_report')))


if __name__ == '__main__':
  tf.test.main()
