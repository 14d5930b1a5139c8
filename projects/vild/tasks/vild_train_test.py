"""End to end through `train.py`: a few steps of `vild_demo` that train, evaluate and write the
base / novel AP report, with the tests' tiny model on tiny digit scenes (the built-in demo data
takes minutes to generate, the demo's SpineNet minutes to build and trace on 2 busy cores)."""

import json
import os
import subprocess
import sys

import tensorflow as tf
import yaml

from projects.common.detection import evaluation_report
from projects.vild.tasks import tiny_vild_data

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class ViLDTrainPyTest(tf.test.TestCase):
  def test_vild_demo_trains_evaluates_and_reports_base_and_novel_ap(self):
    data = tiny_vild_data.tiny_vild_digit_scenes(os.path.join(self.get_temp_dir(), 'data'))
    model_dir = os.path.join(self.get_temp_dir(), 'run')
    tiny = {
      'task': tiny_vild_data.tiny_task_override(data),
      'trainer': {
        'train_steps': 2,
        'steps_per_loop': 1,
        'summary_interval': 1,
        'checkpoint_interval': 2,
        'validation_interval': 2,
        'validation_steps': 1,
      },
    }
    config_file = os.path.join(self.get_temp_dir(), 'tiny.yaml')
    with open(config_file, 'w') as f:
      yaml.safe_dump(tiny, f)
    result = subprocess.run(
      [
        sys.executable,
        os.path.join(REPO, 'train.py'),
        '--experiment=vild_demo',
        '--mode=train_and_eval',
        f'--model_dir={model_dir}',
        f'--config_file={config_file}',
        '--seed=0',
      ],
      capture_output=True,
      text=True,
      env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2'),
      timeout=600,
    )
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIn('final evaluation:', result.stdout)
    self.assertIn('box_AP_base=', result.stdout)
    self.assertEqual(tf.train.latest_checkpoint(model_dir).rsplit('-', 1)[-1], '2')
    with open(evaluation_report.report_path(model_dir)) as f:
      report = json.load(f)
    groups = report['open_vocabulary']['base_novel']['box']
    self.assertEqual((groups['base']['num_categories'], groups['novel']['num_categories']), (7, 3))


if __name__ == '__main__':
  tf.test.main()
