"""`spinenet_scaled`: SCALING_MAP's values unless the config overrides them, on tiny inputs."""

import tensorflow as tf
import tf_keras
from official.vision.configs import common
from official.vision.modeling.backbones import factory

from projects.spinenet.configs import detection
from projects.spinenet.modeling import spinenet_scaled


def _backbone_config(**fields) -> detection.Backbone:
  return detection.Backbone(
    type='spinenet_scaled', spinenet_scaled=detection.SpineNetScaled(**fields)
  )


class SpineNetScaledTest(tf.test.TestCase):
  def test_unset_fields_keep_the_model_ids_scaling(self):
    params = spinenet_scaled.scaling(detection.SpineNetScaled(model_id='49S'))
    self.assertEqual(
      params,
      {
        'endpoints_num_filters': 128,
        'filter_size_scale': 0.65,
        'resample_alpha': 0.5,
        'block_repeats': 1,
      },
    )

  def test_set_fields_replace_the_model_ids_scaling(self):
    params = spinenet_scaled.scaling(
      detection.SpineNetScaled(model_id='49S', endpoints_num_filters=256, block_repeats=2)
    )
    self.assertEqual(params['endpoints_num_filters'], 256)
    self.assertEqual(params['block_repeats'], 2)
    self.assertEqual(params['filter_size_scale'], 0.65)

  def test_unknown_model_id_names_the_choices(self):
    with self.assertRaisesRegex(ValueError, r"model_id='50' is not a SpineNet size.*'49S'"):
      spinenet_scaled.scaling(detection.SpineNetScaled(model_id='50'))

  def test_factory_builds_the_overridden_endpoints(self):
    config = _backbone_config(
      model_id='49', endpoints_num_filters=16, filter_size_scale=0.125, min_level=3, max_level=5
    )
    backbone = factory.build_backbone(
      input_specs=tf_keras.layers.InputSpec(shape=[None, 64, 64, 3]),
      backbone_config=config,
      norm_activation_config=common.NormActivation(activation='swish'),
    )
    outputs = backbone(tf.zeros([1, 64, 64, 3]))
    self.assertEqual(sorted(outputs), ['3', '4', '5'])
    self.assertEqual(outputs['3'].shape, (1, 8, 8, 16))
    self.assertEqual(outputs['5'].shape, (1, 2, 2, 16))
    rebuilt = type(backbone).from_config(backbone.get_config())
    self.assertEqual(rebuilt.get_config()['endpoints_num_filters'], 16)


if __name__ == '__main__':
  tf.test.main()
