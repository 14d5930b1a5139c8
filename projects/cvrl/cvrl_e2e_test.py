"""End to end through `train.py`: CVRL pretraining, then linear evaluation of its checkpoint."""

import json
import os
import subprocess
import sys

import tensorflow as tf

from projects.common.testing import tiny_data
from projects.cvrl.tasks import tiny_configs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_STEPS = 4


def run_train_py(experiment: str, model_dir: str, overrides: dict) -> subprocess.CompletedProcess:
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run(
    [
      sys.executable,
      os.path.join(REPO, 'train.py'),
      f'--experiment={experiment}',
      '--mode=train_and_eval',
      f'--model_dir={model_dir}',
      # A JSON mapping is valid YAML, which --params_override accepts.
      f'--params_override={json.dumps(overrides)}',
    ],
    capture_output=True,
    text=True,
    env=env,
    timeout=600,
  )


def short_schedule(overrides: dict) -> dict:
  overrides['trainer'] = {
    'train_steps': NUM_STEPS,
    'steps_per_loop': NUM_STEPS,
    'summary_interval': NUM_STEPS,
    'checkpoint_interval': NUM_STEPS,
    'validation_interval': NUM_STEPS,
    'validation_steps': 2,
  }
  return overrides


class CVRLEndToEndTest(tf.test.TestCase):
  def test_pretrain_then_linear_eval(self):
    info = tiny_data.tiny_moving_mnist(os.path.join(self.get_temp_dir(), 'data'))
    pretrain_dir = os.path.join(self.get_temp_dir(), 'pretrain')
    result = run_train_py(
      'cvrl_demo', pretrain_dir, short_schedule(tiny_configs.tiny_overrides(info))
    )
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    # Orbit's evaluation summary.
    self.assertIn("'knn_top1_accuracy'", result.stdout)
    self.assertIn("'contrastive_accuracy'", result.stdout)
    self.assertEqual(tf.train.latest_checkpoint(pretrain_dir).rsplit('-', 1)[-1], str(NUM_STEPS))

    eval_dir = os.path.join(self.get_temp_dir(), 'linear_eval')
    overrides = short_schedule(tiny_configs.tiny_overrides(info))
    overrides['task']['init_checkpoint'] = pretrain_dir
    result = run_train_py('cvrl_linear_eval_demo', eval_dir, overrides)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIn("'top_1_accuracy'", result.stdout)
    self.assertIn('Finished loading pretrained checkpoint', result.stderr)

    # The linear evaluation's backbone is the pretrained one, untouched by its training.
    pretrained = tf.train.load_checkpoint(tf.train.latest_checkpoint(pretrain_dir))
    evaluated = tf.train.load_checkpoint(tf.train.latest_checkpoint(eval_dir))
    backbone_keys = [
      key
      for key in pretrained.get_variable_to_shape_map()
      if key.startswith('backbone/') and '.OPTIMIZER_SLOT' not in key
    ]
    self.assertNotEmpty(backbone_keys)
    for key in backbone_keys:
      self.assertAllEqual(pretrained.get_tensor(key), evaluated.get_tensor(key), msg=key)


if __name__ == '__main__':
  tf.test.main()
