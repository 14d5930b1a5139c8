"""Simple Copy-Paste (Ghiasi et al., CVPR 2021) as small graph-mode ops that run inside tf.data.

An *example* is a dict of tensors for one image:
  'image'   float [H, W, 3] (any value range; padding added by `scale_jitter` is 0, which is the
            mean pixel once Model Garden's `normalize_image` has run),
  'boxes'   float [N, 4] as [ymin, xmin, ymax, xmax]: *normalised* to [0, 1] before
            `scale_jitter` (as Model Garden's TfExampleDecoder gives them), *absolute pixels of
            the output image* after it (as Model Garden's Mask R-CNN parser's `gt_boxes` are),
  'classes' int [N],
  'masks'   [N, H, W] with 0/1 values (any numeric dtype, kept),
and, after `scale_jitter`, 'image_info' float [4, 2] in Model Garden's layout ([[original
height, width], [output height, width], [y scale, x scale], [y offset, x offset]]).

Randomness is stateless: every random op takes an explicit `seed` (int32/int64 tensor of shape
[2], as `tf.random.stateless_*` expect), so the same seed gives the same example, eagerly or in
`tf.data`. `copy_paste` is the whole augmentation; the other functions are its steps.

Settings follow the paper's TF1 code (tensorflow/tpu, models/official/detection/dataloader/
maskrcnn_parser_with_copy_paste.py and extract_objects_parser.py), except where noted:
- subset: a count m uniform in 0..N, then the first m objects of a random permutation;
- jitter: Model Garden's RetinaNet-style resize (aspect ratio kept, longer side fitted to
  scale * output size) then a random crop / zero pad to the output size;
- alpha: the union of the pasted masks, unsmoothed by default (the TF1 release disables its
  Gaussian blur of kernel 5, sigma 5);
- occlusion: TF1 removes an object whose mask area is at most 300 original-image pixels when *any*
  box coordinate of *any* object moved by more than 10 px (a tensor-wide `reduce_any`), so a small
  uncovered object disappears whenever another one is covered. Here each destination object is
  judged alone: it is removed only if the paste covered some of its pixels and fewer than
  `min_visible_area` output pixels of it stay visible; a covered object that stays gets a box
  tight around its visible mask (TF1 moves only the coordinates that changed by over 10 px).
"""

from collections.abc import Mapping, Sequence

import tensorflow as tf
from official.vision.ops import augment, box_ops, preprocess_ops

IMAGE = 'image'
BOXES = 'boxes'
CLASSES = 'classes'
MASKS = 'masks'
IMAGE_INFO = 'image_info'
NUM_INSTANCES = 'num_instances'
INSTANCE_KEYS = (BOXES, CLASSES, MASKS)

# Paper Sec. 3: large-scale jitter (the paper's default) and standard-scale jitter.
LARGE_SCALE_JITTER = (0.1, 2.0)
STANDARD_SCALE_JITTER = (0.8, 1.25)
# TF1 `copy_paste_occluded_obj_threshold` (there in original-image pixels, here in output pixels).
DEFAULT_MIN_VISIBLE_AREA = 300
# The kernel size of TF1's (disabled) alpha blur.
DEFAULT_BLEND_KERNEL_SIZE = 5

Example = Mapping[str, tf.Tensor]


def check_example(example: Example, name: str) -> None:
  """Raises ValueError if `example` (called `name` in the message) lacks a key Copy-Paste needs."""
  missing = [key for key in (IMAGE, *INSTANCE_KEYS) if key not in example]
  if missing:
    hint = (
      ' (Copy-Paste pastes instance masks: decode with masks, e.g. include_mask=True)'
      if MASKS in missing
      else ''
    )
    raise ValueError(
      f'{name} example has no {missing}; it has {sorted(example)} and needs '
      f'{[IMAGE, *INSTANCE_KEYS]}{hint}'
    )


def _assert_one_mask_per_box(example: Example, name: str) -> list[tf.Operation]:
  """A record decoded with masks but written without them has 0 masks for N boxes."""
  return [
    tf.debugging.assert_equal(
      tf.shape(example[MASKS])[0],
      tf.shape(example[BOXES])[0],
      message=f'{name} example: Copy-Paste needs one instance mask per box (masks vs boxes)',
    )
  ]


def _gather_instances(example: Example, indices: tf.Tensor) -> dict[str, tf.Tensor]:
  result = dict(example)
  for key in INSTANCE_KEYS:
    result[key] = tf.gather(example[key], indices)
  return result


def random_horizontal_flip(example: Example, seed: tf.Tensor, prob: float = 0.5) -> dict:
  """Mirrors image, normalised boxes and masks together with probability `prob`."""
  do_flip = tf.random.stateless_uniform([], seed) < prob
  result = dict(example)
  result[IMAGE] = tf.cond(
    do_flip, lambda: preprocess_ops.horizontal_flip_image(example[IMAGE]), lambda: example[IMAGE]
  )
  result[BOXES] = tf.cond(
    do_flip, lambda: box_ops.horizontal_flip_boxes(example[BOXES]), lambda: example[BOXES]
  )
  result[MASKS] = tf.cond(
    do_flip, lambda: tf.reverse(example[MASKS], axis=[2]), lambda: example[MASKS]
  )
  return result


def _nearest_indices(input_size, scaled_size, offset, output_size) -> tuple[tf.Tensor, tf.Tensor]:
  """For each output row (or column): the input index that nearest-neighbour resizing to
  `scaled_size` then cropping at `offset` reads, and whether the output falls inside the image.

  Same sampling as tf.image.resize(..., NEAREST_NEIGHBOR) (half-pixel centres), but the masks
  are gathered at output size instead of being resized whole, which at scale 2 would hold
  4x the output's pixels per instance.
  """
  scaled_index = offset + tf.range(output_size)
  # The ratio first, then the product, in the same order as TensorFlow's kernel rounds them.
  ratio = tf.cast(input_size, tf.float32) / tf.cast(scaled_size, tf.float32)
  source = tf.cast(tf.floor((tf.cast(scaled_index, tf.float32) + 0.5) * ratio), tf.int32)
  return tf.clip_by_value(source, 0, input_size - 1), scaled_index < scaled_size


def scale_jitter(
  example: Example,
  output_size: Sequence[int],
  scale_range: Sequence[float],
  seed: tf.Tensor,
) -> dict[str, tf.Tensor]:
  """Resizes by a random scale in `scale_range` of `output_size`, crops/pads to `output_size`.

  Boxes go in normalised and come out in absolute output pixels, clipped to the output; objects
  whose box is empty after the crop are dropped (as in Model Garden's Mask R-CNN parser), and so
  are those with no mask pixel left in the output. Adds 'image_info'.
  """
  output_height, output_width = (int(v) for v in output_size)
  scale_min, scale_max = (float(v) for v in scale_range)
  if not 0 < scale_min <= scale_max:
    raise ValueError(f'scale_range must be (min, max) with 0 < min <= max, got {scale_range}')
  scale_seed, offset_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  scale = tf.random.stateless_uniform([], scale_seed, scale_min, scale_max)
  target_size = tf.round(scale * tf.constant([output_height, output_width], tf.float32))
  image = example[IMAGE]
  # Model Garden's resize keeps the aspect ratio and reports the scale it applied.
  resized, resize_info = preprocess_ops.resize_and_crop_image(image, target_size, padded_size=None)
  image_size = tf.shape(image)[:2]
  scaled_size = tf.shape(resized)[:2]
  image_scale = resize_info[2]
  output = tf.constant([output_height, output_width], tf.int32)
  max_offset = tf.cast(tf.maximum(scaled_size - output, 0), tf.float32)
  offset = tf.cast(max_offset * tf.random.stateless_uniform([2], offset_seed), tf.int32)

  cropped = resized[offset[0] : offset[0] + output_height, offset[1] : offset[1] + output_width]
  out_image = tf.image.pad_to_bounding_box(cropped, 0, 0, output_height, output_width)

  rows, rows_inside = _nearest_indices(image_size[0], scaled_size[0], offset[0], output_height)
  cols, cols_inside = _nearest_indices(image_size[1], scaled_size[1], offset[1], output_width)
  masks = tf.gather(tf.gather(example[MASKS], rows, axis=1), cols, axis=2)
  inside = tf.logical_and(rows_inside[:, None], cols_inside[None, :])
  masks = tf.where(inside[None], masks, tf.zeros_like(masks))

  boxes = box_ops.denormalize_boxes(tf.cast(example[BOXES], tf.float32), image_size)
  boxes = preprocess_ops.resize_and_crop_boxes(
    boxes, image_scale, output, tf.cast(offset, tf.float32)
  )
  result = dict(example)
  result.update({IMAGE: out_image, BOXES: boxes, MASKS: masks})
  result[IMAGE_INFO] = tf.stack(
    [
      tf.cast(image_size, tf.float32),
      tf.cast(output, tf.float32),
      image_scale,
      tf.cast(offset, tf.float32),
    ]
  )
  # An object none of whose mask pixels is in the output would be pasted as nothing, and its box
  # would label whatever lies there.
  has_pixels = tf.reduce_any(_binary(masks), axis=[1, 2])
  has_box = tf.logical_and(boxes[:, 2] > boxes[:, 0], boxes[:, 3] > boxes[:, 1])
  return _gather_instances(result, tf.where(tf.logical_and(has_box, has_pixels))[:, 0])


def select_random_subset(example: Example, seed: tf.Tensor) -> dict[str, tf.Tensor]:
  """Keeps m of the N objects: m uniform in 0..N, the objects a uniformly random choice."""
  count_seed, order_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  num_objects = tf.shape(example[CLASSES])[0]
  num_kept = tf.random.stateless_uniform(
    [], count_seed, minval=0, maxval=num_objects + 1, dtype=tf.int32
  )
  order = tf.argsort(tf.random.stateless_uniform([num_objects], order_seed))
  return _gather_instances(example, order[:num_kept])


def _binary(masks: tf.Tensor) -> tf.Tensor:
  return tf.cast(masks, tf.float32) > 0.5


def paste_alpha(
  masks: tf.Tensor, blend_sigma: float = 0.0, blend_kernel_size: int = DEFAULT_BLEND_KERNEL_SIZE
) -> tf.Tensor:
  """float [H, W] alpha of the pasted objects: the union of `masks` [N, H, W], Gaussian-smoothed
  when `blend_sigma` > 0 (the paper's optional blending; it reports no gain from it)."""
  alpha = tf.cast(tf.reduce_any(_binary(masks), axis=0), tf.float32)
  if blend_sigma > 0:
    alpha = augment.gaussian_filter2d(
      alpha, blend_kernel_size, blend_sigma, padding='CONSTANT', constant_values=0
    )
  return alpha


def boxes_from_masks(masks: tf.Tensor) -> tf.Tensor:
  """float [N, 4] pixel boxes [ymin, xmin, ymax, xmax] tight around each mask (a pixel's box
  spans [row, row + 1)); all zeros for an empty mask."""

  def extent(occupied):  # occupied: bool [N, size]
    size = tf.shape(occupied)[1]
    index = tf.range(size)[None, :]
    first = tf.reduce_min(tf.where(occupied, index, size), axis=1)
    end = tf.reduce_max(tf.where(occupied, index + 1, 0), axis=1)
    return first, end

  binary = _binary(masks)
  ymin, ymax = extent(tf.reduce_any(binary, axis=2))
  xmin, xmax = extent(tf.reduce_any(binary, axis=1))
  boxes = tf.cast(tf.stack([ymin, xmin, ymax, xmax], axis=1), tf.float32)
  not_empty = tf.reduce_any(binary, axis=[1, 2])
  return tf.where(not_empty[:, None], boxes, tf.zeros_like(boxes))


def paste(
  destination: Example,
  pasted: Example,
  min_visible_area: float = DEFAULT_MIN_VISIBLE_AREA,
  blend_sigma: float = 0.0,
  blend_kernel_size: int = DEFAULT_BLEND_KERNEL_SIZE,
) -> dict[str, tf.Tensor]:
  """Pastes every object of `pasted` onto `destination` (both the same size, absolute boxes).

  The image under the alpha becomes `pasted`'s; destination masks lose the pasted pixels; a
  destination object the paste covered is removed if fewer than `min_visible_area` (at least 1)
  of its pixels stay visible, else its box is recomputed from its visible mask; uncovered objects
  keep their boxes. The pasted objects follow the destination's, in their order. Other keys of
  `destination` (e.g. 'image_info') are kept.
  """
  alpha = paste_alpha(pasted[MASKS], blend_sigma, blend_kernel_size)[..., None]
  image = destination[IMAGE] * (1 - alpha) + tf.cast(pasted[IMAGE], destination[IMAGE].dtype) * (
    alpha
  )
  # Occlusion follows the hard union, so a smoothed edge never leaves half-owned pixels.
  pasted_area = tf.reduce_any(_binary(pasted[MASKS]), axis=0)
  masks = destination[MASKS]
  masks = tf.where(pasted_area[None], tf.zeros_like(masks), masks)
  was_visible = _binary(destination[MASKS])
  covered = tf.reduce_any(tf.logical_and(was_visible, pasted_area[None]), axis=[1, 2])
  visible_area = tf.reduce_sum(tf.cast(_binary(masks), tf.float32), axis=[1, 2])
  keep = tf.logical_or(
    tf.logical_not(covered), visible_area >= tf.maximum(float(min_visible_area), 1.0)
  )
  boxes = tf.where(
    covered[:, None], boxes_from_masks(masks), tf.cast(destination[BOXES], tf.float32)
  )
  result = dict(destination)
  result.update({IMAGE: image, BOXES: boxes, MASKS: masks})
  result = _gather_instances(result, tf.where(keep)[:, 0])
  for key in INSTANCE_KEYS:
    result[key] = tf.concat([result[key], tf.cast(pasted[key], result[key].dtype)], axis=0)
  return result


def clip_or_pad_instances(example: Example, max_num_instances: int) -> dict[str, tf.Tensor]:
  """Keeps the first `max_num_instances` objects, padding boxes and classes with -1 (as Model
  Garden's parsers do) and masks with 0; 'num_instances' says how many rows are real."""
  result = dict(example)
  result[NUM_INSTANCES] = tf.minimum(tf.shape(example[CLASSES])[0], max_num_instances)
  for key, pad_value in ((BOXES, -1), (CLASSES, -1), (MASKS, 0)):
    result[key] = preprocess_ops.clip_or_pad_to_fixed_size(
      example[key], max_num_instances, pad_value
    )
  return result


def copy_paste(
  destination: Example,
  source: Example,
  output_size: Sequence[int],
  seed: tf.Tensor,
  scale_range: Sequence[float] = LARGE_SCALE_JITTER,
  flip_prob: float = 0.5,
  min_visible_area: float = DEFAULT_MIN_VISIBLE_AREA,
  blend_sigma: float = 0.0,
  blend_kernel_size: int = DEFAULT_BLEND_KERNEL_SIZE,
  max_num_instances: int | None = None,
) -> dict[str, tf.Tensor]:
  """Simple Copy-Paste of a random subset of `source`'s objects onto `destination`.

  Both inputs are decoded examples with normalised boxes (see the module docstring); each is
  flipped and scale-jittered independently to `output_size`. The result has absolute boxes,
  `destination`'s 'image_info', and, if `max_num_instances` is set, fixed-size instance tensors
  with 'num_instances'.
  """
  check_example(destination, 'destination')
  check_example(source, 'source')
  checks = _assert_one_mask_per_box(destination, 'destination') + _assert_one_mask_per_box(
    source, 'source'
  )
  with tf.control_dependencies(checks):
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 5))
  destination = random_horizontal_flip(destination, seeds[0], flip_prob)
  destination = scale_jitter(destination, output_size, scale_range, seeds[1])
  source = random_horizontal_flip(source, seeds[2], flip_prob)
  source = scale_jitter(source, output_size, scale_range, seeds[3])
  pasted = select_random_subset(source, seeds[4])
  result = paste(
    destination,
    {key: pasted[key] for key in (IMAGE, *INSTANCE_KEYS)},
    min_visible_area,
    blend_sigma,
    blend_kernel_size,
  )
  if max_num_instances is not None:
    result = clip_or_pad_instances(result, max_num_instances)
  return result
