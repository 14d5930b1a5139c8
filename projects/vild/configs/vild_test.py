"""ViLD experiments: every one builds and validates, every LVIS row has its YAML, and the demo is
the SpineNet demo detector with three digits held out."""

import os

import tensorflow as tf
from official.core import exp_factory

from projects import registry_imports  # noqa: F401
from projects.common import experiment_config
from projects.spinenet.configs import spinenet
from projects.vild.configs import vild

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
YAML_DIR = os.path.join(REPO, 'experiments', 'vild')


def _vild_experiments() -> list[str]:
  return [n for n in experiment_config.registered_experiments() if n.startswith('vild_')]


class ViLDExperimentsTest(tf.test.TestCase):
  def test_every_experiment_builds_and_validates(self):
    names = _vild_experiments()
    self.assertContainsSubset([*vild.PAPER_ROWS, 'vild_demo'], names)
    for name in names:
      with self.subTest(name):
        config = exp_factory.get_exp_config(name)
        experiment_config.validate_all(config)
        model = config.task.model
        self.assertTrue(model.detection_head.class_agnostic_bbox_pred)
        self.assertTrue(model.mask_head.class_agnostic)

  def test_every_lvis_row_has_its_yaml(self):
    self.assertEqual(
      sorted(os.listdir(YAML_DIR)), sorted(row.config_file for row in vild.PAPER_ROWS.values())
    )
    for name, row in vild.PAPER_ROWS.items():
      with self.subTest(name):
        path = os.path.join(YAML_DIR, row.config_file)
        with open(path) as f:
          head = f.read().split('\ntask:', 1)[0]
        self.assertIn(f'--experiment={name} ', head)
        self.assertIn(row.row, head)
        factory_default = exp_factory.get_exp_config(name)
        config = experiment_config.build_experiment_config(name, [path])
        # The YAML restates the factory's recipe: applying it changes nothing.
        self.assertEqual(config.as_dict(), factory_default.as_dict())

  def test_lvis_rows_hold_the_release_recipe(self):
    for name, depth, weight, ensemble in (
      ('vild_text_r50_lvis', 50, 0.0, False),
      ('vild_r50_lvis', 50, 0.5, False),
      ('vild_ensemble_r50_lvis', 50, 0.5, True),
      ('vild_r152_lvis', 152, 1.0, False),
      ('vild_ensemble_r152_lvis', 152, 2.0, True),
    ):
      with self.subTest(name):
        config = exp_factory.get_exp_config(name)
        task = config.task
        self.assertEqual(task.model.backbone.resnet.model_id, depth)
        self.assertEqual(task.losses.image_distillation_weight, weight)
        self.assertEqual(task.model.vild.ensemble, ensemble)
        self.assertEqual(task.model.vild.novel_lvis_frequencies, 'r')
        self.assertEqual(task.model.num_classes, vild.LVIS_NUM_CATEGORIES + 1)
        self.assertEqual(task.model.input_size, [1024, 1024, 3])
        self.assertEqual(
          (task.train_data.parser.aug_scale_min, task.train_data.parser.aug_scale_max), (0.1, 2.0)
        )
        self.assertEqual(config.trainer.train_steps, 180000)
        self.assertEqual(task.train_data.global_batch_size, 256)

  def test_demo_is_the_spinenet_demo_with_digits_held_out(self):
    demo = exp_factory.get_exp_config('vild_demo')
    spinenet_demo = exp_factory.get_exp_config('maskrcnn_spinenet_demo')
    self.assertEqual(
      demo.task.model.backbone.as_dict(), spinenet_demo.task.model.backbone.as_dict()
    )
    self.assertEqual(demo.task.model.input_size, spinenet_demo.task.model.input_size)
    self.assertEqual(demo.trainer.train_steps, vild.DEMO_EPOCHS * spinenet.DEMO_STEPS_PER_EPOCH)
    self.assertEqual(demo.task.model.vild.novel_category_names, ['two', 'five', 'eight'])
    self.assertEqual(demo.task.train_data.builtin_dataset, 'vild_digit_scenes')
    self.assertEqual(demo.task.validation_data.builtin_dataset, 'vild_digit_scenes')
    self.assertGreater(demo.task.losses.image_distillation_weight, 0)

  def test_bad_settings_are_named(self):
    config = exp_factory.get_exp_config('vild_demo')
    config.task.model.vild.ensemble_lambda = 1.5
    with self.assertRaisesRegex(ValueError, r'task\.model\.vild: .*ensemble_lambda'):
      experiment_config.validate_all(config)
    config = exp_factory.get_exp_config('vild_demo')
    config.task.losses.class_weights = [1.0] * 11
    with self.assertRaisesRegex(ValueError, r'task\.losses: ViLD-text replaces'):
      experiment_config.validate_all(config)


if __name__ == '__main__':
  tf.test.main()
