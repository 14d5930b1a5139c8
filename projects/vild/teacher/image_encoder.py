"""ViLD's image teacher: an encoder of box crops into the text teacher's embedding space, the
crops it sees (ViLD's 1x and 1.5x boxes), and loading any such encoder by path."""

import os
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
import tf_keras

# all-MiniLM-L6-v2's sentence embedding size: the image teacher lives in the text teacher's space.
EMBEDDING_DIM = 384
DEFAULT_CROP_SIZE = 32
# ViLD (Gu et al. 2022, Sec. 3.3): each proposal is cropped at 1x and 1.5x its size ("the latter
# provides more context"); the teacher's embeddings of both are averaged and renormalised.
VILD_CROP_SCALES = (1.0, 1.5)


def build_image_encoder(
  crop_size: int = DEFAULT_CROP_SIZE,
  embedding_dim: int = EMBEDDING_DIM,
  widths: Sequence[int] = (32, 64, 128),
) -> tf_keras.Model:
  """A small CNN: float32 RGB crops [N, crop_size, crop_size, 3] (pixel values 0..255) → [N,
  embedding_dim] unit-norm embeddings. Built from stock Keras layers only, so a `.keras` file or
  SavedModel of it loads without this code."""
  layers = tf_keras.layers
  crops = tf_keras.Input([crop_size, crop_size, 3], name='crops')
  x = layers.Rescaling(1 / 127.5, offset=-1.0)(crops)
  for stage, width in enumerate(widths):
    for stride in (1, 2):
      x = layers.Conv2D(
        width, 3, strides=stride, padding='same', use_bias=False, name=f'conv{stage}_s{stride}'
      )(x)
      x = layers.BatchNormalization(name=f'bn{stage}_s{stride}')(x)
      x = layers.ReLU()(x)
  x = layers.GlobalAveragePooling2D()(x)
  x = layers.Dense(2 * widths[-1], activation='relu', name='hidden')(x)
  x = layers.Dense(embedding_dim, name='projection')(x)
  embeddings = layers.UnitNormalization(name='embedding')(x)
  return tf_keras.Model(crops, embeddings, name='image_teacher')


def enlarge_boxes(boxes: tf.Tensor, scale: float | tf.Tensor) -> tf.Tensor:
  """Normalised yxyx boxes [..., 4] scaled about their centres by `scale` (a number, or per box
  [..., 1]), clipped to the image."""
  boxes = tf.convert_to_tensor(boxes, tf.float32)
  centres = (boxes[..., :2] + boxes[..., 2:]) / 2
  half_sizes = (boxes[..., 2:] - boxes[..., :2]) * (tf.cast(scale, tf.float32) / 2)
  return tf.clip_by_value(tf.concat([centres - half_sizes, centres + half_sizes], -1), 0.0, 1.0)


def crop_boxes(
  images: tf.Tensor, boxes: tf.Tensor, box_image_indices: tf.Tensor, crop_size: int
) -> tf.Tensor:
  """[K, crop_size, crop_size, 3] float32 (0..255) bilinear crops of `images` [N, H, W, 3] at
  normalised yxyx `boxes` [K, 4], box k taken from image `box_image_indices[k]`."""
  return tf.image.crop_and_resize(
    images,
    tf.convert_to_tensor(boxes, tf.float32),
    tf.convert_to_tensor(box_image_indices, tf.int32),
    [crop_size, crop_size],
  )


def _normalise(embeddings: np.ndarray) -> np.ndarray:
  return embeddings / np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)


class ImageEncoder:
  """Embeds box crops with any callable from float32 crops [N, S, S, 3] (pixel values 0..255) to
  [N, D] embeddings (a Keras model, a SavedModel signature), renormalising what it returns."""

  def __init__(
    self, embed: Callable[[tf.Tensor], tf.Tensor], crop_size: int, batch_size: int = 256
  ):
    if crop_size < 1 or batch_size < 1:
      raise ValueError(f'crop_size and batch_size must be positive, got {crop_size}, {batch_size}')
    self.crop_size = crop_size
    self.batch_size = batch_size
    self._embed = tf.function(
      embed, input_signature=[tf.TensorSpec([None, crop_size, crop_size, 3], tf.float32)]
    )

  def embed_crops(self, crops: tf.Tensor) -> np.ndarray:
    """[N, D] float32 unit-norm embeddings of crops [N, S, S, 3], in batches."""
    batches = []
    for start in range(0, len(crops), self.batch_size):
      batch = tf.cast(crops[start : start + self.batch_size], tf.float32)
      embeddings = np.asarray(self._embed(batch), np.float32)
      if embeddings.ndim != 2 or embeddings.shape[0] != batch.shape[0]:
        raise ValueError(
          f'the image encoder returned shape {embeddings.shape} for {batch.shape[0]} crops; '
          'expected [crops, dim]'
        )
      batches.append(embeddings)
    if not batches:
      return np.zeros([0, 0], np.float32)
    return _normalise(np.concatenate(batches))

  def embed_boxes(
    self,
    images: tf.Tensor,
    boxes: np.ndarray,
    box_image_indices: np.ndarray | None = None,
    scales: Sequence[float] = VILD_CROP_SCALES,
  ) -> np.ndarray:
    """[K, D] unit-norm embeddings of K normalised yxyx boxes of `images` [N, H, W, 3]: per box,
    the mean of its crops' embeddings at each of `scales` (ViLD's 1x and 1.5x), renormalised.
    `box_image_indices` defaults to all boxes in image 0."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if box_image_indices is None:
      box_image_indices = np.zeros(len(boxes), np.int32)
    per_scale = []
    for start in range(0, len(boxes), self.batch_size):
      box_batch = boxes[start : start + self.batch_size]
      index_batch = box_image_indices[start : start + self.batch_size]
      crops = [
        crop_boxes(images, enlarge_boxes(box_batch, scale), index_batch, self.crop_size)
        for scale in scales
      ]
      embeddings = self.embed_crops(tf.concat(crops, 0))
      per_scale.append(embeddings.reshape(len(scales), len(box_batch), -1).mean(axis=0))
    if not per_scale:
      return np.zeros([0, 0], np.float32)
    return _normalise(np.concatenate(per_scale))


def _signature_function(
  signature: Callable,
) -> tuple[Callable[[tf.Tensor], tf.Tensor], tf.TensorSpec]:
  """A SavedModel signature (keyword input, dict of outputs) as a function of one tensor."""
  _, input_specs = signature.structured_input_signature
  outputs = signature.structured_outputs
  if len(input_specs) != 1 or len(outputs) != 1:
    raise ValueError(
      f'an image encoder signature needs one image input and one output, got inputs '
      f'{sorted(input_specs)} and outputs {sorted(outputs)}'
    )
  ((input_name, spec),) = input_specs.items()
  (output_name,) = outputs
  return (lambda crops: signature(**{input_name: crops})[output_name]), spec


def _crop_size_of(shape: Sequence, source: str, crop_size: int | None) -> int:
  """The square crop size an encoder input of `shape` [N, S, S, 3] takes, or `crop_size`."""
  shape = list(shape)
  if len(shape) != 4 or shape[-1] not in (3, None):
    raise ValueError(f'{source}: expected an input of shape [N, S, S, 3], got {shape}')
  height, width = shape[1:3]
  if height is not None and width is not None:
    if height != width or (crop_size is not None and crop_size != height):
      raise ValueError(
        f'{source} takes {height}x{width} crops; expected square crops'
        + (f' of size {crop_size}' if crop_size is not None else '')
      )
    return int(height)
  if crop_size is None:
    raise ValueError(f'{source} takes crops of any size {shape}; give the crop size to use')
  return crop_size


def load_image_encoder(
  spec: str | os.PathLike | tf_keras.Model, crop_size: int | None = None, batch_size: int = 256
) -> ImageEncoder:
  """An ImageEncoder from `spec`: a Keras model, a `.keras` / `.h5` file, or a SavedModel folder
  (its `serving_default` signature: one float32 input [N, S, S, 3] of 0..255 pixel values, one
  output [N, D]). The crop size is the model's input size; `crop_size` is needed only when the
  model takes any size."""
  if isinstance(spec, tf_keras.Model):
    size = _crop_size_of(spec.input_shape, f'Keras model {spec.name}', crop_size)
    return ImageEncoder(lambda crops: spec(crops, training=False), size, batch_size)
  path = os.fspath(spec)
  if os.path.isfile(path) and path.endswith(('.keras', '.h5')):
    return load_image_encoder(
      tf_keras.models.load_model(path, compile=False), crop_size, batch_size
    )
  if os.path.isdir(path) and tf.saved_model.contains_saved_model(path):
    loaded = tf.saved_model.load(path)
    if 'serving_default' not in loaded.signatures:
      raise ValueError(f'SavedModel {path} has no serving_default signature')
    embed, input_spec = _signature_function(loaded.signatures['serving_default'])
    size = _crop_size_of(input_spec.shape, f'SavedModel {path}', crop_size)
    # The closure keeps the loaded object alive: its variables die with it.
    return ImageEncoder(lambda crops, loaded=loaded: embed(crops), size, batch_size)
  raise ValueError(f'image encoder {path!r}: expected a SavedModel folder or a .keras / .h5 file')
