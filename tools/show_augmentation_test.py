"""Tests for tools/show_augmentation.py: ground truth recovered from Model Garden's training labels
(Mask R-CNN masks pasted back, RetinaNet boxes decoded from anchors), and a Copy-Paste run."""

import numpy as np
import pytest
from official.vision.dataloaders import maskrcnn_input, retinanet_input
from PIL import Image

from projects.copy_paste.dataloaders import copy_paste_input_test
from tools import show_augmentation
from tools.extract_features_test import run_cli

HEIGHT, WIDTH = 48, 64
# Two objects: [top, left, bottom, right] pixels, and their classes.
BLOCKS = [(4, 8, 24, 40), (28, 30, 44, 60)]
CLASSES = [2, 5]
TINY_MASKRCNN = (
  'task.model.input_size=[64,64,3],task.model.num_classes=4,task.train_data.global_batch_size=2,'
  'task.train_data.shuffle_buffer_size=3,task.train_data.parser.mask_crop_size=14,'
  'task.train_data.dtype=float32,task.init_checkpoint=,task.annotation_file='
)


def _decoded_example():
  """An example as Model Garden's TfExampleDecoder gives it."""
  masks = np.zeros((len(BLOCKS), HEIGHT, WIDTH), np.float32)
  for mask, (top, left, bottom, right) in zip(masks, BLOCKS, strict=True):
    mask[top:bottom, left:right] = 1
  boxes = np.array(BLOCKS, np.float32) / [HEIGHT, WIDTH, HEIGHT, WIDTH]
  return {
    'image': np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8),
    'groundtruth_boxes': boxes.astype(np.float32),
    'groundtruth_classes': np.array(CLASSES, np.int64),
    'groundtruth_is_crowd': np.zeros(len(BLOCKS), bool),
    'groundtruth_instance_masks': masks,
  }


def _batch_of_one(labels):
  return {
    key: _batch_of_one(value) if isinstance(value, dict) else np.asarray(value)[None]
    for key, value in labels.items()
  }


def _parser_args():
  # No jitter and an output the size of the image, so the ground truth is the input's.
  return {
    'output_size': [HEIGHT, WIDTH],
    'min_level': 3,
    'max_level': 4,
    'num_scales': 1,
    'aspect_ratios': [1.0],
    'anchor_size': 2.0,
    'max_num_instances': 4,
  }


def test_maskrcnn_ground_truth_pastes_mask_targets_back():
  parser = maskrcnn_input.Parser(**_parser_args(), include_mask=True, mask_crop_size=28)
  image, labels = parser.parse_fn(is_training=True)(_decoded_example())
  labels = _batch_of_one(labels)
  boxes, classes, masks = show_augmentation.maskrcnn_ground_truth(labels, 0, HEIGHT, WIDTH)
  np.testing.assert_array_equal(classes, CLASSES)
  np.testing.assert_allclose(boxes, BLOCKS)
  expected = _decoded_example()['groundtruth_instance_masks'] > 0
  intersection = np.logical_and(masks > 0, expected).sum(axis=(1, 2))
  union = np.logical_or(masks > 0, expected).sum(axis=(1, 2))
  assert np.all(intersection / union > 0.9), intersection / union
  shown = show_augmentation.displayable_image(image.numpy(), labels['image_info'][0])
  np.testing.assert_allclose(shown, _decoded_example()['image'], atol=1)


def test_retinanet_ground_truth_is_decoded_from_anchor_targets():
  parser = retinanet_input.Parser(**_parser_args(), match_threshold=0.3, unmatched_threshold=0.3)
  _, labels = parser.parse_fn(is_training=True)(_decoded_example())
  labels = _batch_of_one(labels)
  boxes, classes, masks = show_augmentation.retinanet_ground_truth(labels, 0, None)
  assert masks is None
  order = np.argsort(classes)
  np.testing.assert_array_equal(classes[order], CLASSES)
  np.testing.assert_allclose(boxes[order], BLOCKS, atol=1e-3)


@pytest.fixture(scope='module')
def tfrecord_pattern(tmp_path_factory):
  return copy_paste_input_test.write_tiny_coco_tfrecords(str(tmp_path_factory.mktemp('tiny_coco')))


def test_copy_paste_run_writes_drawn_pngs(tfrecord_pattern, tmp_path):
  code, stdout, stderr = run_cli(
    show_augmentation.main,
    '--experiment=maskrcnn_resnetfpn_coco',
    f'--params_override={TINY_MASKRCNN},task.train_data.input_path={tfrecord_pattern}',
    f'--output_dir={tmp_path}',
    '--num_images=3',
    '--copy_paste',
    '--min_visible_area=4',
    '--seed=1',
  )
  assert code == 0, stderr
  assert '3 augmented training examples' in stdout
  for index in range(3):
    drawn = np.asarray(Image.open(tmp_path / f'{index}.png'))
    assert drawn.shape == (64, 64, 3)
  assert not (tmp_path / '3.png').exists()


@pytest.mark.parametrize(
  'experiment, flags, expected',
  [
    ('resnet_imagenet', [], 'draws RetinaNet and Mask R-CNN'),
    ('retinanet_resnetfpn_coco', ['--copy_paste'], '--copy_paste needs a Mask R-CNN'),
  ],
)
def test_user_errors(tmp_path, experiment, flags, expected):
  code, _, stderr = run_cli(
    show_augmentation.main, f'--experiment={experiment}', f'--output_dir={tmp_path}', *flags
  )
  assert code == 2
  assert expected in stderr
