"""Test support: a MirroredStrategy over two logical CPU devices, in a fresh process if needed.

Import this module before any TensorFlow op runs (pytest imports every test module of a run
first): splitting the CPU is impossible once TF has initialised its devices.
"""

import os
import subprocess
import sys

import tensorflow as tf

_FRESH_PROCESS_ENV = 'CVRL_TWO_REPLICA_TEST_IN_FRESH_PROCESS'
_NOT_SPLIT_REASON = 'could not split the CPU into 2 logical devices'


def _split_cpu_in_two() -> bool:
  try:
    tf.config.set_logical_device_configuration(
      tf.config.list_physical_devices('CPU')[0],
      [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
    )
  except RuntimeError:
    pass
  return len(tf.config.list_logical_devices('CPU')) >= 2


HAS_TWO_CPUS = _split_cpu_in_two()
_shared_strategy = None


def shared_strategy() -> tf.distribute.MirroredStrategy:
  """The process's one MirroredStrategy over '/cpu:0' and '/cpu:1'.

  Every MirroredStrategy numbers its collectives from the same group and instance keys, and the
  process's collective executor remembers each key's shape: a second strategy's all-gather
  then meets the first one's shapes ("Shape mismatch in the collective instance").
  """
  global _shared_strategy
  if _shared_strategy is None:
    _shared_strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
  return _shared_strategy


class TwoReplicaTestCase(tf.test.TestCase):
  """Tests with `self.strategy`, a MirroredStrategy over '/cpu:0' and '/cpu:1'.

  When an earlier test module already initialised TF with one CPU device, the subclass's test
  file runs alone in a new interpreter, and each test here passes or fails with it.
  """

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    if HAS_TWO_CPUS:
      cls.strategy = shared_strategy()
    elif not os.environ.get(_FRESH_PROCESS_ENV):
      test_file = sys.modules[cls.__module__].__file__
      cls.fresh_process = subprocess.run(
        [sys.executable, '-m', 'pytest', test_file, '-q', '-rs', '-p', 'no:cacheprovider'],
        env={**os.environ, _FRESH_PROCESS_ENV: '1'},
        capture_output=True,
        text=True,
        check=False,
      )

  def setUp(self):
    super().setUp()
    if HAS_TWO_CPUS:
      return
    if os.environ.get(_FRESH_PROCESS_ENV):
      self.skipTest(_NOT_SPLIT_REASON)
    output = self.fresh_process.stdout + self.fresh_process.stderr
    self.assertEqual(self.fresh_process.returncode, 0, msg=output)
    self.assertNotIn(_NOT_SPLIT_REASON, output)
    self.skipTest('passed in a fresh process: this one had initialised TF with one CPU device')
