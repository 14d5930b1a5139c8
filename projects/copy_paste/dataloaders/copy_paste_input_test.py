"""Tests for the Copy-Paste Mask R-CNN input: Model Garden's InputReader over tiny COCO TFRecords
with the paste-source stream, label shapes and padding, determinism, and clear errors."""

import os

import numpy as np
import pytest
import tensorflow as tf
from official.core import input_reader
from official.vision.configs import maskrcnn as maskrcnn_config
from official.vision.dataloaders import tf_example_decoder

from projects.common.detection import coco_conversion, tiny_coco
from projects.copy_paste.dataloaders import copy_paste_input

OUTPUT_SIZE = 64
MAX_INSTANCES = 6
MASK_CROP = 14
BATCH = 4


def write_tiny_coco_tfrecords(root: str) -> str:
  """tiny_coco's images (with a crowd and an empty image) as one TFRecord shard with masks;
  returns its file pattern."""
  image_dir, json_path = tiny_coco.write_dataset(root, tiny_coco.coco_dict())
  output_dir = os.path.join(root, 'tfrecords')
  coco_conversion.convert_coco(
    image_dir, json_path, output_dir, num_shards=1, include_masks=True, num_workers=0
  )
  return os.path.join(output_dir, '*.tfrecord')


@pytest.fixture(scope='module')
def tfrecord_pattern(tmp_path_factory):
  return write_tiny_coco_tfrecords(str(tmp_path_factory.mktemp('tiny_coco')))


def _parser(**overrides):
  kwargs = {
    'output_size': [OUTPUT_SIZE, OUTPUT_SIZE],
    'min_level': 3,
    'max_level': 5,
    'num_scales': 1,
    'aspect_ratios': [1.0],
    'anchor_size': 2.0,
    'aug_rand_hflip': True,
    'aug_scale_min': 0.5,
    'aug_scale_max': 2.0,
    'max_num_instances': MAX_INSTANCES,
    'include_mask': True,
    'mask_crop_size': MASK_CROP,
    'min_visible_area': 4,
  }
  kwargs.update(overrides)
  return copy_paste_input.Parser(**kwargs)


def _read(pattern, seed, parser=None):
  params = maskrcnn_config.DataConfig(
    input_path=pattern,
    global_batch_size=BATCH,
    is_training=True,
    shuffle_buffer_size=3,
    seed=seed,
    deterministic=True,
  )
  reader = input_reader.InputReader(
    params,
    decoder_fn=tf_example_decoder.TfExampleDecoder(include_mask=True).decode,
    sample_fn=copy_paste_input.paste_source_sample_fn(params.shuffle_buffer_size, seed),
    parser_fn=(parser or _parser()).parse_fn(is_training=True),
  )
  return next(iter(reader.read()))


@pytest.fixture(scope='module')
def first_batch(tfrecord_pattern):
  return _read(tfrecord_pattern, seed=5)


def test_batches_have_model_gardens_training_labels(first_batch):
  images, labels = first_batch
  assert images.shape == (BATCH, OUTPUT_SIZE, OUTPUT_SIZE, 3)
  assert labels['gt_boxes'].shape == (BATCH, MAX_INSTANCES, 4)
  assert labels['gt_masks'].shape == (BATCH, MAX_INSTANCES, MASK_CROP, MASK_CROP)
  assert labels['image_info'].shape == (BATCH, 4, 2)
  assert set(labels['rpn_score_targets']) == {'3', '4', '5'}
  classes = labels['gt_classes'].numpy()
  real = classes >= 0
  # Padding rows are -1 everywhere; real rows hold the dataset's ids (1, 3) inside the image.
  np.testing.assert_array_equal(labels['gt_boxes'].numpy()[~real], -1)
  assert set(classes[real].tolist()) <= {1, 3}
  boxes = labels['gt_boxes'].numpy()[real]
  assert np.all(boxes >= 0) and np.all(boxes <= OUTPUT_SIZE)
  assert np.all(boxes[:, 2:] > boxes[:, :2])
  # Each real object's mask target has foreground (its box was cut around its visible mask).
  assert np.all(labels['gt_masks'].numpy()[real].max(axis=(1, 2)) > 0.4)


def test_same_seed_same_batch(tfrecord_pattern, first_batch):
  first_images, first_labels = first_batch
  second_images, second_labels = _read(tfrecord_pattern, seed=5)
  np.testing.assert_array_equal(first_images.numpy(), second_images.numpy())
  np.testing.assert_array_equal(first_labels['gt_boxes'].numpy(), second_labels['gt_boxes'].numpy())


def test_parser_without_masks_is_an_error():
  with pytest.raises(ValueError, match='include_mask=True'):
    _parser(include_mask=False)


def test_element_without_paste_source_is_an_error(tfrecord_pattern):
  decoded = tf_example_decoder.TfExampleDecoder(include_mask=True).decode(
    next(iter(tf.data.TFRecordDataset(tf.io.gfile.glob(tfrecord_pattern))))
  )
  with pytest.raises(ValueError, match='paste_source_sample_fn'):
    _parser().parse_fn(is_training=True)(decoded)


def test_evaluation_is_model_gardens(tfrecord_pattern):
  decoded = tf_example_decoder.TfExampleDecoder(include_mask=True).decode(
    next(iter(tf.data.TFRecordDataset(tf.io.gfile.glob(tfrecord_pattern))))
  )
  image, labels = _parser().parse_fn(is_training=False)(decoded)
  assert image.shape == (OUTPUT_SIZE, OUTPUT_SIZE, 3)
  assert labels['groundtruths']['boxes'].shape == (MAX_INSTANCES, 4)


def test_paste_sources_come_from_another_dataset():
  # Destinations are the numbers 0..4, the other dataset's examples 100..102.
  def decoded(values):
    return tf.data.Dataset.from_tensor_slices({'value': tf.constant(values, tf.int64)})

  sample = copy_paste_input.paste_source_sample_fn(
    2, seed=1, paste_sources=decoded([100, 101, 102])
  )
  pairs = list(sample(decoded([0, 1, 2, 3, 4])))
  assert [int(p[copy_paste_input.DESTINATION]['value']) for p in pairs] == [0, 1, 2, 3, 4]
  sources = [int(p[copy_paste_input.PASTE_SOURCE]['value']) for p in pairs]
  # Repeated: five destinations draw from three paste sources.
  assert set(sources) <= {100, 101, 102} and len(sources) == 5
