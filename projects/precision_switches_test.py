"""`runtime.mixed_precision_dtype=bfloat16` and `runtime.enable_xla` train the video families on CPU.

Each demo experiment, shrunk to tiny data and batch 2, trains a few steps of our trainer on one
repeated batch: every loss must be finite and the last below the first. The detection demos are
not here yet: at their smallest input (128^2, SpineNet's P7) a case took 5-7 minutes on 2 cores.
"""

import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from official.core import exp_factory, task_factory
from official.modeling import performance

from projects import registry_imports  # noqa: F401  (registers the experiments)
from projects.common.testing import tiny_data
from projects.common.training import trainer as trainer_lib
from projects.cvrl.tasks import tiny_configs

NUM_STEPS = 4
BATCH_SIZE = 2

SWITCHES = {
  'bfloat16': {'mixed_precision_dtype': 'bfloat16'},
  'xla': {'enable_xla': True, 'mixed_precision_dtype': 'float32'},
}

SLIM_R3D = {'model': {'backbone': {'slim_r3d': {'width_multiplier': tiny_configs.TINY_WIDTH}}}}
# Experiment name, learning rate (constant, no warm-up: a few steps must already lower the loss),
# task overrides beyond the data. CVRL's NT-Xent on one batch of 2 clips falls to ~0.01 within 3
# steps; at 0.05 SGD momentum then overshoots it (a CI run: 3.2, 5.7, 0.9, 5.5).
VIDEO_FAMILIES = {
  'video_classification': ('video_classification_demo', 0.05, SLIM_R3D),
  'cvrl': ('cvrl_demo', 0.01, SLIM_R3D),
  'cvrl_linear_eval': ('cvrl_linear_eval_demo', 1.0, SLIM_R3D),
  'resnet3d_rs': (
    'resnet3d_rs_demo',
    0.05,
    {'model': {'backbone': {'slim_resnet_3d_rs': {'width_multiplier': tiny_configs.TINY_WIDTH}}}},
  ),
}


def _cases():
  for switch in SWITCHES:
    for family in VIDEO_FAMILIES:
      yield {'testcase_name': f'{family}_{switch}', 'family': family, 'switch': switch}


def _data_overrides(train_pattern: str, validation_pattern: str) -> dict:
  data = {'global_batch_size': BATCH_SIZE}
  return {
    'train_data': {'input_path': train_pattern, **data},
    'validation_data': {'input_path': validation_pattern, **data},
  }


class PrecisionSwitchesTest(parameterized.TestCase, tf.test.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cache = os.path.join(tf.compat.v1.test.get_temp_dir(), 'precision_switches_data')
    cls.video = tiny_data.tiny_moving_mnist(os.path.join(cache, 'moving_mnist'))

  def _config(self, family: str, switch: str):
    name, learning_rate, task_overrides = VIDEO_FAMILIES[family]
    config = exp_factory.get_exp_config(name)
    task = {
      **_data_overrides(self.video.train_pattern, self.video.validation_pattern),
      **task_overrides,
    }
    config.override(
      {
        'runtime': SWITCHES[switch],
        'task': task,
        'trainer': {
          'train_steps': NUM_STEPS,
          'steps_per_loop': 1,
          'optimizer_config': {
            'learning_rate': {'type': 'constant', 'constant': {'learning_rate': learning_rate}},
            'warmup': {'type': None},
          },
        },
      },
      is_strict=True,
    )
    return config

  @parameterized.named_parameters(*_cases())
  def test_few_steps_on_one_batch_lower_a_finite_loss(self, family, switch):
    config = self._config(family, switch)
    performance.set_mixed_precision_policy(config.runtime.mixed_precision_dtype)
    self.addCleanup(performance.set_mixed_precision_policy, 'float32')
    task = task_factory.get_task(config.task, logging_dir=self.get_temp_dir())
    build_inputs = task.build_inputs

    def one_repeated_batch(params, input_context=None):
      return build_inputs(params, input_context).take(1).cache().repeat()

    task.build_inputs = one_repeated_batch
    with tf.distribute.get_strategy().scope():
      trainer = trainer_lib.create_trainer(
        config, task, self.get_temp_dir(), train=True, evaluate=False
      )
    losses = [
      float(trainer.train(tf.constant(1))[trainer.train_loss.name]) for _ in range(NUM_STEPS)
    ]
    self.assertTrue(np.isfinite(losses).all(), losses)
    self.assertLess(losses[-1], losses[0], losses)


if __name__ == '__main__':
  tf.test.main()
