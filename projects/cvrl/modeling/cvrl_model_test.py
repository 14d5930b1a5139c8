"""CVRL networks: shapes, float32 heads under mixed precision, frozen backbone, config round trip."""

import numpy as np
import tensorflow as tf
import tf_keras
from absl.testing import parameterized
from official.vision.configs import common
from official.vision.modeling import backbones

from projects.common.configs import backbones_3d
from projects.common.modeling import slim_r3d  # noqa: F401  (registers the 'slim_r3d' backbone)
from projects.cvrl.configs import cvrl as exp_cfg
from projects.cvrl.modeling import cvrl_model

CLIP_SHAPE = (4, 32, 32, 3)


def _make_test_backbone(input_specs: tf_keras.layers.InputSpec) -> tf_keras.Model:
  return backbones.factory.build_backbone(
    input_specs=input_specs,
    backbone_config=backbones_3d.Backbone3D(
      type='slim_r3d',
      slim_r3d=backbones_3d.SlimR3D(depth=10, width_multiplier=0.125, stem_pool=False),
    ),
    norm_activation_config=common.NormActivation(),
  )


def _make_test_model(kind: str, **overrides) -> tf_keras.Model:
  input_specs = tf_keras.layers.InputSpec(shape=[None, *CLIP_SHAPE])
  backbone = _make_test_backbone(input_specs)
  if kind == 'pretrain':
    head = cvrl_model.ProjectionHead(**{'hidden_dim': 32, 'output_dim': 16, **overrides})
    return cvrl_model.CVRLPretrainModel(backbone, head, input_specs)
  return cvrl_model.CVRLClassifier(backbone, num_classes=5, input_specs=input_specs, **overrides)


class CVRLModelTest(tf.test.TestCase, parameterized.TestCase):
  def tearDown(self):
    tf_keras.mixed_precision.set_global_policy('float32')
    super().tearDown()

  def test_r3d50_matches_the_released_size(self):
    # The release's README lists CVRL's R3D-50 at 31.7M parameters.
    backbone = backbones.factory.build_backbone(
      input_specs=tf_keras.layers.InputSpec(shape=[None, 16, 224, 224, 3]),
      backbone_config=exp_cfg.cvrl_r3d(50),
      norm_activation_config=exp_cfg.cvrl_norm_activation(),
    )
    self.assertEqual(round(backbone.count_params() / 1e5) / 10, 31.7)
    self.assertEqual(backbone.output_specs['5'].as_list(), [None, 8, 7, 7, 2048])

  @parameterized.product(policy=['float32', 'mixed_bfloat16'], num_hidden_layers=[0, 2])
  def test_pretrain_outputs(self, policy, num_hidden_layers):
    tf_keras.mixed_precision.set_global_policy(policy)
    model = _make_test_model('pretrain', num_hidden_layers=num_hidden_layers)
    outputs = model(tf.random.uniform([3, *CLIP_SHAPE]), training=True)
    channels = model.backbone.output_specs['5'][-1]
    self.assertEqual(outputs['features'].shape.as_list(), [3, channels])
    self.assertEqual(outputs['embeddings'].shape.as_list(), [3, 16])
    self.assertEqual(outputs['features'].dtype, tf.float32)
    self.assertEqual(outputs['embeddings'].dtype, tf.float32)
    self.assertAllClose(tf.norm(outputs['embeddings'], axis=1), [1.0, 1.0, 1.0], atol=1e-5)
    self.assertLen(model.projection_head.trainable_variables, 3 * num_hidden_layers + 2)
    self.assertEqual(set(model.checkpoint_items), {'backbone', 'projection_head'})
    self.assertIs(model.checkpoint_items['backbone'], model.backbone)

  def test_projection_head_config_round_trip(self):
    head = cvrl_model.ProjectionHead(
      num_hidden_layers=2, hidden_dim=8, kernel_regularizer=tf_keras.regularizers.l2(1e-4)
    )
    rebuilt = cvrl_model.ProjectionHead.from_config(head.get_config())
    self.assertEqual(rebuilt.get_config(), head.get_config())

  def test_frozen_classifier_trains_only_its_head_and_keeps_batch_norm_statistics(self):
    model = _make_test_model('classifier', freeze_backbone=True)
    self.assertFalse(model.backbone.trainable)
    self.assertEqual(
      [v.name for v in model.trainable_variables],
      [v.name for v in model.classifier.trainable_variables],
    )
    before = [v.numpy() for v in model.backbone.variables]
    model({'image': tf.random.uniform([4, *CLIP_SHAPE])}, training=True)
    for old, new in zip(before, model.backbone.variables, strict=True):
      self.assertAllEqual(old, new.numpy(), msg=new.name)

  def test_finetuned_classifier_updates_batch_norm_statistics(self):
    model = _make_test_model('classifier', freeze_backbone=False, dropout_rate=0.5)
    self.assertGreater(len(model.trainable_variables), len(model.classifier.trainable_variables))
    moving_means = [v for v in model.backbone.variables if 'moving_mean' in v.name]
    before = [v.numpy() for v in moving_means]
    model({'image': tf.random.uniform([4, *CLIP_SHAPE])}, training=True)
    self.assertTrue(
      any(not np.array_equal(old, v.numpy()) for old, v in zip(before, moving_means, strict=True))
    )

  @parameterized.parameters(True, False)
  def test_classifier_logits(self, normalize_features):
    tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
    model = _make_test_model('classifier', normalize_features=normalize_features)
    logits = model({'image': tf.random.uniform([2, *CLIP_SHAPE])}, training=False)
    self.assertEqual(logits.shape.as_list(), [2, 5])
    self.assertEqual(logits.dtype, tf.float32)


if __name__ == '__main__':
  tf.test.main()
