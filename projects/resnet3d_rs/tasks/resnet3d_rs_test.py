"""Fine-tuning an RS experiment from a CVRL pretraining run of the same backbone."""

import os

import numpy as np
import tensorflow as tf
from official.core import exp_factory, task_factory, train_lib

from projects import registry_imports  # noqa: F401  (registers the experiments)
from projects.common.testing import tiny_data


def _tiny(name: str, info, **task_overrides):
  """Experiment `name` on `info`'s tiny data at batch 2, one training step."""
  config = exp_factory.get_exp_config(name)
  data = {'global_batch_size': 2, 'shuffle_buffer_size': 8}
  config.override(
    {
      'task': {
        'train_data': {
          'input_path': info.train_pattern,
          'num_examples': info.num_train,
          **data,
        },
        'validation_data': {
          'input_path': info.validation_pattern,
          'num_examples': info.num_validation,
          **data,
        },
        **task_overrides,
      },
      'trainer': {'train_steps': 1, 'steps_per_loop': 1, 'checkpoint_interval': 1},
    },
    is_strict=True,
  )
  return config


class FineTuneFromCVRLTest(tf.test.TestCase):
  def setUp(self):
    super().setUp()
    self.info = tiny_data.tiny_moving_mnist(os.path.join(self.get_temp_dir(), 'data'))
    self.pretrain_dir = os.path.join(self.get_temp_dir(), 'cvrl')
    pretrain = _tiny('resnet3d_rs_cvrl_demo', self.info)
    task = task_factory.get_task(pretrain.task, logging_dir=self.pretrain_dir)
    train_lib.run_experiment(
      distribution_strategy=tf.distribute.get_strategy(),
      task=task,
      mode='train',
      params=pretrain,
      model_dir=self.pretrain_dir,
      run_post_eval=False,
    )
    # The pretrained backbone as the run saved it, read back through the pretraining model.
    self.pretrain_model = task.build_model()
    checkpoint = tf.train.Checkpoint(model=self.pretrain_model)
    checkpoint.read(tf.train.latest_checkpoint(self.pretrain_dir)).expect_partial()

  def test_init_checkpoint_restores_the_pretrained_backbone(self):
    config = _tiny(
      'resnet3d_rs_demo',
      self.info,
      init_checkpoint=self.pretrain_dir,
      init_checkpoint_modules='backbone',
    )
    task = task_factory.get_task(config.task)
    model = task.build_model()
    random_init = [v.numpy() for v in model.backbone.variables]
    task.initialize(model)

    pretrained = self.pretrain_model.backbone.variables
    self.assertLen(model.backbone.variables, len(pretrained))
    for expected, variable in zip(pretrained, model.backbone.variables, strict=True):
      self.assertAllEqual(expected.numpy(), variable.numpy(), msg=variable.name)
    changed = [
      not np.array_equal(a, v.numpy()) for a, v in zip(random_init, pretrained, strict=True)
    ]
    self.assertGreater(sum(changed), len(changed) // 2)

  def test_a_different_backbone_fails_to_restore(self):
    config = _tiny(
      'resnet3d_rs_demo',
      self.info,
      init_checkpoint=self.pretrain_dir,
      init_checkpoint_modules='backbone',
      model={'backbone': {'slim_resnet_3d_rs': {'blocks_per_stage': [2, 1, 1, 1]}}},
    )
    task = task_factory.get_task(config.task)
    with self.assertRaisesRegex(ValueError, 'incompatible tensor with shape'):
      task.initialize(task.build_model())


if __name__ == '__main__':
  tf.test.main()
