"""Trains the image teacher CLIP-style: object crops against the frozen text embeddings of their
category names, with a symmetric InfoNCE loss and a learned temperature."""

import dataclasses
import json
import math
import os
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from projects.vild.teacher import image_encoder

# CLIP (Radford et al. 2021, Sec. 2.5): the logit scale starts at 1 / 0.07 and is clipped at 100.
INITIAL_LOGIT_SCALE = 1 / 0.07
MAX_LOGIT_SCALE = 100.0


@dataclasses.dataclass(frozen=True)
class CropSet:
  """Object boxes of same-size images: what the teacher is trained and evaluated on."""

  images: np.ndarray  # uint8 [N, H, W, 3]
  boxes: np.ndarray  # float32 [K, 4], normalised yxyx
  box_image_indices: np.ndarray  # int32 [K], rows of `images`
  labels: np.ndarray  # int32 [K], 0-based rows of the class text embeddings


def load_coco_crop_set(annotation_file: str, image_dir: str) -> CropSet:
  """The boxes of a COCO instances JSON with their images; label k is the k-th category by id."""
  with open(annotation_file) as f:
    coco = json.load(f)
  label_of_category = {
    c['id']: k for k, c in enumerate(sorted(coco['categories'], key=lambda c: c['id']))
  }
  row_of_image, images = {}, []
  for image in coco['images']:
    # Decoded as the precompute decodes the TFRecords' copy of the file (JPEG decoders differ).
    encoded = tf.io.read_file(os.path.join(image_dir, image['file_name']))
    pixels = tf.io.decode_image(encoded, channels=3, expand_animations=False).numpy()
    if images and pixels.shape != images[0].shape:
      raise ValueError(
        f'{annotation_file}: image {image["file_name"]} is {pixels.shape}, the first image is '
        f'{images[0].shape}; a crop set needs images of one size'
      )
    row_of_image[image['id']] = len(images)
    images.append(pixels)
  boxes, indices, labels = [], [], []
  for annotation in coco['annotations']:
    row = row_of_image[annotation['image_id']]
    height, width = images[row].shape[:2]
    x, y, box_width, box_height = annotation['bbox']
    boxes.append([y / height, x / width, (y + box_height) / height, (x + box_width) / width])
    indices.append(row)
    labels.append(label_of_category[annotation['category_id']])
  return CropSet(
    images=np.stack(images),
    boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
    box_image_indices=np.asarray(indices, np.int32),
    labels=np.asarray(labels, np.int32),
  )


def symmetric_infonce(
  image_embeddings: tf.Tensor, text_embeddings: tf.Tensor, labels: tf.Tensor, logit_scale: tf.Tensor
) -> tf.Tensor:
  """CLIP's symmetric InfoNCE over a batch of B (crop, caption) pairs, both sides unit-norm.

  Pairs of one category share their caption, so each crop's positives are all captions of its
  category and each caption's positives all crops of it, with equal target probability (the
  multi-positive form of UniCL, Yang et al. 2022); with distinct captions this is CLIP's loss.
  """
  logits = logit_scale * tf.matmul(image_embeddings, text_embeddings, transpose_b=True)
  same = tf.cast(tf.equal(labels[:, tf.newaxis], labels[tf.newaxis, :]), tf.float32)
  # `same` is symmetric, so the targets of both directions are its rows normalised.
  targets = same / tf.reduce_sum(same, axis=1, keepdims=True)
  image_to_text = tf.nn.softmax_cross_entropy_with_logits(targets, logits)
  text_to_image = tf.nn.softmax_cross_entropy_with_logits(targets, tf.transpose(logits))
  return (tf.reduce_mean(image_to_text) + tf.reduce_mean(text_to_image)) / 2


def jitter_boxes(
  generator: tf.random.Generator, boxes: tf.Tensor, max_shift: float, max_log_scale: float
) -> tf.Tensor:
  """Normalised yxyx boxes with centres moved by up to `max_shift` of their size and sides scaled
  by up to exp(±`max_log_scale`), clipped to the image: the imprecise boxes proposals are."""
  sizes = boxes[:, 2:] - boxes[:, :2]
  num_boxes = tf.shape(boxes)[0]
  centres = (boxes[:, :2] + boxes[:, 2:]) / 2 + sizes * generator.uniform(
    [num_boxes, 2], -max_shift, max_shift
  )
  sizes = sizes * tf.exp(generator.uniform([num_boxes, 2], -max_log_scale, max_log_scale))
  return tf.clip_by_value(tf.concat([centres - sizes / 2, centres + sizes / 2], 1), 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class TrainingResult:
  model: tf_keras.Model
  logit_scale: float
  losses: list[float]  # Mean loss of each tenth of the steps.
  seconds: float


def train_image_teacher(
  crop_set: CropSet,
  class_text_embeddings: np.ndarray,
  *,
  crop_size: int = image_encoder.DEFAULT_CROP_SIZE,
  widths: Sequence[int] = (32, 64, 128),
  steps: int = 600,
  batch_size: int = 128,
  learning_rate: float = 2e-3,
  seed: int = 0,
) -> TrainingResult:
  """Trains a `build_image_encoder` CNN so each object crop embeds near its category's (frozen)
  text embedding. Each step draws `batch_size` boxes, jitters them like proposals and crops each at
  1x or 1.5x (the crops ViLD's precompute takes); Adam with a cosine-decayed learning rate.
  `seed` makes the run repeatable; it seeds Python, NumPy and TensorFlow globally (the model's
  initialisers draw from them)."""
  class_text_embeddings = tf.constant(class_text_embeddings, tf.float32)
  tf_keras.utils.set_random_seed(seed)
  model = image_encoder.build_image_encoder(crop_size, class_text_embeddings.shape[1], widths)
  log_logit_scale = tf.Variable(math.log(INITIAL_LOGIT_SCALE), name='log_logit_scale')
  optimizer = tf_keras.optimizers.Adam(
    tf_keras.optimizers.schedules.CosineDecay(learning_rate, steps)
  )
  generator = tf.random.Generator.from_seed(seed)
  images = tf.constant(crop_set.images)
  boxes = tf.constant(crop_set.boxes)
  box_image_indices = tf.constant(crop_set.box_image_indices)
  labels = tf.constant(crop_set.labels)
  scales = tf.constant(image_encoder.VILD_CROP_SCALES, tf.float32)

  @tf.function
  def train_step():
    picked = generator.uniform([batch_size], 0, len(crop_set.labels), tf.int32)
    batch_boxes = jitter_boxes(generator, tf.gather(boxes, picked), 0.1, 0.2)
    scale = tf.gather(scales, generator.uniform([batch_size, 1], 0, len(scales), tf.int32))
    batch_boxes = image_encoder.enlarge_boxes(batch_boxes, scale)
    crops = image_encoder.crop_boxes(
      images, batch_boxes, tf.gather(box_image_indices, picked), crop_size
    )
    batch_labels = tf.gather(labels, picked)
    with tf.GradientTape() as tape:
      embeddings = model(crops, training=True)
      logit_scale = tf.exp(tf.minimum(log_logit_scale, math.log(MAX_LOGIT_SCALE)))
      loss = symmetric_infonce(
        embeddings, tf.gather(class_text_embeddings, batch_labels), batch_labels, logit_scale
      )
    variables = model.trainable_variables + [log_logit_scale]
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
    return loss

  started = time.perf_counter()
  losses = [float(train_step()) for _ in range(steps)]
  tenth = max(1, steps // 10)
  return TrainingResult(
    model=model,
    logit_scale=float(tf.exp(tf.minimum(log_logit_scale, math.log(MAX_LOGIT_SCALE)))),
    losses=[float(np.mean(losses[i : i + tenth])) for i in range(0, steps, tenth)],
    seconds=time.perf_counter() - started,
  )


def zero_shot_accuracy(
  encoder: image_encoder.ImageEncoder,
  crop_set: CropSet,
  class_text_embeddings: np.ndarray,
  scales: Sequence[float] = image_encoder.VILD_CROP_SCALES,
) -> float:
  """Fraction of boxes whose embedding (crops at `scales` averaged) is nearest its own
  category's text embedding among all categories'."""
  embeddings = encoder.embed_boxes(
    crop_set.images, crop_set.boxes, crop_set.box_image_indices, scales
  )
  predictions = np.argmax(embeddings @ np.asarray(class_text_embeddings).T, axis=1)
  return float(np.mean(predictions == crop_set.labels))
