"""Mask R-CNN input with Simple Copy-Paste: Model Garden's parser, whose training examples paste
objects from a second, independently shuffled stream of the same training data.

Use both pieces with Model Garden's InputReader: `paste_source_sample_fn` as its `sample_fn`
(it pairs each decoded example with another one and a seed) and `Parser.parse_fn` as its
`parser_fn`; `build_inputs` does so for a Mask R-CNN task config. Evaluation is Model Garden's,
unchanged.
"""

from collections.abc import Callable, Mapping

import tensorflow as tf
from official.common import dataset_fn as dataset_fn_lib
from official.vision.configs import maskrcnn as mg_maskrcnn
from official.vision.dataloaders import (
  input_reader,
  input_reader_factory,
  maskrcnn_input,
  tf_example_decoder,
  tf_example_label_map_decoder,
)
from official.vision.ops import anchor, box_ops, preprocess_ops

from projects.copy_paste.ops import copy_paste as cp

DESTINATION = 'destination'
PASTE_SOURCE = 'paste_source'
SEED = 'seed'


def paste_source_sample_fn(
  shuffle_buffer_size: int,
  seed: int | None = None,
  paste_sources: tf.data.Dataset | None = None,
) -> Callable[[tf.data.Dataset], tf.data.Dataset]:
  """A `sample_fn` turning a stream of decoded examples into {'destination', 'paste_source',
  'seed'} elements: the paste source comes from the same stream, read again and shuffled with
  its own buffer (or from `paste_sources`, decoded examples of another dataset, repeated); the
  seed ([2] int64) drives the stateless augmentation of the pair."""

  def sample(decoded: tf.data.Dataset) -> tf.data.Dataset:
    # A different shuffle seed for the second read, so the pair is not the same example twice.
    paste_seed = None if seed is None else seed + 1
    if paste_sources is None:
      sources = decoded.shuffle(shuffle_buffer_size, seed=paste_seed)
    else:
      sources = paste_sources.repeat().shuffle(shuffle_buffer_size, seed=paste_seed)
    seeds = tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)
    return tf.data.Dataset.zip((decoded, sources, seeds)).map(
      lambda destination, source, pair_seed: {
        DESTINATION: destination,
        PASTE_SOURCE: source,
        SEED: pair_seed,
      }
    )

  return sample


class Parser(maskrcnn_input.Parser):
  """Model Garden's Mask R-CNN parser; training examples are Copy-Paste composites.

  Takes Model Garden's arguments (its flip and `aug_scale_min`/`aug_scale_max` set the flip and
  jitter of both images of a pair) plus `min_visible_area` and `blend_sigma` /
  `blend_kernel_size` of `projects.copy_paste.ops.copy_paste.paste`. Masks are required.
  """

  def __init__(
    self,
    *args,
    min_visible_area: float = cp.DEFAULT_MIN_VISIBLE_AREA,
    blend_sigma: float = 0.0,
    blend_kernel_size: int = cp.DEFAULT_BLEND_KERNEL_SIZE,
    **kwargs,
  ):
    super().__init__(*args, **kwargs)
    if not self._include_mask:
      raise ValueError('Copy-Paste pastes instance masks: the parser needs include_mask=True')
    if self._aug_rand_vflip:
      raise ValueError(
        'aug_rand_vflip is not supported with Copy-Paste (the paper flips horizontally only)'
      )
    self._min_visible_area = min_visible_area
    self._blend_sigma = blend_sigma
    self._blend_kernel_size = blend_kernel_size

  def _example(self, decoded: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """A decoded record as a Copy-Paste example: crowds dropped, image normalised."""
    example = {
      cp.IMAGE: decoded['image'],
      cp.BOXES: decoded['groundtruth_boxes'],
      cp.CLASSES: decoded['groundtruth_classes'],
    }
    if 'groundtruth_instance_masks' in decoded:
      # uint8 masks take a quarter of float32's memory at output size.
      example[cp.MASKS] = tf.cast(decoded['groundtruth_instance_masks'] > 0.5, tf.uint8)
    if self._skip_crowd_during_training:
      not_crowd = tf.where(tf.logical_not(decoded['groundtruth_is_crowd']))[:, 0]
      for key in cp.INSTANCE_KEYS:
        if key in example:
          example[key] = tf.gather(example[key], not_crowd)
    if self._augmenter is not None:
      example[cp.IMAGE] = self._augmenter.distort(example[cp.IMAGE])
    example[cp.IMAGE] = preprocess_ops.normalize_image(example[cp.IMAGE])
    return example

  def _parse_train_data(self, data):
    """(image, labels) as Model Garden's `_parse_train_data` gives them, for the composite of
    `data['destination']` with objects of `data['paste_source']`."""
    if DESTINATION not in data:
      raise ValueError(
        f'the Copy-Paste parser needs {DESTINATION!r}, {PASTE_SOURCE!r} and {SEED!r} in each '
        f'training element (use paste_source_sample_fn as the sample_fn); got {sorted(data)}'
      )
    output_size = [int(v) for v in self._output_size]
    result = cp.copy_paste(
      self._example(data[DESTINATION]),
      self._example(data[PASTE_SOURCE]),
      output_size,
      data[SEED],
      scale_range=(self._aug_scale_min, self._aug_scale_max),
      flip_prob=0.5 if self._aug_rand_hflip else 0.0,
      min_visible_area=self._min_visible_area,
      blend_sigma=self._blend_sigma,
      blend_kernel_size=self._blend_kernel_size,
    )
    image_info = result[cp.IMAGE_INFO]
    padded_size = preprocess_ops.compute_padded_size(output_size, 2**self._max_level)
    image = tf.image.pad_to_bounding_box(result[cp.IMAGE], 0, 0, *padded_size)
    boxes, classes = result[cp.BOXES], result[cp.CLASSES]

    # Mask targets are cut from the output-size masks (Model Garden cuts them from the
    # original-size ones; after the paste only the output-size masks are right).
    outer_boxes = box_ops.compute_outer_boxes(boxes, image_info[1, :], self._outer_boxes_scale)
    masks = tf.image.crop_and_resize(
      tf.expand_dims(result[cp.MASKS], axis=-1),
      box_ops.normalize_boxes(outer_boxes, output_size),
      box_indices=tf.range(tf.shape(boxes)[0], dtype=tf.int32),
      crop_size=[self._mask_crop_size, self._mask_crop_size],
      method='bilinear',
    )
    masks = tf.squeeze(masks, axis=-1)

    input_anchor = anchor.build_anchor_generator(
      min_level=self._min_level,
      max_level=self._max_level,
      num_scales=self._num_scales,
      aspect_ratios=self._aspect_ratios,
      anchor_size=self._anchor_size,
    )
    anchor_boxes = input_anchor(image_size=padded_size)
    anchor_labeler = anchor.RpnAnchorLabeler(
      self._rpn_match_threshold,
      self._rpn_unmatched_threshold,
      self._rpn_batch_size_per_im,
      self._rpn_fg_fraction,
    )
    rpn_score_targets, rpn_box_targets = anchor_labeler.label_anchors(
      anchor_boxes, boxes, tf.cast(tf.expand_dims(classes, axis=-1), dtype=tf.float32)
    )

    def pad(tensor):
      return preprocess_ops.clip_or_pad_to_fixed_size(tensor, self._max_num_instances, -1)

    labels = {
      'anchor_boxes': anchor_boxes,
      'image_info': image_info,
      'rpn_score_targets': rpn_score_targets,
      'rpn_box_targets': rpn_box_targets,
      'gt_boxes': pad(boxes),
      'gt_classes': pad(classes),
      'gt_outer_boxes': pad(outer_boxes),
      'gt_masks': pad(masks),
    }
    return tf.cast(image, self._dtype), labels


def _decoder(params: mg_maskrcnn.DataConfig):
  decoder_config = params.decoder.get()
  common = {
    'include_mask': True,
    'regenerate_source_id': decoder_config.regenerate_source_id,
    'mask_binarize_threshold': decoder_config.mask_binarize_threshold,
  }
  if params.decoder.type == 'simple_decoder':
    return tf_example_decoder.TfExampleDecoder(**common)
  if params.decoder.type == 'label_map_decoder':
    return tf_example_label_map_decoder.TfExampleDecoderLabelMap(
      label_map=decoder_config.label_map, **common
    )
  raise ValueError(f'unknown decoder type {params.decoder.type!r} in the data config')


def build_inputs(
  task_config: mg_maskrcnn.MaskRCNNTask,
  params: mg_maskrcnn.DataConfig,
  input_context: tf.distribute.InputContext | None = None,
  min_visible_area: float = cp.DEFAULT_MIN_VISIBLE_AREA,
  blend_sigma: float = 0.0,
  blend_kernel_size: int = cp.DEFAULT_BLEND_KERNEL_SIZE,
  paste_source_input_path: str = '',
) -> tf.data.Dataset:
  """The training input of a Mask R-CNN `task_config` as Model Garden's MaskRCNNTask builds it,
  with Copy-Paste (`params` must be a training config: evaluation needs no pastes). Objects are
  pasted from the training data itself, or from the files `paste_source_input_path` matches."""
  if not params.is_training:
    raise ValueError('Copy-Paste input is for training data (is_training=True)')
  if not task_config.model.include_mask:
    raise ValueError('Copy-Paste pastes instance masks: set task.model.include_mask=True')
  model = task_config.model
  parser = Parser(
    output_size=model.input_size[:2],
    min_level=model.min_level,
    max_level=model.max_level,
    num_scales=model.anchor.num_scales,
    aspect_ratios=model.anchor.aspect_ratios,
    anchor_size=model.anchor.anchor_size,
    rpn_match_threshold=params.parser.rpn_match_threshold,
    rpn_unmatched_threshold=params.parser.rpn_unmatched_threshold,
    rpn_batch_size_per_im=params.parser.rpn_batch_size_per_im,
    rpn_fg_fraction=params.parser.rpn_fg_fraction,
    aug_rand_hflip=params.parser.aug_rand_hflip,
    aug_rand_vflip=params.parser.aug_rand_vflip,
    aug_scale_min=params.parser.aug_scale_min,
    aug_scale_max=params.parser.aug_scale_max,
    aug_type=params.parser.aug_type,
    skip_crowd_during_training=params.parser.skip_crowd_during_training,
    max_num_instances=params.parser.max_num_instances,
    include_mask=True,
    outer_boxes_scale=model.outer_boxes_scale,
    mask_crop_size=params.parser.mask_crop_size,
    dtype=params.dtype,
    min_visible_area=min_visible_area,
    blend_sigma=blend_sigma,
    blend_kernel_size=blend_kernel_size,
  )
  dataset_fn = dataset_fn_lib.pick_dataset_fn(params.file_type)
  paste_sources = None
  if paste_source_input_path:
    files = tf.data.Dataset.list_files(paste_source_input_path, shuffle=True, seed=params.seed)
    paste_sources = files.interleave(
      dataset_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=params.deterministic
    ).map(_decoder(params).decode, num_parallel_calls=tf.data.AUTOTUNE)
  reader = input_reader_factory.input_reader_generator(
    params,
    dataset_fn=dataset_fn,
    decoder_fn=_decoder(params).decode,
    combine_fn=input_reader.create_combine_fn(params),
    sample_fn=paste_source_sample_fn(params.shuffle_buffer_size, params.seed, paste_sources),
    parser_fn=parser.parse_fn(params.is_training),
  )
  return reader.read(input_context=input_context)
