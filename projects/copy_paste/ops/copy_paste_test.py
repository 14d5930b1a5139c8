"""Tests for the Copy-Paste ops: pasted pixels, occlusion per object, counts and padding,
jitter geometry, determinism, and running eagerly and inside tf.data."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from projects.copy_paste.ops import copy_paste as cp

SIZE = 32


def _block(top, left, bottom, right, height=SIZE, width=SIZE):
  mask = np.zeros((height, width), np.float32)
  mask[top:bottom, left:right] = 1
  return mask


def _absolute_example(image_value, blocks, classes):
  """An example already at output size: constant image, block masks, boxes tight around them."""
  masks = np.stack([_block(*b) for b in blocks]) if blocks else np.zeros((0, SIZE, SIZE))
  boxes = np.array([[t, left, b, r] for t, left, b, r in blocks], np.float32).reshape(-1, 4)
  return {
    'image': tf.fill([SIZE, SIZE, 3], float(image_value)),
    'boxes': tf.constant(boxes),
    'classes': tf.constant(classes, tf.int64),
    'masks': tf.constant(masks, tf.float32),
  }


def _decoded_example(seed, blocks, classes, height=24, width=40):
  """An example as Model Garden's decoder gives it: random image, normalised boxes."""
  rng = np.random.default_rng(seed)
  masks = [_block(*b, height=height, width=width) for b in blocks]
  boxes = [[t / height, left / width, b / height, r / width] for t, left, b, r in blocks]
  return {
    'image': tf.constant(rng.uniform(0, 1, (height, width, 3)), tf.float32),
    'boxes': tf.constant(np.array(boxes, np.float32).reshape(-1, 4)),
    'classes': tf.constant(classes, tf.int64),
    'masks': tf.constant(np.array(masks, np.float32).reshape(-1, height, width)),
  }


def _numpy(example):
  return {key: value.numpy() for key, value in example.items()}


class PasteTest(tf.test.TestCase, parameterized.TestCase):
  def test_pixels_under_the_alpha_are_the_sources(self):
    rng = np.random.default_rng(0)
    destination = _absolute_example(0.0, [(0, 0, 8, 8)], [1])
    destination['image'] = tf.constant(rng.uniform(size=(SIZE, SIZE, 3)), tf.float32)
    pasted = _absolute_example(0.0, [(4, 4, 20, 12), (10, 20, 30, 30)], [2, 3])
    pasted['image'] = tf.constant(rng.uniform(size=(SIZE, SIZE, 3)), tf.float32)
    result = cp.paste(destination, pasted)
    union = pasted['masks'].numpy().max(axis=0).astype(bool)
    self.assertAllEqual(result['image'].numpy()[union], pasted['image'].numpy()[union])
    self.assertAllEqual(result['image'].numpy()[~union], destination['image'].numpy()[~union])

  def test_smoothed_alpha_blends_only_near_the_edge(self):
    destination = _absolute_example(0.0, [], [])
    pasted = _absolute_example(1.0, [(8, 8, 24, 24)], [2])
    result = cp.paste(destination, pasted, blend_sigma=1.0)
    alpha = cp.paste_alpha(pasted['masks'], blend_sigma=1.0).numpy()
    image = result['image'].numpy()[..., 0]
    self.assertAllClose(image, alpha)
    self.assertAllClose(image[12:20, 12:20], np.ones((8, 8)))  # interior: the source's pixels
    self.assertAllClose(image[:5], np.zeros((5, SIZE)))  # far outside: the destination's
    self.assertTrue(0 < image[8, 16] < 1 and 0 < image[7, 16] < 1)  # the edge is blended

  def test_fully_covered_object_disappears_with_its_box_and_mask(self):
    destination = _absolute_example(0.0, [(2, 2, 10, 10), (20, 20, 30, 30)], [1, 2])
    pasted = _absolute_example(1.0, [(0, 0, 12, 12)], [5])
    result = _numpy(cp.paste(destination, pasted, min_visible_area=1))
    self.assertAllEqual(result['classes'], [2, 5])
    self.assertAllEqual(result['boxes'], [[20, 20, 30, 30], [0, 0, 12, 12]])
    self.assertAllEqual(result['masks'][0], _block(20, 20, 30, 30))
    self.assertAllEqual(result['masks'][1], _block(0, 0, 12, 12))

  def test_partly_covered_object_keeps_a_box_tight_around_its_visible_mask(self):
    destination = _absolute_example(0.0, [(4, 4, 20, 20)], [1])
    # Covers the right half and the bottom-left corner, leaving an L shape's top-left part.
    pasted = _absolute_example(1.0, [(0, 12, 32, 32), (16, 0, 32, 12)], [3, 4])
    result = _numpy(cp.paste(destination, pasted, min_visible_area=10))
    self.assertAllEqual(result['classes'], [1, 3, 4])
    self.assertAllEqual(result['masks'][0], _block(4, 4, 16, 12))
    self.assertAllEqual(result['boxes'][0], [4, 4, 16, 12])

  def test_uncovered_small_object_survives_next_to_a_covered_one(self):
    # Both destination objects are below the visible-area threshold; only one is covered.
    destination = _absolute_example(0.0, [(0, 0, 4, 4), (20, 20, 24, 24)], [1, 2])
    pasted = _absolute_example(1.0, [(0, 0, 3, 4)], [7])
    result = _numpy(cp.paste(destination, pasted, min_visible_area=50))
    self.assertAllEqual(result['classes'], [2, 7])
    self.assertAllEqual(result['boxes'][0], [20, 20, 24, 24])

  def test_uncovered_object_keeps_its_annotated_box(self):
    # Annotated boxes may be looser than masks (COCO's are); only covered objects get new ones.
    destination = _absolute_example(0.0, [(4, 4, 10, 10)], [1])
    destination['boxes'] = tf.constant([[3.5, 3.0, 10.5, 11.0]])
    pasted = _absolute_example(1.0, [(20, 20, 30, 30)], [2])
    result = _numpy(cp.paste(destination, pasted))
    self.assertAllEqual(result['boxes'][0], [3.5, 3.0, 10.5, 11.0])

  def test_nothing_pasted_leaves_the_destination(self):
    destination = _absolute_example(0.5, [(4, 4, 10, 10)], [1])
    result = _numpy(cp.paste(destination, _absolute_example(1.0, [], [])))
    self.assertAllEqual(result['image'], destination['image'].numpy())
    self.assertAllEqual(result['classes'], [1])

  def test_boxes_from_masks(self):
    masks = np.stack([_block(3, 5, 7, 6), np.zeros((SIZE, SIZE), np.float32)])
    masks[0, 30, 1] = 1
    boxes = cp.boxes_from_masks(tf.constant(masks)).numpy()
    self.assertAllEqual(boxes, [[3, 1, 31, 6], [0, 0, 0, 0]])


class CountsAndPaddingTest(tf.test.TestCase):
  def test_padding_rows_follow_the_real_ones(self):
    destination = _absolute_example(0.0, [(0, 0, 8, 8), (20, 20, 30, 30)], [1, 2])
    pasted = _absolute_example(1.0, [(0, 0, 4, 4)], [3])
    result = _numpy(cp.clip_or_pad_instances(cp.paste(destination, pasted, 1), 5))
    self.assertEqual(result['num_instances'], 3)
    self.assertAllEqual(result['classes'], [1, 2, 3, -1, -1])
    self.assertAllEqual(result['boxes'][3:], -np.ones((2, 4)))
    self.assertAllEqual(result['masks'][3:], np.zeros((2, SIZE, SIZE)))
    self.assertEqual(result['masks'].shape, (5, SIZE, SIZE))
    self.assertAllEqual(result['boxes'][:3], cp.boxes_from_masks(result['masks'][:3]))

  def test_cap_keeps_the_first_objects(self):
    destination = _absolute_example(0.0, [(0, 0, 4, 4), (10, 10, 14, 14)], [1, 2])
    pasted = _absolute_example(1.0, [(20, 20, 24, 24), (28, 28, 32, 32)], [3, 4])
    result = _numpy(cp.clip_or_pad_instances(cp.paste(destination, pasted, 1), 3))
    self.assertEqual(result['num_instances'], 3)
    self.assertAllEqual(result['classes'], [1, 2, 3])

  def test_copy_paste_counts_add_up_over_seeds(self):
    destination = _decoded_example(1, [(0, 0, 6, 6), (12, 20, 24, 40)], [1, 2])
    source = _decoded_example(2, [(2, 2, 12, 12), (10, 10, 20, 30), (0, 30, 10, 40)], [3, 4, 5])
    for index in range(8):
      result = _numpy(
        cp.copy_paste(
          destination, source, (SIZE, SIZE), tf.constant([7, index]), max_num_instances=8
        )
      )
      count = int(result['num_instances'])
      self.assertBetween(count, 0, 5)
      self.assertAllEqual(result['classes'][count:], -np.ones(8 - count))
      self.assertAllGreaterEqual(result['classes'][:count], 1)
      # Every real object has a non-empty mask inside its box, every padding row an empty one.
      self.assertAllEqual(result['masks'][count:].sum(axis=(1, 2)), np.zeros(8 - count))
      mask_boxes = cp.boxes_from_masks(result['masks'][:count]).numpy()
      boxes = result['boxes'][:count]
      self.assertAllGreaterEqual(mask_boxes[:, :2] - boxes[:, :2], -1.0)
      self.assertAllGreaterEqual(boxes[:, 2:] - mask_boxes[:, 2:], -1.0)

  def test_composite_shows_the_source_under_pasted_masks_only(self):
    destination = _decoded_example(1, [(0, 0, 12, 20), (12, 20, 24, 40)], [1, 2])
    source = _decoded_example(2, [(2, 2, 12, 12), (10, 10, 20, 30)], [3, 4])
    source['image'] = tf.fill(tf.shape(source['image']), 5.0)  # Destination pixels are < 1.
    pasted_any = False
    for index in range(6):
      result = _numpy(
        cp.copy_paste(
          destination, source, (SIZE, SIZE), tf.constant([9, index]), min_visible_area=1
        )
      )
      pasted = np.isin(result['classes'], [3, 4])
      union = result['masks'][pasted].max(axis=0, initial=0).astype(bool)
      self.assertAllClose(result['image'][union], np.full((union.sum(), 3), 5.0))
      self.assertTrue(np.all(result['image'][~union] < 5.0))
      # Destination masks lost what the paste covers.
      self.assertFalse(np.any(result['masks'][~pasted].astype(bool) & union))
      pasted_any |= bool(union.any())
    self.assertTrue(pasted_any)

  def test_images_without_objects(self):
    empty = _decoded_example(3, [], [])
    full = _decoded_example(4, [(0, 0, 10, 10)], [2])
    for destination, source in ((empty, empty), (empty, full), (full, empty)):
      result = cp.copy_paste(
        destination, source, (SIZE, SIZE), tf.constant([0, 1]), max_num_instances=4
      )
      self.assertEqual(result['image'].shape, (SIZE, SIZE, 3))
      self.assertBetween(int(result['num_instances']), 0, 1)


class ErrorsTest(tf.test.TestCase):
  def test_source_without_masks_is_an_error(self):
    example = _decoded_example(0, [(0, 0, 6, 6)], [1])
    no_masks = {k: v for k, v in example.items() if k != 'masks'}
    with self.assertRaisesRegex(ValueError, r"source example has no \['masks'\].*include_mask"):
      cp.copy_paste(example, no_masks, (SIZE, SIZE), tf.constant([0, 0]))

  def test_a_record_decoded_without_mask_data_is_an_error(self):
    example = _decoded_example(0, [(0, 0, 6, 6)], [1])
    no_mask_data = dict(example, masks=tf.zeros([0, 24, 40]))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, 'source example.*one instance'):
      cp.copy_paste(example, no_mask_data, (SIZE, SIZE), tf.constant([0, 0]))


class JitterAndFlipTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.parameters((0.5, 0), (1.0, 1), (1.7, 2), (1.7, 3))
  def test_masks_and_boxes_follow_the_image(self, scale, seed):
    example = _decoded_example(seed, [(2, 4, 10, 20), (12, 24, 22, 38)], [1, 2])
    result = _numpy(cp.scale_jitter(example, (SIZE, SIZE), (scale, scale), tf.constant([seed, 0])))
    info = result['image_info']
    self.assertAllClose(info[0], [24, 40])
    self.assertAllClose(info[1], [SIZE, SIZE])
    target = np.round(scale * SIZE)
    scaled = np.round(np.array([24, 40]) * min(target / 24, target / 40))
    self.assertAllClose(info[2], scaled / [24, 40])
    # The masks are the decoder's masks resized like the image (nearest) and cropped with it.
    offset = info[3].astype(int)
    resized = tf.image.resize(example['masks'][..., None], scaled.astype(int), 'nearest')
    window = resized.numpy()[:, offset[0] : offset[0] + SIZE, offset[1] : offset[1] + SIZE, 0]
    expected = np.zeros((2, SIZE, SIZE), np.float32)
    expected[:, : window.shape[1], : window.shape[2]] = window
    kept = expected.sum(axis=(1, 2)) > 0
    self.assertAllEqual(result['masks'], expected[kept])
    self.assertAllClose(result['boxes'], cp.boxes_from_masks(expected[kept]), atol=1.0)
    self.assertEqual(result['image'].shape, (SIZE, SIZE, 3))

  def test_jitter_drops_objects_without_mask_pixels(self):
    # The second object has a box but no mask pixel (as a mask lost to the crop or to resizing).
    example = _decoded_example(0, [(2, 4, 10, 20), (12, 24, 22, 38)], [1, 2])
    example['masks'] = example['masks'] * tf.constant([1.0, 0.0])[:, None, None]
    result = cp.scale_jitter(example, (SIZE, SIZE), (1.0, 1.0), tf.constant([0, 0]))
    self.assertAllEqual(result['classes'], [1])

  def test_jitter_draws_scales_in_range(self):
    example = _decoded_example(0, [], [], height=32, width=32)
    scales = [
      cp.scale_jitter(example, (SIZE, SIZE), cp.LARGE_SCALE_JITTER, tf.constant([0, i]))[
        'image_info'
      ][2, 0].numpy()
      for i in range(20)
    ]
    self.assertAllInRange(scales, 0.09, 2.01)
    self.assertGreater(max(scales) - min(scales), 0.5)

  def test_flip_mirrors_everything_together(self):
    example = _decoded_example(0, [(2, 4, 10, 20)], [1])
    flipped = _numpy(cp.random_horizontal_flip(example, tf.constant([0, 0]), prob=1.0))
    self.assertAllEqual(flipped['image'], example['image'].numpy()[:, ::-1])
    self.assertAllEqual(flipped['masks'], example['masks'].numpy()[:, :, ::-1])
    self.assertAllClose(flipped['boxes'], [[2 / 24, 1 - 20 / 40, 10 / 24, 1 - 4 / 40]])
    kept = _numpy(cp.random_horizontal_flip(example, tf.constant([0, 0]), prob=0.0))
    self.assertAllEqual(kept['image'], example['image'].numpy())

  def test_subset_sizes_cover_zero_to_all(self):
    example = _absolute_example(0.0, [(0, 0, 2, 2), (4, 4, 6, 6), (8, 8, 10, 10)], [1, 2, 3])
    sizes, chosen = [], set()
    for index in range(200):
      subset = cp.select_random_subset(example, tf.constant([3, index]))
      classes = subset['classes'].numpy()
      self.assertLen(set(classes), len(classes))
      sizes.append(len(classes))
      chosen.update(classes.tolist())
    self.assertEqual(set(sizes), {0, 1, 2, 3})
    self.assertEqual(chosen, {1, 2, 3})


class DeterminismTest(tf.test.TestCase):
  def _pair(self):
    destination = _decoded_example(1, [(0, 0, 6, 6), (12, 20, 24, 40)], [1, 2])
    source = _decoded_example(2, [(2, 2, 12, 12), (10, 10, 20, 30)], [3, 4])
    return destination, source

  def test_same_seed_same_result_eagerly_and_in_tf_data(self):
    destination, source = self._pair()

    def augment(seed):
      return cp.copy_paste(destination, source, (SIZE, SIZE), seed, max_num_instances=6)

    seeds = tf.constant([[5, i] for i in range(4)], tf.int64)
    eager = [_numpy(augment(seed)) for seed in seeds]
    again = [_numpy(augment(seed)) for seed in seeds]
    in_tf_data = [
      _numpy(example) for example in tf.data.Dataset.from_tensor_slices(seeds).map(augment)
    ]
    for first, second, third in zip(eager, again, in_tf_data, strict=True):
      for key in first:
        self.assertAllEqual(first[key], second[key])
        self.assertAllClose(first[key], third[key])
    self.assertNotAllClose(eager[0]['image'], eager[1]['image'])


if __name__ == '__main__':
  tf.test.main()
