"""Temporally consistent spatial augmentation of video clips (CVRL Sec. 3.3) and frame decoding."""

import functools
from collections.abc import Callable, Sequence

import tensorflow as tf

# CVRL Sec. 3.3 applies SimCLR's image augmentations (Chen et al. 2020, Appendix A) to whole clips,
# with SimCLR's strengths and probabilities; the crop area and aspect ranges are those the
# authors' Model Garden release uses for videos.
CROP_AREA_RANGE = (0.3, 1.0)
CROP_ASPECT_RATIO_RANGE = (0.5, 2.0)
FLIP_PROB = 0.5
COLOR_JITTER_STRENGTH = 1.0
COLOR_JITTER_PROB = 0.8
GRAYSCALE_PROB = 0.2
BLUR_PROB = 0.5
BLUR_SIGMA_RANGE = (0.1, 2.0)

SeedLike = tf.Tensor | Sequence[int] | None


def resolve_seed(seed: SeedLike) -> tf.Tensor:
  """Returns `seed` as a stateless-op seed (shape [2]), or a fresh one when it is None.

  A fresh seed comes from the op-level stateful RNG, so results then follow `tf.random.set_seed`
  like any other `tf.random` op; pass a seed for exact reproducibility.
  """
  if seed is None:
    return tf.random.uniform([2], maxval=tf.int32.max, dtype=tf.int32)
  return tf.convert_to_tensor(seed)


def split_seed(seed: SeedLike, num: int) -> list[tf.Tensor]:
  """Splits a stateless-op seed (or None, see `resolve_seed`) into `num` independent seeds."""
  return tf.unstack(tf.random.experimental.stateless_split(resolve_seed(seed), num=num))


def _to_float(clip: tf.Tensor) -> tf.Tensor:
  """uint8 [0, 255] or float [0, 1] to float32 [0, 1]."""
  return tf.image.convert_image_dtype(clip, tf.float32)


def _apply_with_probability(
  fn: Callable[[tf.Tensor], tf.Tensor], clip: tf.Tensor, prob: float, seed: tf.Tensor
) -> tf.Tensor:
  coin = tf.random.stateless_uniform([], seed=seed)
  return tf.cond(coin < prob, lambda: fn(clip), lambda: clip)


def decode_jpeg_frames(encoded: tf.Tensor) -> tf.Tensor:
  """Decodes a `[time]` string tensor of JPEG frames into `[time, height, width, 3]` uint8."""
  return tf.map_fn(
    functools.partial(tf.io.decode_jpeg, channels=3),
    encoded,
    fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
  )


def random_resized_crop(
  clip: tf.Tensor,
  output_size: tuple[int, int],
  area_range: tuple[float, float] = CROP_AREA_RANGE,
  aspect_ratio_range: tuple[float, float] = CROP_ASPECT_RATIO_RANGE,
  seed: SeedLike = None,
) -> tf.Tensor:
  """Crops one random box (area, aspect ratio in range) from every frame; resizes to `output_size`.

  Returns float32 `[time, output_height, output_width, 3]` in [0, 1].
  """
  clip = _to_float(clip)
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
    tf.shape(clip)[1:],
    bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
    seed=resolve_seed(seed),
    min_object_covered=0.0,
    aspect_ratio_range=aspect_ratio_range,
    area_range=area_range,
    max_attempts=100,
  )
  clip = tf.slice(clip, tf.concat([[0], begin], 0), tf.concat([[-1], size], 0))
  clip = tf.image.resize(clip, output_size, method='bilinear')
  return tf.clip_by_value(clip, 0.0, 1.0)


def random_flip_left_right(
  clip: tf.Tensor, prob: float = FLIP_PROB, seed: SeedLike = None
) -> tf.Tensor:
  """Mirrors all frames of the clip horizontally with probability `prob`; float32 in [0, 1]."""
  return _apply_with_probability(
    lambda x: tf.reverse(x, axis=[2]), _to_float(clip), prob, resolve_seed(seed)
  )


def _adjust_contrast(clip: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
  # One mean over the whole clip, not per frame (tf.image.adjust_contrast), so every frame gets the
  # same affine map: the paper's temporal consistency (Sec. 3.3) applies to the transform itself.
  mean = tf.reduce_mean(clip, axis=[0, 1, 2], keepdims=True)
  return (clip - mean) * factor + mean


def random_color_jitter(
  clip: tf.Tensor,
  strength: float = COLOR_JITTER_STRENGTH,
  prob: float = COLOR_JITTER_PROB,
  seed: SeedLike = None,
) -> tf.Tensor:
  """SimCLR colour jitter, one set of factors and one random op order for the whole clip.

  With probability `prob`: brightness (multiplicative) and contrast and saturation factors in
  [1 - 0.8 s, 1 + 0.8 s], hue shift in [-0.2 s, 0.2 s] for strength s, applied in a random order
  (SimCLR Appendix A; brightness scales rather than shifts, as in SimCLR v2's code). Returns
  float32 in [0, 1].
  """
  coin_seed, brightness_seed, contrast_seed, saturation_seed, hue_seed, order_seed = split_seed(
    seed, 6
  )

  def jitter(x: tf.Tensor) -> tf.Tensor:
    def factor(max_delta: float, factor_seed: tf.Tensor) -> tf.Tensor:
      return tf.random.stateless_uniform(
        [], factor_seed, minval=max(1.0 - max_delta, 0.0), maxval=1.0 + max_delta
      )

    brightness = factor(0.8 * strength, brightness_seed)
    contrast = factor(0.8 * strength, contrast_seed)
    saturation = factor(0.8 * strength, saturation_seed)
    hue = tf.random.stateless_uniform([], hue_seed, minval=-0.2 * strength, maxval=0.2 * strength)
    adjustments = [
      lambda y: y * brightness,
      lambda y: _adjust_contrast(y, contrast),
      lambda y: tf.image.adjust_saturation(y, saturation),
      lambda y: tf.image.adjust_hue(y, hue),
    ]
    order = tf.argsort(tf.random.stateless_uniform([len(adjustments)], order_seed))
    for op_index in tf.unstack(order):
      x = tf.switch_case(op_index, [functools.partial(adjust, x) for adjust in adjustments])
      x = tf.clip_by_value(x, 0.0, 1.0)
    return x

  return _apply_with_probability(jitter, _to_float(clip), prob, coin_seed)


def random_grayscale(
  clip: tf.Tensor, prob: float = GRAYSCALE_PROB, seed: SeedLike = None
) -> tf.Tensor:
  """Replaces the clip by its luma (kept as 3 equal channels) with probability `prob`."""
  return _apply_with_probability(
    lambda x: tf.tile(tf.image.rgb_to_grayscale(x), [1, 1, 1, 3]),
    _to_float(clip),
    prob,
    resolve_seed(seed),
  )


def gaussian_blur(clip: tf.Tensor, sigma: float | tf.Tensor) -> tf.Tensor:
  """Blurs every frame with the same separable Gaussian of std `sigma` pixels.

  The kernel spans about 10% of the shorter frame side, as SimCLR's (Appendix A) does of the
  image height; borders are mirrored so the blur does not darken them. Float32 in [0, 1].
  """
  clip = _to_float(clip)
  frame_shape = tf.shape(clip)
  radius = tf.minimum(frame_shape[1], frame_shape[2]) // 20
  offsets = tf.cast(tf.range(-radius, radius + 1), tf.float32)
  kernel = tf.exp(-tf.square(offsets) / (2.0 * tf.square(tf.cast(sigma, tf.float32))))
  kernel /= tf.reduce_sum(kernel)
  channels = 3
  kernel_rows = tf.tile(tf.reshape(kernel, [-1, 1, 1, 1]), [1, 1, channels, 1])
  kernel_cols = tf.tile(tf.reshape(kernel, [1, -1, 1, 1]), [1, 1, channels, 1])
  padded = tf.pad(clip, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode='SYMMETRIC')
  blurred = tf.nn.depthwise_conv2d(padded, kernel_rows, strides=[1, 1, 1, 1], padding='VALID')
  blurred = tf.nn.depthwise_conv2d(blurred, kernel_cols, strides=[1, 1, 1, 1], padding='VALID')
  return tf.clip_by_value(blurred, 0.0, 1.0)


def random_gaussian_blur(
  clip: tf.Tensor,
  prob: float = BLUR_PROB,
  sigma_range: tuple[float, float] = BLUR_SIGMA_RANGE,
  seed: SeedLike = None,
) -> tf.Tensor:
  """With probability `prob`, blurs the clip with one sigma drawn uniformly from `sigma_range`."""
  coin_seed, sigma_seed = split_seed(seed, 2)
  sigma = tf.random.stateless_uniform([], sigma_seed, minval=sigma_range[0], maxval=sigma_range[1])
  return _apply_with_probability(
    functools.partial(gaussian_blur, sigma=sigma), _to_float(clip), prob, coin_seed
  )


def augment_clip(
  clip: tf.Tensor,
  output_size: tuple[int, int],
  *,
  area_range: tuple[float, float] = CROP_AREA_RANGE,
  aspect_ratio_range: tuple[float, float] = CROP_ASPECT_RATIO_RANGE,
  flip_prob: float = FLIP_PROB,
  color_jitter_strength: float = COLOR_JITTER_STRENGTH,
  color_jitter_prob: float = COLOR_JITTER_PROB,
  grayscale_prob: float = GRAYSCALE_PROB,
  blur_prob: float = BLUR_PROB,
  blur_sigma_range: tuple[float, float] = BLUR_SIGMA_RANGE,
  seed: SeedLike = None,
) -> tf.Tensor:
  """CVRL's temporally consistent spatial augmentation of one `[time, height, width, 3]` clip.

  Crop, flip, colour jitter, grayscale, blur, in SimCLR's order; every random parameter is drawn
  once per clip (CVRL Sec. 3.3). Give the two clips of a positive pair different seeds. Returns
  float32 `[time, output_height, output_width, 3]` in [0, 1].
  """
  crop_seed, flip_seed, jitter_seed, gray_seed, blur_seed = split_seed(seed, 5)
  clip = random_resized_crop(clip, output_size, area_range, aspect_ratio_range, crop_seed)
  clip = random_flip_left_right(clip, flip_prob, flip_seed)
  clip = random_color_jitter(clip, color_jitter_strength, color_jitter_prob, jitter_seed)
  clip = random_grayscale(clip, grayscale_prob, gray_seed)
  return random_gaussian_blur(clip, blur_prob, blur_sigma_range, blur_seed)
