"""SlimR3D: endpoint shapes over depths and widths, config round trip, registry build."""

import tensorflow as tf
import tf_keras
from absl.testing import parameterized
from official.vision.configs import common
from official.vision.modeling.backbones import factory

from projects.common.configs import backbones_3d
from projects.common.modeling import slim_r3d


class SlimR3DTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.product(depth=[10, 18, 34], width_multiplier=[0.125, 0.5])
  def test_endpoint_shapes(self, depth, width_multiplier):
    model = slim_r3d.SlimR3D(
      depth=depth,
      width_multiplier=width_multiplier,
      input_specs=tf_keras.layers.InputSpec(shape=[None, 8, 32, 32, 3]),
    )
    endpoints = model(tf.zeros([1, 8, 32, 32, 3]))
    widths = [max(8, round(c * width_multiplier)) for c in slim_r3d.BASE_FILTERS]
    # Stem and pool halve space twice; stages 3-5 halve space, stages 4-5 halve time.
    expected = {'2': [1, 8, 8, 8], '3': [1, 8, 4, 4], '4': [1, 4, 2, 2], '5': [1, 2, 1, 1]}
    for (name, shape), channels in zip(sorted(expected.items()), widths, strict=True):
      self.assertEqual(endpoints[name].shape.as_list(), shape + [channels], name)
      self.assertEqual(model.output_specs[name].as_list(), [None] + shape[1:] + [channels])

  def test_deeper_is_bigger(self):
    sizes = [slim_r3d.SlimR3D(depth=d, width_multiplier=0.25).count_params() for d in (10, 18, 34)]
    self.assertEqual(sizes, sorted(sizes))

  def test_config_round_trip(self):
    model = slim_r3d.SlimR3D(depth=10, width_multiplier=0.125, temporal_strides=(1, 2, 2, 1))
    clone = slim_r3d.SlimR3D.from_config(model.get_config())
    self.assertEqual(model.get_config(), clone.get_config())
    self.assertEqual(model.count_params(), clone.count_params())

  def test_registered_builder(self):
    config = backbones_3d.Backbone3D(
      type='slim_r3d', slim_r3d=backbones_3d.SlimR3D(depth=10, width_multiplier=0.125)
    )
    model = factory.build_backbone(
      input_specs=tf_keras.layers.InputSpec(shape=[None, 4, 32, 32, 3]),
      backbone_config=config,
      norm_activation_config=common.NormActivation(),
    )
    self.assertIsInstance(model, slim_r3d.SlimR3D)

  def test_bad_depth_is_named(self):
    with self.assertRaisesRegex(ValueError, 'depth must be one of .* got 26'):
      slim_r3d.SlimR3D(depth=26)


if __name__ == '__main__':
  tf.test.main()
