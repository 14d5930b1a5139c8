"""Copy-Paste experiments: every paper row has its YAML, which restates the factory's recipe."""

import os

import tensorflow as tf
from official.core import exp_factory

from projects.common import experiment_config
from projects.copy_paste.configs import copy_paste
from projects.spinenet.configs import spinenet

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
YAML_DIR = os.path.join(REPO, 'experiments', 'copy_paste')


class CopyPasteExperimentsTest(tf.test.TestCase):
  def test_every_paper_row_is_registered_with_its_yaml(self):
    ours = experiment_config.registered_experiments()
    for name, row in copy_paste.PAPER_ROWS.items():
      self.assertIn(name, ours)
      path = os.path.join(YAML_DIR, row.config_file)
      with open(path) as f:
        head = f.read().split('\ntask:', 1)[0]
      self.assertIn(f'--experiment={name} ', head, path)
      self.assertIn(copy_paste.BACKBONE_TABLE, head, path)
      self.assertIn(row.tf1_config, head, path)
      # The YAML restates the factory: loading it strictly changes nothing.
      config = exp_factory.get_exp_config(name)
      loaded = experiment_config.build_experiment_config(name, [path])
      self.assertEqual(loaded.as_dict(), config.as_dict(), path)
      self.assertEqual(config.task.model.input_size, [row.input_size, row.input_size, 3])

  def test_yamls_are_the_paper_rows(self):
    files = sorted(os.listdir(YAML_DIR))
    self.assertEqual(files, sorted(row.config_file for row in copy_paste.PAPER_ROWS.values()))

  def test_r50_is_the_papers_recipe(self):
    config = exp_factory.get_exp_config('maskrcnn_copypaste_r50_coco')
    train = config.task.train_data
    self.assertTrue(train.copy_paste.enabled)
    self.assertEqual(train.copy_paste.paste_source_input_path, '')
    self.assertEqual((train.parser.aug_scale_min, train.parser.aug_scale_max), (0.1, 2.0))
    self.assertEqual(train.global_batch_size, 256)
    self.assertTrue(config.task.model.norm_activation.use_sync_bn)
    self.assertEqual(config.task.losses.l2_weight_decay, 4e-5)
    self.assertEqual(config.task.init_checkpoint, None)
    schedule = config.trainer.optimizer_config.learning_rate.stepwise
    # [TF1] maskrcnn_resnet50_1024.yaml's learning_rate_steps.
    self.assertEqual(list(schedule.boundaries), [243000, 256500, 263250])
    self.assertEqual(config.trainer.train_steps, 270000)

  def test_cascade_row_adds_two_stages(self):
    config = exp_factory.get_exp_config('cascadercnn_copypaste_effb7_1280_coco')
    self.assertEqual(config.task.model.roi_sampler.cascade_iou_thresholds, [0.7, 0.8])
    self.assertTrue(config.task.model.detection_head.class_agnostic_bbox_pred)
    schedule = config.trainer.optimizer_config.learning_rate.stepwise
    self.assertEqual(list(schedule.boundaries), [162000, 171000, 175500])

  def test_plain_rows_have_no_cascade_stages(self):
    for name in copy_paste.PAPER_ROWS:
      if name.startswith('maskrcnn_'):
        model = exp_factory.get_exp_config(name).task.model
        self.assertIsNone(model.roi_sampler.cascade_iou_thresholds, name)

  def test_validation_reads_no_pastes(self):
    config = exp_factory.get_exp_config('maskrcnn_copypaste_r50_coco')
    self.assertFalse(config.task.validation_data.copy_paste.enabled)

  def test_demo_is_the_spinenet_demo_with_room_for_pasted_objects(self):
    demo = exp_factory.get_exp_config('maskrcnn_copypaste_demo')
    detector = exp_factory.get_exp_config(copy_paste.DEMO_DETECTOR_EXPERIMENT)
    self.assertEqual(
      demo.task.model.norm_activation.as_dict(), detector.task.model.norm_activation.as_dict()
    )
    self.assertEqual(
      demo.task.train_data.parser.max_num_instances,
      2 * detector.task.train_data.parser.max_num_instances,
    )
    self.assertEqual(
      demo.trainer.train_steps, copy_paste.DEMO_EPOCHS * spinenet.DEMO_STEPS_PER_EPOCH
    )


if __name__ == '__main__':
  tf.test.main()
