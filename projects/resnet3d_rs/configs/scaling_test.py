"""The 3D ResNet-RS scaling rule: architecture and recipe per size, compute growing along the rule."""

import itertools
import math

import tensorflow as tf
from absl.testing import parameterized
from official.core import task_factory
from official.vision.modeling.backbones import resnet_3d

from projects import registry_imports  # noqa: F401
from projects.common import model_stats
from projects.resnet3d_rs.configs import scaling


def hand_counted_macs(config) -> int:
  """Multiply-adds of Model Garden's R3D-RS on one eval view, layer by layer from the config."""
  backbone = config.task.model.backbone.resnet_3d_rs
  frames, height, _, channels = config.task.validation_data.feature_shape
  t = math.ceil(frames / backbone.stem_conv_temporal_stride)
  h = math.ceil(height / 2)
  # ResNet-D stem: (5x3x3, 32), (1x3x3, 32), (1x3x3, 64), then a 3x3 max-pool of stride 2.
  macs = t * h * h * (5 * 9 * channels * 32 + 9 * 32 * 32 + 9 * 32 * 64)
  t, h, c = math.ceil(t / backbone.stem_pool_temporal_stride), math.ceil(h / 2), 64
  for stage, (_, f, blocks) in enumerate(resnet_3d.RESNET_SPECS[backbone.model_id]):
    spec = backbone.block_specs[stage]
    for block in range(blocks):
      t_out = math.ceil(t / spec.temporal_strides) if block == 0 else t
      h_out = math.ceil(h / 2) if block == 0 and stage > 0 else h
      macs += t_out * h * h * spec.temporal_kernel_sizes[0] * c * f  # temporal conv
      macs += t_out * h_out * h_out * (9 * f * f + f * 4 * f)  # spatial 1x3x3, expand 1x1x1
      if c != 4 * f:
        macs += t_out * h_out * h_out * c * 4 * f  # projection shortcut
      macs += 2 * 4 * f * f  # squeeze-and-excitation, ratio 0.25
      if spec.use_self_gating and block == blocks - 1:
        macs += 4 * f * 4 * f  # self-gating, last block of the stage
      t, h, c = t_out, h_out, 4 * f
  return macs + c * config.task.validation_data.num_classes


class ScalingRuleTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.parameters(*scaling.DEPTHS)
  def test_backbone_has_the_paper_architecture(self, depth):
    backbone = scaling.resnet3d_rs_experiment(depth=depth).task.model.backbone
    self.assertEqual(backbone.type, 'resnet_3d_rs')
    rs = backbone.resnet_3d_rs
    self.assertEqual(rs.model_id, depth)
    self.assertEqual(rs.stem_type, 'v1')
    self.assertEqual(rs.stem_conv_temporal_kernel_size, 5)
    self.assertEqual(rs.se_ratio, 0.25)
    self.assertEqual(rs.stochastic_depth_drop_rate, scaling.stochastic_depth_rate(depth))
    self.assertTrue(all(spec.use_self_gating for spec in rs.block_specs))

  def test_stochastic_depth_grows_with_depth(self):
    rates = [scaling.stochastic_depth_rate(d) for d in scaling.DEPTHS]
    self.assertEqual(rates[0], 0.1)
    self.assertEqual(rates[-1], 0.2)
    self.assertEqual(rates, sorted(set(rates)))

  def test_recipe(self):
    config = scaling.resnet3d_rs_experiment('kinetics600', depth=101, num_frames=48)
    config.validate()
    task = config.task
    self.assertEqual(task.model.dropout_rate, 0.5)
    self.assertEqual(task.losses.label_smoothing, 0.1)
    self.assertEqual(task.losses.l2_weight_decay, 4e-5)
    self.assertEqual(task.model.norm_activation.norm_momentum, 0.0)
    self.assertEqual(task.train_data.feature_shape, (48, 224, 224, 3))
    self.assertEqual(task.validation_data.feature_shape, (48, 256, 256, 3))
    self.assertEqual(task.train_data.temporal_stride, 2)
    self.assertEqual(task.train_data.aug_min_area_ratio, 0.08)
    self.assertEqual(task.validation_data.num_test_clips * task.validation_data.num_test_crops, 30)
    self.assertEqual((task.train_data.num_classes, task.validation_data.num_classes), (600, 600))
    optimizer = config.trainer.optimizer_config
    self.assertEqual(optimizer.ema.average_decay, 0.9999)
    self.assertFalse(optimizer.ema.trainable_weights_only)
    self.assertEqual(optimizer.learning_rate.cosine.initial_learning_rate, 0.8)
    steps_per_epoch = 366016 // 1024
    self.assertEqual(config.trainer.train_steps, 350 * steps_per_epoch)
    self.assertEqual(optimizer.warmup.linear.warmup_steps, 5 * steps_per_epoch)
    self.assertEqual(config.runtime.mixed_precision_dtype, 'bfloat16')

  def test_learning_rate_scales_with_the_batch(self):
    config = scaling.resnet3d_rs_experiment(train_batch_size=256)
    self.assertAllClose(
      config.trainer.optimizer_config.learning_rate.cosine.initial_learning_rate, 0.2
    )
    self.assertEqual(config.task.train_data.global_batch_size, 256)

  @parameterized.named_parameters(
    ('depth', {'depth': 34}, 'depth must be one of'),
    ('frames', {'num_frames': 16}, 'num_frames must be one of'),
    ('crop', {'crop_size': 200}, 'crop_size must be a positive multiple of 32'),
  )
  def test_sizes_off_the_rule_are_errors(self, overrides, message):
    with self.assertRaisesRegex(ValueError, message):
      scaling.resnet3d_rs_experiment(**overrides)

  def test_compute_grows_along_every_axis_of_the_rule(self):
    crop_sizes = (160, 224, 256)
    grid = list(itertools.product(scaling.DEPTHS, scaling.NUM_FRAMES, crop_sizes))
    macs = {
      size: hand_counted_macs(scaling.resnet3d_rs_experiment('kinetics400', *size)) for size in grid
    }
    for axis, values in enumerate((scaling.DEPTHS, scaling.NUM_FRAMES, crop_sizes)):
      for size in grid:
        if size[axis] == values[-1]:
          continue
        bigger = list(size)
        bigger[axis] = values[values.index(size[axis]) + 1]
        self.assertGreater(macs[tuple(bigger)], macs[size], f'{size} -> {tuple(bigger)}')
    # Convolutions dominate: compute is nearly linear in the number of frames.
    self.assertAllClose(macs[(50, 48, 224)] / macs[(50, 32, 224)], 1.5, rtol=1e-3)

  def test_hand_count_matches_the_built_r3d_rs50(self):
    config = scaling.resnet3d_rs_experiment('kinetics400', depth=50)
    config.task.train_data.feature_shape = (4, 32, 32, 3)
    config.task.validation_data.feature_shape = (4, 32, 32, 3)
    model = task_factory.get_task(config.task).build_model()
    self.assertEqual(model({'image': tf.zeros([1, 4, 32, 32, 3])}).shape, (1, 400))
    stats = model_stats.keras_model_stats(model, (4, 32, 32, 3))
    self.assertEqual(stats.macs_per_view, hand_counted_macs(config))


if __name__ == '__main__':
  tf.test.main()
