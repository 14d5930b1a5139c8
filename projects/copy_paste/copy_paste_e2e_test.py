"""End to end through `train.py`: a few steps of the Copy-Paste Mask R-CNN demo on tiny digit
scenes, with the Copy-Paste input."""

import json
import os
import subprocess
import sys

import tensorflow as tf

from projects.common.datasets import digit_scenes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_STEPS = 2


class CopyPasteEndToEndTest(tf.test.TestCase):
  def test_demo_trains_a_few_steps(self):
    info = digit_scenes.build_digit_scenes(
      cache_dir=os.path.join(self.get_temp_dir(), 'data'),
      num_train=8,
      num_validation=2,
      image_size=128,
      num_shards=1,
    )
    model_dir = os.path.join(self.get_temp_dir(), 'model')
    overrides = {
      'task': {
        'train_data': {
          'input_path': info.train_pattern,
          'global_batch_size': 2,
          'shuffle_buffer_size': 4,
          'copy_paste': {'min_visible_area': 10},
        },
      },
      'trainer': {
        'train_steps': NUM_STEPS,
        'steps_per_loop': NUM_STEPS,
        'summary_interval': NUM_STEPS,
        'checkpoint_interval': NUM_STEPS,
      },
    }
    result = subprocess.run(
      [
        sys.executable,
        os.path.join(REPO, 'train.py'),
        '--experiment=maskrcnn_copypaste_demo',
        '--mode=train',
        f'--model_dir={model_dir}',
        # A JSON mapping is valid YAML, which --params_override accepts.
        f'--params_override={json.dumps(overrides)}',
      ],
      capture_output=True,
      text=True,
      env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2'),
      timeout=900,
    )
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertEqual(tf.train.latest_checkpoint(model_dir).rsplit('-', 1)[-1], str(NUM_STEPS))
    self.assertIn("'mask_loss'", result.stdout + result.stderr)


if __name__ == '__main__':
  tf.test.main()
