"""Slim 3D ResNet-RS backbone: endpoint shapes, RS blocks, config round trip, factory build."""

import tensorflow as tf
import tf_keras
from absl.testing import parameterized
from official.vision.configs import common
from official.vision.modeling.backbones import factory
from official.vision.modeling.layers import nn_blocks_3d

from projects.resnet3d_rs.configs import backbones
from projects.resnet3d_rs.modeling import slim_resnet_3d_rs


def _make_test_model(**overrides) -> slim_resnet_3d_rs.SlimResNet3DRS:
  params = {'input_specs': tf_keras.layers.InputSpec(shape=[None, 4, 32, 32, 3])}
  params.update(overrides)
  return slim_resnet_3d_rs.SlimResNet3DRS(**params)


class SlimResNet3DRSTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.product(
    width_multiplier=(0.125, 0.25),
    temporal_strides=((1, 1, 1, 1), (1, 1, 2, 2)),
    stem_pool=(False, True),
  )
  def test_endpoint_shapes(self, width_multiplier, temporal_strides, stem_pool):
    model = _make_test_model(
      width_multiplier=width_multiplier, temporal_strides=temporal_strides, stem_pool=stem_pool
    )
    endpoints = model(tf.zeros([1, 4, 32, 32, 3]))
    size, frames = (8 if stem_pool else 16), 4
    for stage, name in enumerate(('2', '3', '4', '5')):
      frames //= temporal_strides[stage]
      channels = 4 * max(8, round(slim_resnet_3d_rs.BASE_FILTERS[stage] * width_multiplier))
      self.assertEqual(endpoints[name].shape, (1, frames, size, size, channels), name)
      self.assertEqual(model.output_specs[name].as_list(), [None, frames, size, size, channels])
      size //= 2

  def test_blocks_carry_the_rs_changes(self):
    model = _make_test_model(blocks_per_stage=(2, 1, 1, 1), stochastic_depth_drop_rate=0.2)
    blocks = [layer for layer in model.layers if isinstance(layer, nn_blocks_3d.BottleneckBlock3D)]
    self.assertLen(blocks, 5)
    self.assertTrue(all(block.get_config()['se_ratio'] == 0.25 for block in blocks))
    self.assertEqual(
      [b.get_config()['use_self_gating'] for b in blocks], [False, True, True, True, True]
    )
    rates = [b.get_config()['stochastic_depth_drop_rate'] for b in blocks]
    self.assertAllClose(rates, [0.08, 0.08, 0.12, 0.16, 0.2])
    # ResNet-D stem: three convolutions before the first block, only the first one temporal.
    stem = [layer for layer in model.layers if isinstance(layer, tf_keras.layers.Conv3D)]
    self.assertEqual([conv.kernel_size for conv in stem], [(5, 3, 3), (1, 3, 3), (1, 3, 3)])

  def test_config_round_trip(self):
    model = _make_test_model(width_multiplier=0.25, se_ratio=0.5)
    rebuilt = slim_resnet_3d_rs.SlimResNet3DRS.from_config(model.get_config())
    self.assertEqual(rebuilt.get_config(), model.get_config())
    self.assertEqual(rebuilt.count_params(), model.count_params())

  def test_one_entry_per_stage_is_required(self):
    with self.assertRaisesRegex(ValueError, 'one temporal_strides entry per stage'):
      _make_test_model(temporal_strides=(1, 2))

  def test_factory_builds_from_the_backbone_config(self):
    config = backbones.Backbone3D(
      type='slim_resnet_3d_rs', slim_resnet_3d_rs=backbones.SlimResNet3DRS(width_multiplier=0.25)
    )
    model = factory.build_backbone(
      input_specs=tf_keras.layers.InputSpec(shape=[None, 4, 32, 32, 3]),
      backbone_config=config,
      norm_activation_config=common.NormActivation(activation='swish', norm_momentum=0.0),
    )
    self.assertIsInstance(model, slim_resnet_3d_rs.SlimResNet3DRS)
    self.assertEqual(model.get_config()['activation'], 'swish')
    self.assertEqual(model.get_config()['width_multiplier'], 0.25)


if __name__ == '__main__':
  tf.test.main()
