r"""Exports an experiment's trained model as a SavedModel that takes raw uint8 video frames or,
for detection experiments (RetinaNet, Mask R-CNN), raw uint8 images.

Usage (from the repo root; `python -m tools.export_saved_model` works the same):
  python tools/export_saved_model.py --experiment=video_classification_demo \
    --checkpoint=/tmp/video_classification_demo --export_dir=/tmp/demo_export \
    [--num_frames=16 --height=64 --width=64]
  python tools/export_saved_model.py --experiment=maskrcnn_spinenet_demo \
    --checkpoint=/tmp/maskrcnn_spinenet_demo --export_dir=/tmp/maskrcnn_export

The model is the experiment's (`--config_file` / `--params_override` as in train.py), restored
with the weights train.py's evaluation scores from `--checkpoint`, which must hold every variable
of it: a train.py model_dir (its best checkpoint when the run keeps one in
`trainer.best_checkpoint_export_subdir`, else its latest), a folder of checkpoints (its latest) or
a checkpoint prefix. With `trainer.optimizer_config.ema` those weights are the moving averages.
The checkpoint taken, and why, is printed, and so are the signatures.

Video models: signatures, each taking `frames`: uint8 `[batch, num_frames, height, width, 3]`
clips already cut to the model's input (default: `validation_data.feature_shape`), normalised
inside as the training input pipeline does (to [0, 1], or [-1, 1] with `zero_centering_image`):
  serving_default: classifiers: `logits` and `probabilities` (softmax, or sigmoid for multi-label
                   data), float32 [batch, classes]; other models (e.g. CVRL pretraining): their
                   outputs, e.g. `features` and `embeddings`.
  features:        `features`, float32 [batch, channels]: the backbone's deepest endpoint,
                   globally average pooled (tools/extract_features.py --saved_model uses it).

Detection models: Model Garden's `DetectionModule` serving, as its own exporter writes it with
`input_type=image_tensor`, so its clients and tools/predict.py --saved_model read it:
  serving_default: `inputs`, uint8 images [batch, height, width, 3] of any size (batch 1 when
                   `detection_generator.nms_version` is v1 or tflite), normalised, resized
                   keeping the aspect ratio to fit `task.model.input_size` and padded, as the
                   detection parser prepares evaluation images. Outputs: `detection_boxes`
                   [batch, max_num_detections, 4] (ymin, xmin, ymax, xmax in the resized image's
                   pixels: divide by `image_info[:, 2]` for the original's), `detection_scores`,
                   `detection_classes` [batch, max_num_detections], `num_detections` [batch],
                   `image_info` [batch, 4, 2] (original size, resized size, scale, offset) and,
                   for Mask R-CNN, `detection_masks` [batch, max_num_detections, size, size]
                   (each box's mask probabilities, to be pasted into its box).

They compute in float32 whatever `runtime.mixed_precision_dtype` says. The SavedModel holds
only these functions and the variables (no Keras objects); the resolved config (with the served
`feature_shape`) is written next to it as `params.yaml`. Exit code 2 for bad arguments or
checkpoints.
"""

import argparse
import os
import sys
from collections.abc import Sequence

if __package__ in (None, ''):
  # Run as a script: make the repo root importable, as `python -m` would.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# TF CPU 3D convolutions are 10-80x slower without oneDNN (see train.py).
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf
import tf_keras
from official.core import config_definitions as cfg
from official.core import task_factory, train_utils
from official.vision.configs import maskrcnn as mg_maskrcnn
from official.vision.configs import retinanet as mg_retinanet
from official.vision.serving import detection

from projects import registry_imports  # noqa: F401  (registers every experiment)
from projects.common import experiment_config, video_features

FRAMES_INPUT = 'frames'
# Model Garden's detection export names its image input so unless told otherwise.
IMAGES_INPUT = 'inputs'
SERVING_SIGNATURE = 'serving_default'
FEATURES_SIGNATURE = 'features'
# Model Garden's NMS versions that take a batch of any size; the others are served one image at
# a time (DetectionModule's own rule when it builds the model itself).
DYNAMIC_BATCH_NMS_VERSIONS = ('batched', 'v2', 'v3')


class SavedModelError(ValueError):
  """A SavedModel is missing, or its signature is not the one a tool reads."""


def load_signature(
  export_dir: str, name: str, dtype: tf.DType, rank: int, expected: str
) -> tuple[object, tf.types.experimental.ConcreteFunction, str, tf.TensorSpec]:
  """(loaded SavedModel, signature `name`, its one input's name and spec), checked.

  The input must be one tensor of `dtype` and `rank`; `expected` describes it for the error.
  Keep the loaded object referenced while the signature is used: it owns the variables.
  """
  if not tf.saved_model.contains_saved_model(export_dir):
    raise SavedModelError(f'--saved_model {export_dir!r} holds no SavedModel')
  loaded = tf.saved_model.load(export_dir)
  if name not in loaded.signatures:
    raise SavedModelError(
      f'SavedModel {export_dir!r} has no {name!r} signature (signatures: '
      f'{sorted(loaded.signatures)})'
    )
  signature = loaded.signatures[name]
  inputs = signature.structured_input_signature[1]
  (input_name, spec), *others = inputs.items()
  if others or spec.dtype != dtype or spec.shape.rank != rank:
    raise SavedModelError(
      f'SavedModel {export_dir!r}: {name!r} signature takes {inputs}, expected {expected}'
    )
  return loaded, signature, input_name, spec


def _model_inputs(model: tf_keras.Model, images: tf.Tensor) -> tf.Tensor | dict[str, tf.Tensor]:
  """`images` as `model` takes them: `{'image': ...}` for Model Garden-style classifiers."""
  if not isinstance(model.input, dict):
    return images
  if set(model.input) != {'image'}:
    raise ValueError(
      f"model takes inputs {sorted(model.input)}; serving feeds video frames as 'image' only"
    )
  return {'image': images}


class VideoServingModule(tf.Module):
  """A video model's serving functions on uint8 frames; tracks only the model's variables."""

  def __init__(
    self,
    model: tf_keras.Model,
    zero_centering_image: bool,
    is_multilabel: bool,
    clip_shape: tuple[int, int, int],
  ):
    super().__init__(name='video_serving')
    # Only the variables are tracked, not the Keras model: saving a Keras model object also
    # traces every layer's call functions, several times slower and useless for serving.
    self._self_setattr_tracking = False
    self._model = model
    self._self_setattr_tracking = True
    self._zero_centering_image = zero_centering_image
    self._is_multilabel = is_multilabel
    self.model_variables = list(model.variables)
    self.frames_spec = tf.TensorSpec([None, *clip_shape, 3], tf.uint8, name=FRAMES_INPUT)
    # No Python control flow on tensors in the models served: AutoGraph would only cost time.
    self.serve = tf.function(self._serve, input_signature=[self.frames_spec], autograph=False)
    self.features = tf.function(self._features, input_signature=[self.frames_spec], autograph=False)

  def _serve(self, frames: tf.Tensor) -> dict[str, tf.Tensor]:
    images = video_features.normalize_frames(frames, self._zero_centering_image)
    outputs = self._model(_model_inputs(self._model, images), training=False)
    if isinstance(outputs, dict):
      return {name: tf.cast(value, tf.float32) for name, value in outputs.items()}
    logits = tf.cast(outputs, tf.float32)
    probabilities = tf.sigmoid(logits) if self._is_multilabel else tf.nn.softmax(logits)
    return {'logits': logits, 'probabilities': probabilities}

  def _features(self, frames: tf.Tensor) -> dict[str, tf.Tensor]:
    return {
      FEATURES_SIGNATURE: video_features.clip_features(
        self._model.backbone, frames, self._zero_centering_image
      )
    }

  def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
    return {
      SERVING_SIGNATURE: self.serve.get_concrete_function(),
      FEATURES_SIGNATURE: self.features.get_concrete_function(),
    }


def with_clip_shape(
  params: cfg.ExperimentConfig, clip_shape: Sequence[int | None]
) -> cfg.ExperimentConfig:
  """`params` whose inputs' `feature_shape` is `clip_shape` (`num_frames, height, width`).

  None keeps `validation_data.feature_shape`'s size. Model Garden's video classifier fixes its
  input shape when built (from `train_data` and `validation_data`), so serving another shape
  needs a model built for it; the convolutional weights fit any shape.
  """
  data = params.task.validation_data
  shape = [
    int(size or default) for size, default in zip(clip_shape, data.feature_shape[:3], strict=True)
  ]
  feature_shape = [*shape, data.feature_shape[3]]
  if all(list(d.feature_shape) == feature_shape for d in (data, params.task.train_data)):
    return params
  resized = {'feature_shape': feature_shape}
  return params.replace(task={'train_data': resized, 'validation_data': resized})


class DetectionServingModule(tf.Module):
  """Model Garden's detection serving (`DetectionModule`) of a built model; tracks only its
  variables, as VideoServingModule does."""

  def __init__(self, params: cfg.ExperimentConfig, model: tf_keras.Model):
    super().__init__(name='detection_serving')
    generator = params.task.model.detection_generator
    batch_size = None if generator.nms_version in DYNAMIC_BATCH_NMS_VERSIONS else 1
    self._self_setattr_tracking = False
    self._detection = detection.DetectionModule(
      params,
      model=model,
      batch_size=batch_size,
      input_image_size=list(params.task.model.input_size[:2]),
      input_name=IMAGES_INPUT,
    )
    # Tracing creates the variables of Model Garden's (subclassed) detectors.
    self._signatures = self._detection.get_inference_signatures({'image_tensor': SERVING_SIGNATURE})
    self._self_setattr_tracking = True
    self.model_variables = list(model.variables)

  def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
    return dict(self._signatures)


ServingModule = VideoServingModule | DetectionServingModule


def is_detection(params: cfg.ExperimentConfig) -> bool:
  """Whether the experiment's model is a RetinaNet or Mask R-CNN (served on images)."""
  return isinstance(params.task.model, mg_retinanet.RetinaNet | mg_maskrcnn.MaskRCNN)


def build_serving_module(
  params: cfg.ExperimentConfig, checkpoint: str
) -> tuple[ServingModule, str]:
  """The experiment's model restored from `checkpoint`, behind its serving functions.

  Video models serve `validation_data.feature_shape` clips; detection models serve images of
  any size (see the module docstring). Returns the module and which checkpoint and weights were
  read.
  """
  task = task_factory.get_task(params.task)
  model = task.build_model()
  if is_detection(params):
    module = DetectionServingModule(params, model)
  else:
    data = params.task.validation_data
    module = VideoServingModule(
      model,
      zero_centering_image=data.zero_centering_image,
      is_multilabel=params.task.train_data.is_multilabel,
      clip_shape=tuple(data.feature_shape[:3]),
    )
  # After the module has built every variable, so the restore checks that the checkpoint holds
  # them all.
  source = video_features.restore_evaluated_model(task, params, model, checkpoint, whole_model=True)
  return module, source


def export(module: ServingModule, params: cfg.ExperimentConfig, export_dir: str) -> None:
  """Saves the SavedModel and the config it was built from (`params.yaml`) in `export_dir`."""
  # Serving needs no gradients; saving the graph's custom gradients only makes loading warn.
  options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
  tf.saved_model.save(module, export_dir, signatures=module.signatures(), options=options)
  train_utils.serialize_config(params, export_dir)


def _positive(value: str) -> int:
  number = int(value)
  if number < 1:
    raise argparse.ArgumentTypeError(f'must be a positive number, got {value}')
  return number


def add_experiment_arguments(parser: argparse.ArgumentParser) -> None:
  """--experiment, --config_file and --params_override, read as train.py reads them."""
  parser.add_argument('--experiment', required=True, help='registered experiment name')
  parser.add_argument(
    '--config_file',
    action='append',
    default=[],
    help='YAML applied over the experiment defaults, in order (repeatable)',
  )
  parser.add_argument('--params_override', help='YAML/JSON string or a.b=1,c=2, applied last')


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    description=__doc__.split('\n', 1)[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  add_experiment_arguments(parser)
  parser.add_argument(
    '--checkpoint',
    required=True,
    help='train.py model_dir (its best checkpoint, else its latest) or checkpoint prefix',
  )
  parser.add_argument('--export_dir', required=True, help='folder to write the SavedModel to')
  for name in ('num_frames', 'height', 'width'):
    parser.add_argument(
      f'--{name}', type=_positive, help=f'input {name} (default: validation_data.feature_shape)'
    )
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
  args = _parse_args(argv)
  clip_shape = (args.num_frames, args.height, args.width)
  try:
    params = experiment_config.build_experiment_config(
      args.experiment, args.config_file, args.params_override
    )
    if is_detection(params) and any(clip_shape):
      print(
        f'error: --num_frames, --height and --width size video clips; {args.experiment} serves '
        'images of any size, resized to task.model.input_size (set it with --params_override)',
        file=sys.stderr,
      )
      return 2
    if not is_detection(params):
      params = with_clip_shape(params, clip_shape)
    module, source = build_serving_module(params, args.checkpoint)
  except (experiment_config.ExperimentConfigError, video_features.CheckpointError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f'checkpoint: {source}')
  export(module, params, args.export_dir)
  for name, function in module.signatures().items():
    (inputs,) = tf.nest.flatten(function.structured_input_signature)
    outputs = ', '.join(
      f'{key} {spec.shape.as_list()}' for key, spec in sorted(function.structured_outputs.items())
    )
    print(f'  {name}: {inputs.name} {inputs.dtype.name} {inputs.shape.as_list()} -> {outputs}')
  print(f'exported {args.experiment} to {args.export_dir}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
