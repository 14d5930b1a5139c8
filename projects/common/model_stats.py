"""Model size and compute of an experiment: parameters, GFLOPs per view and views per video.

FLOPs come from TensorFlow's own per-op statistics (the `flops` statistics registered with
`tf.RegisterStatistics`, which is what `tf.compat.v1.profiler`'s `float_operation()` view sums) over
the inference graph of the model traced at batch 1. TensorFlow counts one multiply-add as 2 FLOPs
(Conv, MatMul), and also counts element-wise ops (Add, Mul, Mean, ...); FusedBatchNorm, ReLU and
pooling have no registered statistic and count 0. `GMACs` counts only the multiply-adds of
convolutions and matrix products, once each: that is what SlowFast, X3D and most video papers
report as "FLOPs", so compare paper numbers with GMACs. Detection papers built on the TF1
detection release (SpineNet, Copy-Paste, ...) report the profiler's total / 2 as "FLOPs"
(multiply-adds), which is GFLOPs / 2 here, within 1 % of GMACs for convolutional detectors.
"""

import collections
import dataclasses

import tensorflow as tf
import tf_keras
from official.core import config_definitions as cfg
from official.core import task_factory
from tensorflow.python.framework import (  # No public API freezes a concrete function.
  convert_to_constants,
  ops,
)

# Ops whose registered FLOPs are 2 x their multiply-adds.
MULTIPLY_ADD_OPS = frozenset(
  {
    'Conv2D',
    'Conv3D',
    'DepthwiseConv2dNative',
    'MatMul',
    'BatchMatMul',
    'BatchMatMulV2',
    'BatchMatMulV3',
    'Einsum',
  }
)


@dataclasses.dataclass(frozen=True)
class ModelStats:
  """Size and inference compute of one model; FLOPs and MACs are for one view at batch 1."""

  parameters: int
  trainable_parameters: int
  view_shape: tuple[int, ...]
  flops_per_view: int
  macs_per_view: int
  views_per_video: int = 1
  # How the views are made, e.g. '10 clips x 3 crops'; empty for models that see one image.
  views_description: str = ''
  # What the FLOPs cover, when it is less than the whole model (e.g. detection post-processing).
  flops_scope: str = 'whole model'

  @property
  def gflops_per_view(self) -> float:
    return self.flops_per_view / 1e9

  @property
  def gmacs_per_view(self) -> float:
    return self.macs_per_view / 1e9

  @property
  def gflops_per_video(self) -> float:
    return self.gflops_per_view * self.views_per_video

  def summary(self) -> str:
    """Human-readable lines, as `train.py --print_model_stats` prints them."""
    shape = 'x'.join(str(d) for d in self.view_shape)
    lines = [
      f'parameters: {self.parameters:,} ({self.parameters / 1e6:.2f} M; '
      f'trainable {self.trainable_parameters:,})',
      f'input shape: {shape} (batch 1; FLOPs of the {self.flops_scope})',
      f'GFLOPs per view: {self.gflops_per_view:.2f} '
      '(TF op statistics of the inference graph at batch 1; 1 multiply-add = 2 FLOPs)',
      f'GMACs per view: {self.gmacs_per_view:.2f} (conv/matmul multiply-adds only)',
    ]
    if self.views_description:
      lines += [
        f'views per video at eval: {self.views_per_video} ({self.views_description})',
        f'GFLOPs per video: {self.gflops_per_video:.2f}',
      ]
    return '\n'.join(lines)


def count_parameters(model: tf_keras.Model) -> tuple[int, int]:
  """(all weights, trainable weights) element counts; BN statistics count as parameters."""
  trainable = sum(w.shape.num_elements() for w in model.trainable_weights)
  return model.count_params(), trainable


def count_flops(function, input_signature) -> dict[str, int]:
  """FLOPs per op type of `function` traced at `input_signature` (fully defined shapes).

  Sums every node's registered `flops` statistic, the numbers `tf.compat.v1.profiler` reports.
  A graph that calls nested functions (control flow, tf.function layers) is frozen first, which
  inlines them; plain Keras graphs are counted as traced (freezing R3D-RS-50 takes ~30 s).
  """
  concrete = tf.function(function).get_concrete_function(input_signature)
  graph = concrete.graph
  if graph.as_graph_def().library.function:
    graph = convert_to_constants.convert_variables_to_constants_v2_as_graph(concrete)[0].graph
  flops = collections.Counter()
  for node in graph.as_graph_def().node:
    try:
      value = ops.get_stats_for_node_def(graph, node, 'flops').value
    except ValueError:
      # An element-wise op whose output size is only known at run time (e.g. after NMS): the
      # profiler skips these too ("incomplete shape").
      continue
    if value:
      flops[node.op] += int(value)
  return dict(flops)


def _macs(flops_by_op: dict[str, int]) -> int:
  return sum(v for op, v in flops_by_op.items() if op in MULTIPLY_ADD_OPS) // 2


def keras_model_stats(
  model: tf_keras.Model,
  view_shape: tuple[int, ...],
  views_per_video: int = 1,
  views_description: str = '',
) -> ModelStats:
  """Stats of a model whose input is one tensor, or a dict with an 'image' tensor."""
  spec = tf.TensorSpec([1, *view_shape], tf.float32)
  signature = {'image': spec} if isinstance(model.input, dict) else spec
  flops = count_flops(lambda inputs: model(inputs, training=False), signature)
  parameters, trainable = count_parameters(model)
  return ModelStats(
    parameters=parameters,
    trainable_parameters=trainable,
    view_shape=tuple(view_shape),
    flops_per_view=sum(flops.values()),
    macs_per_view=_macs(flops),
    views_per_video=views_per_video,
    views_description=views_description,
  )


def _detection_stats(model: tf_keras.Model, input_size: tuple[int, ...]) -> ModelStats:
  """Stats of a Model Garden detector at batch 1; what is counted depends on the model.

  RetinaNet-style models (a dense `head`): backbone, decoder and head, up to the raw class and
  box outputs, as the TF1 detection release counts "FLOPs before NMS". Two-stage models (an
  `rpn_head`): the whole inference call, proposals through the box head and detections through
  the mask head, at the model's own proposal and detection counts. Others: backbone + decoder.
  """
  height, width = input_size[:2]
  image_spec = tf.TensorSpec([1, *input_size], tf.float32)

  def features(images):
    outputs = model.backbone(images)
    return model.decoder(outputs) if model.decoder else outputs

  if hasattr(model, 'rpn_head'):
    flops = count_flops(
      lambda images: model(
        images, image_shape=tf.constant([[height, width]], tf.float32), training=False
      ),
      image_spec,
    )
    generator = model.roi_generator.get_config()
    detections = model.detection_generator.get_config()['max_num_detections']
    scope = (
      f'whole inference: {generator["test_num_proposals"]} proposals through the box head, '
      f'{detections} detections through the mask head'
    )
  elif getattr(model, 'head', None) is not None:
    flops = count_flops(lambda images: model.head(features(images)), image_spec)
    scope = 'backbone + decoder + head; anchor decoding and NMS not counted'
  else:
    flops = count_flops(features, image_spec)
    scope = 'backbone + decoder; heads and post-processing not counted'
  if not model.built:
    # RetinaNet's task returns an unbuilt model; its training-mode call needs only images.
    model(tf.zeros([1, *input_size]), training=True)
  parameters, trainable = count_parameters(model)
  return ModelStats(
    parameters=parameters,
    trainable_parameters=trainable,
    view_shape=tuple(input_size),
    flops_per_view=sum(flops.values()),
    macs_per_view=_macs(flops),
    flops_scope=scope,
  )


def experiment_stats(
  task_config: cfg.TaskConfig, model: tf_keras.Model | None = None
) -> ModelStats:
  """Measures the model of a (registered) task config, building only the model unless given.

  Video tasks are measured on one evaluation view (`validation_data.feature_shape`) and report
  `num_test_clips x num_test_crops` views per video; image and detection tasks use
  `model.input_size`. `model`: the task's model if already built (building a detector takes
  seconds).
  """
  validation = getattr(task_config, 'validation_data', None)
  is_video = validation is not None and hasattr(validation, 'num_test_clips')
  input_size = getattr(getattr(task_config, 'model', None), 'input_size', None)
  if not is_video and not input_size:
    raise ValueError(
      f'cannot tell the input shape of task {type(task_config).__name__}: expected '
      'validation_data.feature_shape (video) or model.input_size (image, detection)'
    )
  if model is None:
    model = task_factory.get_task(task_config).build_model()
  if is_video:
    clips, crops = validation.num_test_clips, validation.num_test_crops
    return keras_model_stats(
      model,
      tuple(validation.feature_shape),
      views_per_video=clips * crops,
      views_description=f'{clips} clips x {crops} crops',
    )
  if hasattr(model, 'backbone') and hasattr(model, 'decoder'):
    return _detection_stats(model, tuple(input_size))
  return keras_model_stats(model, tuple(input_size))
