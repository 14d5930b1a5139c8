"""The stem convolution computes in float32 under the bfloat16 policy, for every backbone we build."""

import dataclasses

import numpy as np
import tensorflow as tf
import tf_keras
from absl.testing import parameterized
from official.core import exp_factory, task_factory
from official.vision.configs import backbones_3d, common
from official.vision.modeling.backbones import factory

from projects import registry_imports  # noqa: F401  (registers every backbone and experiment)
from projects.common import experiment_config
from projects.common.configs import runtime
from projects.common.modeling import mixed_precision
from projects.resnet3d_rs.configs import backbones

# Every backbone type a config can select: the fields of the widest one-of.
BACKBONE_TYPES = [f.name for f in dataclasses.fields(backbones.Backbone3D) if f.name != 'type']
TINY_CLIP = (4, 32, 32, 3)

# The case that fails (non-finite) in TensorFlow 2.20's oneDNN bfloat16 Conv3DBackpropFilterV2 on a
# 2-core Xeon with amx_bf16 + avx512_bf16: an R3D-50 stem (5x7x7 kernel, 64 filters, strides
# 2x2x2) on 8 clips of 8x112^2; float32, temporal stride 1 and 56^2 inputs were finite there.
FAILING_INPUT = (8, 8, 112, 112, 3)
FAILING_KERNEL = (5, 7, 7)
FAILING_STRIDES = (2, 2, 2)


def _conv3ds(model):
  return [
    layer
    for layer in model._flatten_layers(include_self=False, recursive=True)  # noqa: SLF001
    if isinstance(layer, tf_keras.layers.Conv3D)
  ]


def _filter_gradient_dtypes(model, clip_shape) -> dict[tuple[int, ...], list[str]]:
  """Kernel shape -> dtypes of the Conv3DBackpropFilterV2 ops in a traced training gradient."""

  @tf.function
  def gradients(clips):
    with tf.GradientTape() as tape:
      outputs = tf.nest.flatten(model(clips, training=True))
      loss = tf.add_n([tf.reduce_sum(tf.cast(o, tf.float32)) for o in outputs])
    return tape.gradient(loss, model.trainable_variables)

  graph = gradients.get_concrete_function(tf.TensorSpec([1, *clip_shape], tf.float32)).graph
  dtypes = {}
  for op in graph.get_operations():
    if op.type == 'Conv3DBackpropFilterV2':
      kernel_shape = tuple(op.outputs[0].shape.as_list())
      dtypes.setdefault(kernel_shape, []).append(op.get_attr('T').name)
  return dtypes


class MixedPrecisionTest(tf.test.TestCase, parameterized.TestCase):
  def setUp(self):
    super().setUp()
    tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')

  def tearDown(self):
    tf_keras.mixed_precision.set_global_policy('float32')
    super().tearDown()

  @parameterized.named_parameters((name, name) for name in BACKBONE_TYPES)
  def test_every_backbone_type_computes_its_input_convolution_in_float32(self, backbone_type):
    backbone = factory.build_backbone(
      input_specs=tf_keras.layers.InputSpec(shape=[None, *TINY_CLIP]),
      backbone_config=backbones.Backbone3D(type=backbone_type),
      norm_activation_config=common.NormActivation(),
    )
    stem = mixed_precision.compute_stem_in_float32(backbone)
    self.assertIsNotNone(stem, f'{backbone_type}: no Conv3D found')
    # The convolution changed is the one that reads the clip, not merely the first one built.
    self.assertIs(stem.input, backbone.inputs[0], backbone_type)
    self.assertEqual(stem.compute_dtype, 'float32')
    self.assertEqual(stem(tf.zeros([1, *TINY_CLIP], tf.bfloat16)).dtype, tf.float32)
    others = {layer.compute_dtype for layer in _conv3ds(backbone) if layer is not stem}
    self.assertEqual(others, {'bfloat16'}, backbone_type)

  def test_the_stem_filter_gradient_is_float32_and_every_other_bfloat16(self):
    backbone = factory.build_backbone(
      input_specs=tf_keras.layers.InputSpec(shape=[None, *TINY_CLIP]),
      backbone_config=backbones.Backbone3D(type='slim_r3d'),
      norm_activation_config=common.NormActivation(),
    )
    stem = mixed_precision.compute_stem_in_float32(backbone)
    dtypes = _filter_gradient_dtypes(backbone, TINY_CLIP)
    self.assertEqual(dtypes.pop(tuple(stem.kernel.shape)), ['float32'])
    self.assertEqual({d for kernel_dtypes in dtypes.values() for d in kernel_dtypes}, {'bfloat16'})

  def test_every_registered_video_experiment_model_is_covered(self):
    # Building every paper-size model takes minutes here, so each experiment must share its task
    # (hence model wrapper) with a demo whose model is checked below, and its backbone type must
    # be one of BACKBONE_TYPES, each checked above.
    names = [
      name
      for name in experiment_config.registered_experiments()
      if isinstance(exp_factory.get_exp_config(name).task.model.backbone, backbones_3d.Backbone3D)
    ]
    demo_tasks = set()
    for name in names:
      if not name.endswith('_demo'):
        continue
      config = exp_factory.get_exp_config(name)
      task = task_factory.get_task(config.task)
      model = task.build_model()
      stem = mixed_precision.compute_stem_in_float32(model)
      self.assertIsNotNone(stem, name)
      self.assertEqual(stem.kernel.shape[-2], config.task.train_data.feature_shape[-1], name)
      if type(task) in demo_tasks:
        continue  # Its model wrapper's gradient is traced below once per task.
      demo_tasks.add(type(task))
      dtypes = _filter_gradient_dtypes(model, config.task.train_data.feature_shape)
      self.assertEqual(dtypes.pop(tuple(stem.kernel.shape)), ['float32'], name)
      self.assertNotIn('float32', {d for v in dtypes.values() for d in v}, name)
    for name in names:
      config = exp_factory.get_exp_config(name)
      with self.subTest(name):
        self.assertIn(task_factory.get_task(config.task).__class__, demo_tasks)
        self.assertIn(config.task.model.backbone.type, BACKBONE_TYPES)

  def test_float32_policy_is_left_alone(self):
    tf_keras.mixed_precision.set_global_policy('float32')
    backbone = factory.build_backbone(
      input_specs=tf_keras.layers.InputSpec(shape=[None, *TINY_CLIP]),
      backbone_config=backbones.Backbone3D(type='slim_r3d'),
      norm_activation_config=common.NormActivation(),
    )
    self.assertIsNone(mixed_precision.compute_stem_in_float32(backbone))

  def test_failing_onednn_case_trains_finite_with_native_bfloat16(self):
    if not runtime.native_bfloat16_flags():
      self.skipTest(
        'needs a CPU with native bfloat16 (avx512_bf16 or amx_bf16), where oneDNN runs the '
        'bfloat16 Conv3DBackpropFilterV2 that fails; this CPU has neither'
      )
    clips = tf_keras.Input(FAILING_INPUT[1:])
    features = tf_keras.layers.Conv3D(64, FAILING_KERNEL, FAILING_STRIDES, padding='same')(clips)
    stem_model = tf_keras.Model(clips, features)
    mixed_precision.compute_stem_in_float32(stem_model)
    clip_batch = tf.random.stateless_uniform(FAILING_INPUT, seed=(0, 0))
    with tf.GradientTape() as tape:
      outputs = stem_model(clip_batch, training=True)
      loss = tf.reduce_sum(tf.cast(outputs, tf.float32) * 0.01)
    gradient = tape.gradient(loss, stem_model.trainable_variables[0])
    self.assertTrue(np.isfinite(gradient.numpy()).all())


if __name__ == '__main__':
  tf.test.main()
