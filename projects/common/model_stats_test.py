"""Model statistics: parameter and FLOP counts against direct counts, and train.py's stats flag."""

import os
import re
import subprocess
import sys

import numpy as np
import tensorflow as tf
import tf_keras
from official.core import config_definitions as cfg
from official.core import exp_factory, task_factory
from tensorflow.python.framework import convert_to_constants

from projects import registry_imports  # noqa: F401
from projects.common import model_stats

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# video_classification_demo at 1/8 width, without its built-in data (stats need no data).
TINY_DEMO_OVERRIDE = (
  '{task: {model: {backbone: {slim_r3d: {width_multiplier: 0.125}}}, '
  "train_data: {builtin_dataset: ''}, validation_data: {builtin_dataset: ''}}}"
)


def _conv_dense_model() -> tf_keras.Model:
  inputs = tf_keras.Input([4, 8, 8, 3])
  x = tf_keras.layers.Conv3D(6, 3, padding='same', use_bias=False)(inputs)
  x = tf_keras.layers.BatchNormalization()(x)
  x = tf_keras.layers.GlobalAveragePooling3D()(x)
  return tf_keras.Model(inputs, tf_keras.layers.Dense(5)(x))


def _tiny_demo_config():
  config = exp_factory.get_exp_config('video_classification_demo')
  config.task.model.backbone.slim_r3d.width_multiplier = 0.125
  return config


class ModelStatsTest(tf.test.TestCase):
  def test_parameters_match_the_weights(self):
    model = _conv_dense_model()
    parameters, trainable = model_stats.count_parameters(model)
    self.assertEqual(parameters, sum(int(np.prod(w.shape)) for w in model.weights))
    # Conv kernel, BN gamma/beta (+ 2 statistics, not trainable), dense kernel and bias.
    self.assertEqual(trainable, 3 * 27 * 6 + 2 * 6 + 6 * 5 + 5)
    self.assertEqual(parameters - trainable, 2 * 6)

  def test_macs_are_conv_and_dense_multiply_adds(self):
    stats = model_stats.keras_model_stats(_conv_dense_model(), (4, 8, 8, 3))
    conv_macs = 4 * 8 * 8 * 6 * (3 * 3 * 3 * 3)
    self.assertEqual(stats.macs_per_view, conv_macs + 6 * 5)
    # Element-wise ops (bias add, mean) count once each on top of 2 FLOPs per multiply-add.
    self.assertGreater(stats.flops_per_view, 2 * stats.macs_per_view)
    self.assertLess(stats.flops_per_view, 2.1 * stats.macs_per_view)
    self.assertEqual(stats.views_per_video, 1)
    self.assertNotIn('views per video', stats.summary())

  def test_flops_equal_the_tf_profiler_total(self):
    model = _conv_dense_model()
    spec = tf.TensorSpec([1, 4, 8, 8, 3])
    counted = sum(model_stats.count_flops(lambda x: model(x, training=False), spec).values())
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen, _ = convert_to_constants.convert_variables_to_constants_v2_as_graph(concrete)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options['output'] = 'none'
    profile = tf.compat.v1.profiler.profile(
      graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd='scope', options=options
    )
    self.assertEqual(counted, profile.total_float_ops)

  def test_nested_functions_are_counted(self):
    inner = tf.function(lambda x: tf.matmul(x, tf.ones([3, 4])))
    flops = model_stats.count_flops(lambda x: inner(x) + 1.0, tf.TensorSpec([2, 3]))
    self.assertEqual(flops, {'MatMul': 2 * 2 * 3 * 4, 'AddV2': 2 * 4})

  def test_ops_of_unknown_size_are_skipped(self):
    # The multiply after boolean_mask has a run-time size, as NMS outputs do; the profiler skips it.
    flops = model_stats.count_flops(
      lambda x: tf.boolean_mask(x, x > 0) * 2.0 + tf.reduce_sum(tf.matmul(x, tf.ones([3, 4]))),
      tf.TensorSpec([2, 3]),
    )
    self.assertEqual(flops['MatMul'], 2 * 2 * 3 * 4)
    self.assertNotIn('Mul', flops)

  def test_retinanet_counts_backbone_and_head(self):
    task_config = exp_factory.get_exp_config('retinanet_spinenet_demo').task
    model = task_factory.get_task(task_config).build_model()
    stats = model_stats.experiment_stats(task_config, model)
    spec = tf.TensorSpec([1, *task_config.model.input_size])
    backbone = model_stats.count_flops(model.backbone, spec)
    dense = model_stats.count_flops(lambda x: model.head(model.backbone(x)), spec)
    self.assertEqual(stats.flops_per_view, sum(dense.values()))
    self.assertGreater(stats.flops_per_view, sum(backbone.values()))
    self.assertIn('backbone + decoder + head', stats.summary())
    self.assertEqual(stats.parameters, sum(int(np.prod(w.shape)) for w in model.weights))

  def test_two_stage_detector_counts_its_inference_call(self):
    task_config = exp_factory.get_exp_config('maskrcnn_spinenet_demo').task
    model = task_factory.get_task(task_config).build_model()
    stats = model_stats.experiment_stats(task_config, model)
    spec = tf.TensorSpec([1, *task_config.model.input_size])
    dense = model_stats.count_flops(lambda x: model.rpn_head(model.backbone(x)), spec)
    # The box and mask heads on the proposals and detections add to backbone and RPN.
    self.assertGreater(stats.flops_per_view, sum(dense.values()))
    self.assertIn('100 proposals through the box head, 10 detections', stats.flops_scope)

  def test_video_experiment_counts_eval_views(self):
    config = _tiny_demo_config()
    config.task.validation_data.num_test_clips = 4
    config.task.validation_data.num_test_crops = 3
    stats = model_stats.experiment_stats(config.task)
    model = task_factory.get_task(config.task).build_model()
    self.assertEqual(stats.parameters, sum(int(np.prod(w.shape)) for w in model.weights))
    self.assertEqual(stats.view_shape, (8, 32, 32, 3))
    self.assertEqual(stats.views_per_video, 12)
    self.assertAllClose(stats.gflops_per_video, 12 * stats.gflops_per_view)
    self.assertIn('12 (4 clips x 3 crops)', stats.summary())

  def test_unknown_input_shape_is_an_error(self):
    with self.assertRaisesRegex(ValueError, 'cannot tell the input shape of task TaskConfig'):
      model_stats.experiment_stats(cfg.TaskConfig())

  def test_train_py_prints_the_stats_of_the_built_model(self):
    result = subprocess.run(
      [
        sys.executable,
        os.path.join(REPO, 'train.py'),
        '--experiment=video_classification_demo',
        '--print_model_stats',
        f'--params_override={TINY_DEMO_OVERRIDE}',
      ],
      capture_output=True,
      text=True,
      env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2'),
      timeout=600,
    )
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    printed = int(re.search(r'^parameters: ([\d,]+)', result.stdout, re.M)[1].replace(',', ''))
    model = task_factory.get_task(_tiny_demo_config().task).build_model()
    self.assertEqual(printed, sum(int(np.prod(w.shape)) for w in model.weights))
    self.assertRegex(result.stdout, r'GFLOPs per view: \d+\.\d\d')
    self.assertIn('views per video at eval: 2 (2 clips x 1 crops)', result.stdout)


if __name__ == '__main__':
  tf.test.main()
