"""SpineNet experiments: every paper row has its YAML, and the settings that set its FLOPs."""

import inspect
import os
import re
import subprocess
import sys

import tensorflow as tf
from official.core import exp_factory

from projects import registry_imports  # noqa: F401
from projects.common import experiment_config
from projects.common.datasets import digit_scenes
from projects.spinenet.configs import spinenet

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# The demo without its built-in data: model statistics need none.
NO_BUILTIN_DATA = (
  "{task: {train_data: {builtin_dataset: ''}, validation_data: {builtin_dataset: ''}}}"
)


class SpineNetExperimentsTest(tf.test.TestCase):
  def test_every_paper_row_is_registered_with_its_yaml(self):
    ours = experiment_config.registered_experiments()
    for name, row in spinenet.PAPER_ROWS.items():
      self.assertIn(name, ours)
      path = os.path.join(REPO, 'experiments', 'spinenet', row.config_file)
      with open(path) as f:
        head = f.read().split('\ntask:', 1)[0]
      self.assertIn(f'--experiment={name} ', head, path)
      self.assertIn(row.table, head, path)
      config = exp_factory.get_exp_config(name)
      self.assertEqual(config.task.model.input_size, [row.input_size, row.input_size, 3])

  def test_yamls_are_the_paper_rows(self):
    files = sorted(os.listdir(os.path.join(REPO, 'experiments', 'spinenet')))
    self.assertEqual(files, sorted(row.config_file for row in spinenet.PAPER_ROWS.values()))

  def test_spinenet49s_has_the_papers_endpoints_and_head(self):
    model = exp_factory.get_exp_config('retinanet_spinenet49s_coco').task.model
    self.assertEqual(model.backbone.type, 'spinenet_scaled')
    self.assertEqual(model.backbone.spinenet_scaled.model_id, '49S')
    self.assertEqual(model.backbone.spinenet_scaled.endpoints_num_filters, 256)
    self.assertEqual((model.head.num_convs, model.head.num_filters), (4, 128))

  def test_spinenet190_has_the_wide_head(self):
    head = exp_factory.get_exp_config('retinanet_spinenet190_coco').task.model.head
    self.assertEqual((head.num_convs, head.num_filters), (7, 512))
    mask = exp_factory.get_exp_config('maskrcnn_spinenet190_coco').task.model
    for head in (mask.rpn_head, mask.detection_head, mask.mask_head):
      self.assertEqual((head.num_convs, head.num_filters), (7, 384))

  def test_demos_read_the_builtin_digit_scenes(self):
    defaults = inspect.signature(digit_scenes.build_digit_scenes).parameters
    most_digits_per_scene = defaults['digits_per_image'].default[1]
    for name in ('retinanet_spinenet_demo', 'maskrcnn_spinenet_demo'):
      task = exp_factory.get_exp_config(name).task
      self.assertEqual(task.train_data.builtin_dataset, 'digit_scenes')
      self.assertEqual(task.validation_data.builtin_dataset, 'digit_scenes')
      self.assertEqual(task.model.num_classes, 11)
      self.assertFalse(task.train_data.parser.aug_rand_hflip)
      # Room for every digit of a scene, so the parser drops none.
      for data in (task.train_data, task.validation_data):
        self.assertEqual(data.parser.max_num_instances, most_digits_per_scene)

  def test_train_py_prints_the_demo_model_stats(self):
    result = subprocess.run(
      [
        sys.executable,
        os.path.join(REPO, 'train.py'),
        '--experiment=retinanet_spinenet_demo',
        '--print_model_stats',
        f'--params_override={NO_BUILTIN_DATA}',
      ],
      capture_output=True,
      text=True,
      env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2'),
      timeout=900,
    )
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertRegex(result.stdout, r'parameters: [\d,]+ \(\d+\.\d\d M')
    self.assertRegex(result.stdout, r'GFLOPs per view: \d+\.\d\d')
    self.assertIn('backbone + decoder + head', result.stdout)
    self.assertIsNotNone(re.search(r'input shape: 128x128x3', result.stdout))


if __name__ == '__main__':
  tf.test.main()
