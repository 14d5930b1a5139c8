"""End to end through `train.py`: a few steps of train_and_eval, and the CLI's user errors."""

import os
import subprocess
import sys

import tensorflow as tf

from projects.common.testing import tiny_data

REPO = os.path.dirname(os.path.abspath(__file__))


def run_train_py(*args: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run(
    [sys.executable, os.path.join(REPO, 'train.py'), *args],
    capture_output=True,
    text=True,
    env=env,
    timeout=600,
  )


def tiny_demo_override(info) -> str:
  return ','.join(
    [
      f'task.train_data.input_path={info.train_pattern}',
      f'task.validation_data.input_path={info.validation_pattern}',
      'task.train_data.global_batch_size=2',
      'task.validation_data.global_batch_size=2',
      'task.train_data.num_examples=8',
      'task.validation_data.num_examples=4',
      'trainer.train_steps=4',
      'trainer.steps_per_loop=2',
      'trainer.summary_interval=2',
      'trainer.checkpoint_interval=2',
      'trainer.validation_interval=4',
      'trainer.validation_steps=2',
    ]
  )


class TrainPyTest(tf.test.TestCase):
  def test_video_classification_train_and_eval(self):
    info = tiny_data.tiny_moving_mnist(os.path.join(self.get_temp_dir(), 'data'))
    model_dir = os.path.join(self.get_temp_dir(), 'run')
    result = run_train_py(
      '--experiment=video_classification_demo',
      '--mode=train_and_eval',
      f'--model_dir={model_dir}',
      f'--params_override={tiny_demo_override(info)}',
      '--seed=0',
    )
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIn('final evaluation:', result.stdout)
    self.assertIn('top_1_accuracy=', result.stdout)
    self.assertTrue(os.path.exists(os.path.join(model_dir, 'params.yaml')))
    self.assertEqual(tf.train.latest_checkpoint(model_dir).rsplit('-', 1)[-1], '4')

  def test_non_finite_training_stops_with_one_error_line(self):
    info = tiny_data.tiny_moving_mnist(os.path.join(self.get_temp_dir(), 'data'))
    model_dir = os.path.join(self.get_temp_dir(), 'diverged')
    # A learning rate of 1e30 overflows the weights within a few steps.
    diverging = ','.join(
      [
        tiny_demo_override(info),
        'trainer.train_steps=8',
        'trainer.steps_per_loop=1',
        'trainer.checkpoint_interval=1',
        'trainer.optimizer_config.learning_rate.cosine.initial_learning_rate=1e30',
        'trainer.optimizer_config.warmup.linear.warmup_steps=1',
        'runtime.mixed_precision_dtype=float32',
      ]
    )
    result = run_train_py(
      '--experiment=video_classification_demo',
      '--mode=train',
      f'--model_dir={model_dir}',
      f'--params_override={diverging}',
      '--seed=0',
    )
    self.assertEqual(result.returncode, 1, result.stderr[-3000:])
    error_lines = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
    self.assertLen(error_lines, 1)
    self.assertRegex(error_lines[0], r'global step \d+')
    last = tf.train.latest_checkpoint(model_dir)
    if last:
      self.assertIn(f'the last good checkpoint is {last}', error_lines[0])
    else:
      self.assertIn('no checkpoint was saved', error_lines[0])
    self.assertNotIn('Traceback', result.stderr)

  def test_last_evaluation_is_the_highest_steps_scalars(self):
    import train

    summary_dir = self.get_temp_dir()
    self.assertEqual(train.last_evaluation(summary_dir), {})
    with tf.summary.create_file_writer(summary_dir).as_default():
      for step, box_ap in ((5, 0.3), (1, 0.1)):
        tf.summary.scalar('AP', box_ap, step=step)
        tf.summary.scalar('validation_loss', 2.0 / step, step=step)
      tf.summary.histogram('scores', [0.1, 0.9], step=5)
    self.assertAllClose(train.last_evaluation(summary_dir), {'AP': 0.3, 'validation_loss': 0.4})

  def test_list_experiments(self):
    result = run_train_py('--list_experiments')
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    self.assertIn('video_classification_demo', result.stdout.split())

  def test_print_config_does_not_need_data(self):
    result = run_train_py('--experiment=video_classification_r3d50_kinetics600', '--print_config')
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    self.assertIn('num_classes: 600', result.stdout)

  def test_user_errors_are_one_line(self):
    cases = {
      'unknown experiment': (
        ['--experiment=video_classification_dmeo', '--print_config'],
        "unknown experiment 'video_classification_dmeo'",
      ),
      'unknown key': (
        ['--experiment=video_classification_demo', '--params_override=task.modle.dropout_rate=0.1'],
        "unknown config key 'task.modle'",
      ),
      'empty pattern': (
        [
          '--experiment=video_classification_r3d50_kinetics400',
          '--mode=train',
          f'--model_dir={self.get_temp_dir()}/x',
          '--params_override=task.train_data.input_path=/nonexistent/*.tfrecord',
        ],
        "pattern '/nonexistent/*.tfrecord' matches no file",
      ),
    }
    for name, (args, expected) in cases.items():
      with self.subTest(name):
        result = run_train_py(*args)
        self.assertEqual(result.returncode, 2, result.stderr[-2000:])
        error_lines = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
        self.assertLen(error_lines, 1)
        self.assertIn(expected, error_lines[0])
        self.assertNotIn('Traceback', result.stderr)


if __name__ == '__main__':
  tf.test.main()
