"""Tests for the built-in digit scenes detection dataset."""

import colorsys
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from official.vision.dataloaders import tf_example_decoder
from official.vision.evaluation import coco_evaluator
from PIL import Image
from pycocotools.coco import COCO

from projects.common.datasets import cache, digit_scenes, moving_mnist

TINY = dict(
  num_train=12,
  num_validation=6,
  image_size=64,
  digits_per_image=(2, 4),
  digit_size_range_px=(12, 32),
  seed=5,
  num_shards=2,
)


def _file_bytes(directory: str) -> dict[str, bytes]:
  """The dataset's files, without the converter's run records (they hold times and paths)."""
  contents = {}
  for parent, _, names in os.walk(directory):
    for name in names:
      if name.startswith('.') or name == 'summary.json':
        continue
      path = os.path.join(parent, name)
      with open(path, 'rb') as f:
        contents[os.path.relpath(path, directory)] = f.read()
  return contents


def _params(**overrides) -> dict:
  return {
    'seed': TINY['seed'],
    'image_size': TINY['image_size'],
    'digits_per_image': list(TINY['digits_per_image']),
    'digit_size_range_px': list(TINY['digit_size_range_px']),
    'min_visible_fraction': 0.7,
    'num_train': TINY['num_train'],
    'num_validation': TINY['num_validation'],
    **overrides,
  }


def _hues(pixels: np.ndarray) -> np.ndarray:
  return np.array([colorsys.rgb_to_hsv(*(p / 255.0))[0] for p in pixels])


def _circular_distance(a: np.ndarray, b: float) -> np.ndarray:
  return np.minimum(np.abs(a - b), 1 - np.abs(a - b))


def _padded_batch(values: tf.Tensor, count: int) -> tf.Tensor:
  """A batch of one, padded with zeros to `count` detections (the evaluator's fixed count);
  class 0, which no annotation has, and score 0."""
  padding = [[0, count - tf.shape(values)[0]]] + [[0, 0]] * (values.shape.rank - 1)
  return tf.pad(values, padding)[tf.newaxis]


@pytest.fixture(scope='module')
def mnist():
  return moving_mnist.load_mnist_digits()


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  return digit_scenes.build_digit_scenes(cache_dir=str(tmp_path_factory.mktemp('ds')), **TINY)


@pytest.fixture(scope='module')
def tiny_scenes(mnist):
  """The scenes behind `tiny`, rendered again in memory (before JPEG)."""
  digits, labels = mnist
  pools = dict(zip(digit_scenes.SPLITS, moving_mnist.split_digit_indices(labels), strict=True))
  photos = digit_scenes.load_background_photos()
  return {
    split: digit_scenes.split_scenes(split, pools[split], digits, labels, photos, _params())
    for split in digit_scenes.SPLITS
  }


def test_scale_digit_sets_longer_side_and_keeps_ink(mnist):
  digits, _ = mnist
  for digit in digits[:50]:
    rows, cols = np.nonzero(digit >= digit_scenes.INK_THRESHOLD)
    ink_box = (np.ptp(rows) + 1, np.ptp(cols) + 1)
    for size_px in (12, 40):
      intensity = digit_scenes.scale_digit(digit, size_px)
      assert max(intensity.shape) == size_px
      # Cut to the ink box: resampling may fade a one-pixel edge, never more than a source pixel.
      margin = size_px / max(ink_box) + 1
      scaled_rows, scaled_cols = np.nonzero(intensity >= digit_scenes.INK_THRESHOLD)
      for coordinates, side in (
        (scaled_rows, intensity.shape[0]),
        (scaled_cols, intensity.shape[1]),
      ):
        assert coordinates.min() <= margin and coordinates.max() >= side - 1 - margin


def test_masks_are_exactly_the_visible_pixels_of_each_digit(mnist):
  digits, _ = mnist
  black = np.zeros((64, 64, 3), np.uint8)
  checked_overlaps = 0
  for seed in range(20):
    rng = np.random.default_rng(seed)
    image, masks, pasted = digit_scenes.render_scene(rng, black, digits[:5], (16, 40), 0.5)
    assert masks.dtype == bool and masks.shape[1:] == (64, 64)
    assert list(pasted) == sorted(set(pasted.tolist()))
    # Disjoint, and together exactly the pixels that differ from the background.
    assert masks.sum(axis=0).max() <= 1
    np.testing.assert_array_equal(masks.any(axis=0), image.any(axis=-1))
    # Every pixel of a mask shows that instance's colour (colours differ in hue and shading
    # keeps the hue), so pixels a later digit covers are in the later digit's mask only.
    median_hues = []
    for mask in masks:
      assert mask.any()
      hues = _hues(image[mask].astype(np.float64))
      median_hue = float(np.median(hues))
      assert _circular_distance(hues, median_hue).max() < 0.02
      median_hues.append(median_hue)
    for i in range(len(median_hues)):
      for j in range(i):
        assert _circular_distance(np.array(median_hues[i]), median_hues[j]) > 0.05
    checked_overlaps += len(pasted) > 1
  assert checked_overlaps > 0


def test_each_instance_keeps_its_minimum_visible_fraction(mnist):
  digits, _ = mnist
  background = np.zeros((48, 48, 3), np.uint8)
  for seed in range(10):
    # Pasting twice with the same stream: once with all digits, once stopping after each one,
    # gives every instance's area before anything covered it.
    image, masks, pasted = digit_scenes.render_scene(
      np.random.default_rng(seed), background, digits[:6], (16, 30), 0.6
    )
    for k in range(len(pasted)):
      alone = np.random.default_rng(seed)
      _, prefix_masks, prefix_pasted = digit_scenes.render_scene(
        alone, background, digits[: pasted[k] + 1], (16, 30), 0.6
      )
      assert list(prefix_pasted) == list(pasted[: k + 1])
      assert masks[k].sum() >= 0.6 * prefix_masks[-1].sum()
      # Later digits only ever remove pixels from an instance.
      assert not (masks[k] & ~prefix_masks[-1]).any()


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tiny, tmp_path):
  again = digit_scenes.build_digit_scenes(cache_dir=str(tmp_path / 'again'), **TINY)
  assert _file_bytes(again.directory) == _file_bytes(tiny.directory)
  other = digit_scenes.build_digit_scenes(
    cache_dir=str(tmp_path / 'other'), **{**TINY, 'seed': TINY['seed'] + 1}
  )
  assert os.path.basename(other.directory) != os.path.basename(tiny.directory)
  with open(other.train_annotation_file) as a, open(tiny.train_annotation_file) as b:
    assert json.load(a)['annotations'] != json.load(b)['annotations']


def test_coco_json_matches_rendered_masks(tiny, tiny_scenes):
  for split in digit_scenes.SPLITS:
    coco = COCO(getattr(tiny, f'{split}_annotation_file'))
    image_dir = getattr(tiny, f'{split}_image_dir')
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(digit_scenes.CATEGORY_NAMES)
    assert coco.getCatIds() == list(range(1, 11))
    image_ids = sorted(coco.getImgIds())
    assert len(image_ids) == getattr(tiny, f'num_{split}')
    for image_id, (photo_name, scene) in zip(image_ids, tiny_scenes[split], strict=True):
      image = coco.loadImgs(image_id)[0]
      assert image['background'] == photo_name
      pixels = np.asarray(Image.open(os.path.join(image_dir, image['file_name'])))
      assert pixels.shape == (TINY['image_size'], TINY['image_size'], 3)
      annotations = sorted(coco.loadAnns(coco.getAnnIds(imgIds=image_id)), key=lambda a: a['id'])
      assert len(annotations) == len(scene.masks)
      for annotation, mask, digit_class in zip(
        annotations, scene.masks, scene.classes, strict=True
      ):
        decoded = coco.annToMask(annotation).astype(bool)
        np.testing.assert_array_equal(decoded, mask)
        assert annotation['category_id'] == digit_class + 1
        assert annotation['iscrowd'] == 0
        assert annotation['area'] == mask.sum()
        rows, cols = np.nonzero(mask)
        x, y, w, h = annotation['bbox']
        # Tight: the box's first and last rows and columns all hold mask pixels.
        assert (x, y) == (cols.min(), rows.min())
        assert (x + w - 1, y + h - 1) == (cols.max(), rows.max())


def test_tfrecords_decode_to_the_coco_annotations(tiny):
  decoder = tf_example_decoder.TfExampleDecoder(include_mask=True)
  size = TINY['image_size']
  for split in digit_scenes.SPLITS:
    coco = COCO(getattr(tiny, f'{split}_annotation_file'))
    pattern = getattr(tiny, f'{split}_pattern')
    shards = sorted(tf.io.gfile.glob(pattern))
    assert len(shards) == TINY['num_shards']
    seen = set()
    for record in tf.data.TFRecordDataset(shards):
      decoded = decoder.decode(record)
      image_id = int(decoded['source_id'].numpy())
      seen.add(image_id)
      annotations = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
      assert decoded['image'].shape == (size, size, 3)
      np.testing.assert_array_equal(
        decoded['groundtruth_classes'].numpy(), [a['category_id'] for a in annotations]
      )
      # Model Garden boxes: normalised (ymin, xmin, ymax, xmax).
      expected_boxes = [[y, x, y + h, x + w] for x, y, w, h in (a['bbox'] for a in annotations)]
      np.testing.assert_allclose(
        decoded['groundtruth_boxes'].numpy() * size, expected_boxes, atol=1e-4
      )
      np.testing.assert_array_equal(
        decoded['groundtruth_instance_masks'].numpy(),
        [coco.annToMask(a).astype(np.float32) for a in annotations],
      )
    assert seen == set(coco.getImgIds())


def test_model_garden_evaluator_scores_the_ground_truth_boxes_perfectly(tiny):
  evaluator = coco_evaluator.COCOEvaluator(
    annotation_file=tiny.validation_annotation_file,
    include_mask=False,
    need_rescale_bboxes=False,
  )
  decoder = tf_example_decoder.TfExampleDecoder()
  size = TINY['image_size']
  max_digits = TINY['digits_per_image'][1]
  for record in tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(tiny.validation_pattern))):
    decoded = decoder.decode(record)
    num_boxes = tf.shape(decoded['groundtruth_boxes'])[0]
    # The ground truth itself as the detections, in batches of one.
    evaluator.update_state(
      None,
      {
        'source_id': tf.strings.to_number(decoded['source_id'], tf.int64)[tf.newaxis],
        'num_detections': num_boxes[tf.newaxis],
        'detection_boxes': _padded_batch(decoded['groundtruth_boxes'] * size, max_digits),
        'detection_classes': _padded_batch(decoded['groundtruth_classes'], max_digits),
        'detection_scores': _padded_batch(tf.ones([num_boxes]), max_digits),
      },
    )
  metrics = evaluator.result()
  assert metrics['AP'] == pytest.approx(1.0)


def test_digits_come_from_their_own_split_and_match_their_class(tiny, mnist):
  _, labels = mnist
  pools = dict(zip(digit_scenes.SPLITS, moving_mnist.split_digit_indices(labels), strict=True))
  used = {}
  for split in digit_scenes.SPLITS:
    with open(getattr(tiny, f'{split}_annotation_file')) as f:
      annotations = json.load(f)['annotations']
    assert len(annotations) == getattr(tiny, f'num_{split}_instances')
    used[split] = {a['mnist_index'] for a in annotations}
    assert used[split] <= set(pools[split].tolist())
    for annotation in annotations:
      assert annotation['category_id'] == labels[annotation['mnist_index']] + 1
  assert not used['train'] & used['validation']


def test_instances_per_image_stay_in_range(tiny):
  low, high = TINY['digits_per_image']
  with open(tiny.train_annotation_file) as f:
    coco = json.load(f)
  counts = np.bincount([a['image_id'] for a in coco['annotations']], minlength=TINY['num_train'])
  # A digit without a free enough place is left out, so an image may hold fewer than `low`.
  assert 1 <= counts[1:].min() and counts.max() <= high
  assert counts[1:].mean() >= low


def test_second_build_reuses_cache(tmp_path, monkeypatch):
  small = {**TINY, 'num_train': 2, 'num_validation': 2}
  first = digit_scenes.build_digit_scenes(cache_dir=str(tmp_path), **small)
  before = _file_bytes(first.directory)

  def fail_generate(*args):
    raise AssertionError('cached dataset was regenerated')

  monkeypatch.setattr(digit_scenes, '_generate', fail_generate)
  assert digit_scenes.build_digit_scenes(cache_dir=str(tmp_path), **small) == first
  assert _file_bytes(first.directory) == before
  assert os.listdir(tmp_path) == [os.path.basename(first.directory)]


def test_interrupted_generation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
  small = {**TINY, 'num_train': 2, 'num_validation': 2}
  write_split = digit_scenes.write_coco_split

  def write_then_fail(split, *args):
    write_split(split, *args)
    if split == 'validation':
      raise KeyboardInterrupt

  monkeypatch.setattr(digit_scenes, 'write_coco_split', write_then_fail)
  with pytest.raises(KeyboardInterrupt):
    digit_scenes.build_digit_scenes(cache_dir=str(tmp_path), **small)
  assert os.listdir(tmp_path) == []
  monkeypatch.undo()
  info = digit_scenes.build_digit_scenes(cache_dir=str(tmp_path), **small)
  assert os.path.exists(os.path.join(info.directory, cache.MANIFEST_NAME))


def test_cache_root_defaults_to_env_var(tmp_path, monkeypatch):
  monkeypatch.setenv('PROJECTS_DATA_DIR', str(tmp_path))
  info = digit_scenes.build_digit_scenes(**{**TINY, 'num_train': 1, 'num_validation': 1})
  assert os.path.dirname(info.directory) == str(tmp_path)
  assert os.path.basename(info.directory).startswith(f'digit_scenes_v{digit_scenes.VERSION}_')


@pytest.mark.parametrize(
  'override, message',
  [
    ({'digits_per_image': (3, 2)}, 'digits_per_image must be'),
    ({'digit_size_range_px': (12, 80)}, 'digit_size_range_px must be'),
    ({'min_visible_fraction': 0.0}, 'min_visible_fraction must be'),
    ({'num_validation': 0}, 'num_validation must be at least 1'),
  ],
)
def test_rejects_bad_arguments(tmp_path, override, message):
  with pytest.raises(ValueError, match=message):
    digit_scenes.build_digit_scenes(cache_dir=str(tmp_path), **{**TINY, **override})


def test_main_prints_info(tmp_path, capsys):
  digit_scenes.main(
    [f'--cache_dir={tmp_path}', '--num_train=1', '--num_validation=1', '--image_size=64']
  )
  out = capsys.readouterr().out
  assert '"num_train": 1' in out and 'validation_annotation_file' in out
