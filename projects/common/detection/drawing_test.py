"""Tests for drawing.py: boxes, masks, labels and COCO annotations land where they should."""

import os

import numpy as np
import tensorflow as tf
from PIL import Image

from projects.common.detection import coco_conversion, drawing

GREY = 100


def grey_image(height: int = 120, width: int = 160) -> np.ndarray:
  return np.full([height, width, 3], GREY, dtype=np.uint8)


class DrawingTest(tf.test.TestCase):
  def test_box_outline_has_the_category_colour_and_the_inside_is_untouched(self):
    drawn = drawing.draw_detections(grey_image(), [[40, 50, 60, 30]], [3])
    color = drawing.category_color(3)
    self.assertEqual(tuple(drawn[65, 40]), color)  # Left edge.
    self.assertEqual(tuple(drawn[80, 70]), color)  # Bottom edge.
    self.assertEqual(tuple(drawn[65, 70]), (GREY,) * 3)  # Inside, below the label.
    self.assertEqual(tuple(drawn[5, 5]), (GREY,) * 3)  # Far outside.

  def test_label_sits_above_the_box_or_inside_at_the_top_edge(self):
    above = drawing.draw_detections(grey_image(), [[40, 50, 60, 30]], [1], {1: 'cat'})
    self.assertTrue(np.any(above[30:50, 40:100] != GREY))
    inside = drawing.draw_detections(grey_image(), [[40, 0, 60, 30]], [1], {1: 'cat'})
    self.assertTrue(np.any(inside[2:12, 42:100] != GREY))

  def test_a_score_widens_the_label(self):
    def label_width(scores):
      drawn = drawing.draw_detections(grey_image(), [[10, 60, 20, 20]], [1], {1: 'cat'}, scores)
      return np.flatnonzero(np.any(drawn[40:59] != GREY, axis=(0, 2))).max()

    self.assertGreater(label_width([0.87]), label_width(None))

  def test_mask_is_translucent_and_outlined(self):
    mask = np.zeros([1, 120, 160], dtype=bool)
    mask[0, 60:100, 20:80] = True
    drawn = drawing.draw_detections(grey_image(), [[10, 50, 100, 60]], [2], masks=mask)
    color = np.array(drawing.category_color(2), dtype=np.float32)
    expected = np.round((1 - drawing.MASK_ALPHA) * GREY + drawing.MASK_ALPHA * color)
    self.assertAllEqual(drawn[80, 50], expected)
    self.assertAllEqual(drawn[60, 50], color)  # Boundary row of the mask.
    self.assertAllEqual(drawn[105, 50], [GREY] * 3)  # In the box, outside the mask.

  def test_coco_rle_polygon_and_array_masks_draw_the_same(self):
    mask = np.zeros([120, 160], dtype=np.uint8)
    mask[30:70, 40:90] = 1
    result = {
      'bbox': [40, 30, 50, 40],
      'category_id': 5,
      'score': 0.5,
      'segmentation': coco_conversion.compressed_rle(mask),
    }
    polygon = dict(result, segmentation=[[40, 30, 89.5, 30, 89.5, 69.5, 40, 69.5]])
    expected = drawing.draw_detections(
      grey_image(), [[40, 30, 50, 40]], [5], {5: 'five'}, [0.5], masks=mask[None]
    )
    self.assertAllEqual(
      drawing.draw_coco_annotations(grey_image(), [result], {5: 'five'}), expected
    )
    from_polygon = drawing.draw_coco_annotations(grey_image(), [polygon], {5: 'five'})
    self.assertLess(np.mean(from_polygon != expected), 0.01)

  def test_ground_truth_without_scores_or_masks(self):
    annotations = [
      {'bbox': [5, 5, 20, 20], 'category_id': 1},
      {'bbox': [50, 50, 30, 30], 'category_id': 2},
    ]
    drawn = drawing.draw_coco_annotations(grey_image(), annotations)
    self.assertEqual(tuple(drawn[15, 5]), drawing.category_color(1))
    self.assertEqual(tuple(drawn[65, 50]), drawing.category_color(2))
    self.assertAllEqual(drawing.draw_coco_annotations(grey_image(), []), grey_image())

  def test_scale_enlarges_image_boxes_and_masks_together(self):
    # A horizontal ramp, so that enlarging pixel for pixel is checkable.
    image = np.tile(np.arange(160, dtype=np.uint8)[None, :, None], (120, 1, 3))
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[30:40, 40:60] = 1
    result = {
      'bbox': [40, 30, 20, 10],
      'category_id': 5,
      'score': 0.9,
      'segmentation': coco_conversion.compressed_rle(mask),
    }
    drawn = drawing.draw_coco_annotations(image, [result], {5: 'five'}, scale=3)
    self.assertEqual(drawn.shape, (image.shape[0] * 3, image.shape[1] * 3, 3))
    # The box's left edge at 3x its column, the mask's tint inside at 3x its pixels, and the
    # image away from the detection enlarged pixel for pixel.
    color = drawing.category_color(5)
    self.assertEqual(tuple(drawn[3 * 35, 3 * 40]), color)
    inside = drawn[3 * 36, 3 * 50]
    self.assertNotEqual(tuple(inside), tuple(image[36, 50]))
    self.assertAllEqual(
      drawn[3 * 90 : 3 * 95, 0:30], np.repeat(np.repeat(image[90:95, 0:10], 3, 0), 3, 1)
    )
    with self.assertRaisesRegex(ValueError, 'scale must be a whole number >= 1, got 0'):
      drawing.draw_coco_annotations(image, [result], scale=0)

  def test_grey_images_become_rgb(self):
    drawn = drawing.draw_detections(np.zeros([30, 40], np.uint8), [[1, 1, 5, 5]], [0])
    self.assertEqual(drawn.shape, (30, 40, 3))

  def test_mismatched_inputs_are_named(self):
    with self.assertRaisesRegex(ValueError, '2 boxes but 1 category ids'):
      drawing.draw_detections(grey_image(), [[0, 0, 1, 1], [1, 1, 1, 1]], [1])
    with self.assertRaisesRegex(ValueError, r'masks must be \[1, 120, 160\]'):
      drawing.draw_detections(grey_image(), [[0, 0, 1, 1]], [1], masks=np.zeros([1, 10, 10]))
    with self.assertRaisesRegex(ValueError, 'must be uint8'):
      drawing.draw_detections(np.zeros([4, 4, 3], np.float32), [], [])

  def test_colours_are_stable_and_distinct(self):
    colors = [drawing.category_color(i) for i in range(10)]
    self.assertEqual(colors, [drawing.category_color(i) for i in range(10)])
    self.assertLen(set(colors), 10)

  def test_write_png_round_trips(self):
    path = os.path.join(self.get_temp_dir(), 'drawn.png')
    image = drawing.draw_detections(grey_image(), [[10, 10, 30, 30]], [1])
    drawing.write_png(path, image)
    self.assertAllEqual(np.asarray(Image.open(path)), image)


if __name__ == '__main__':
  tf.test.main()
