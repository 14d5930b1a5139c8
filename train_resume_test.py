"""Kill `train.py` mid-run (SIGKILL, SIGTERM), rerun the same command, and check it resumes."""

import os
import signal
import subprocess
import sys
import time

import tensorflow as tf

from projects.common.testing import tiny_data
from train_test import REPO, tiny_demo_override


def _checkpoint_step(path: str) -> int:
  return int(path.rsplit('-', 1)[-1])


def _saved_state(checkpoint: str) -> dict[str, int]:
  """Global step and optimizer step count stored in a checkpoint."""
  reader = tf.train.load_checkpoint(checkpoint)
  names = reader.get_variable_to_shape_map()
  global_step = next(n for n in names if n.startswith('global_step/'))
  iterations = next(n for n in names if n.startswith('optimizer/') and '/iter' in n)
  return {
    'global_step': int(reader.get_tensor(global_step)),
    'optimizer_iterations': int(reader.get_tensor(iterations)),
  }


class ResumeTest(tf.test.TestCase):
  def setUp(self):
    super().setUp()
    self.data = tiny_data.tiny_moving_mnist(os.path.join(self.get_temp_dir(), 'data'))
    self.model_dir = os.path.join(self.get_temp_dir(), 'run')

  def _train_command(self, train_steps: int, checkpoint_interval: int = 2) -> list[str]:
    override = ','.join(
      [
        tiny_demo_override(self.data),
        f'trainer.train_steps={train_steps}',
        f'trainer.checkpoint_interval={checkpoint_interval}',
      ]
    )
    return [
      sys.executable,
      os.path.join(REPO, 'train.py'),
      '--experiment=video_classification_demo',
      '--mode=train',
      f'--model_dir={self.model_dir}',
      f'--params_override={override}',
    ]

  def _start_and_wait_for_checkpoint(self, checkpoint_interval: int) -> subprocess.Popen:
    """Starts a long run; returns once it has written a checkpoint past its first loop."""
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
    process = subprocess.Popen(
      self._train_command(train_steps=100_000, checkpoint_interval=checkpoint_interval),
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
      env=env,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
      latest = tf.train.latest_checkpoint(self.model_dir)
      # With frequent checkpoints, one that is not the first; else the first loop's.
      if latest and _checkpoint_step(latest) >= (4 if checkpoint_interval <= 2 else 1):
        return process
      time.sleep(0.5)
    process.kill()
    _, stderr = process.communicate()
    self.fail(f'no checkpoint appeared; train.py said: {stderr[-3000:]}')

  def _rerun_until(self, train_steps: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
    return subprocess.run(
      self._train_command(train_steps), capture_output=True, text=True, env=env, timeout=600
    )

  def _assert_resumes_from(self, checkpoint: str) -> None:
    resumed_step = _checkpoint_step(checkpoint)
    result = self._rerun_until(resumed_step + 4)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIn(f'restored from checkpoint: {checkpoint}', result.stderr)
    final = tf.train.latest_checkpoint(self.model_dir)
    self.assertEqual(_checkpoint_step(final), resumed_step + 4)
    # The step and the optimizer went on from where they were, not from zero.
    self.assertEqual(
      _saved_state(final),
      {'global_step': resumed_step + 4, 'optimizer_iterations': resumed_step + 4},
    )

  def test_sigkill_then_rerun_resumes_from_the_last_checkpoint(self):
    process = self._start_and_wait_for_checkpoint(checkpoint_interval=2)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    self.assertEqual(process.returncode, -signal.SIGKILL)
    self._assert_resumes_from(tf.train.latest_checkpoint(self.model_dir))

  def test_sigterm_saves_a_checkpoint_then_rerun_resumes_from_it(self):
    # Periodic checkpoints far apart: the one after SIGTERM can only be the preemption save.
    process = self._start_and_wait_for_checkpoint(checkpoint_interval=1000)
    first = _checkpoint_step(tf.train.latest_checkpoint(self.model_dir))
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=600)
    self.assertEqual(process.returncode, 143, stderr[-3000:])
    saved = tf.train.latest_checkpoint(self.model_dir)
    self.assertIn(f'preempted (SIGTERM): saved checkpoint {saved}', stderr)
    self.assertGreater(_checkpoint_step(saved), first)
    self.assertNotEqual(_checkpoint_step(saved) % 1000, 0)
    self._assert_resumes_from(saved)
