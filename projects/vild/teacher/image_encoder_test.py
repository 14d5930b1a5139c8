"""Tests for the image teacher's encoder, its crops and loading encoders by path."""

import os

import numpy as np
import tensorflow as tf
import tf_keras
from absl.testing import parameterized

from projects.vild.teacher import image_encoder

CROP_SIZE = 8


def _tiny_encoder(embedding_dim: int = 5) -> tf_keras.Model:
  tf_keras.utils.set_random_seed(0)
  return image_encoder.build_image_encoder(CROP_SIZE, embedding_dim, widths=(4, 8))


class ImageEncoderTest(parameterized.TestCase, tf.test.TestCase):
  def test_embeddings_are_unit_norm(self):
    crops = np.random.default_rng(0).uniform(0, 255, [3, CROP_SIZE, CROP_SIZE, 3])
    embeddings = _tiny_encoder()(crops.astype(np.float32))
    self.assertEqual(embeddings.shape, (3, 5))
    self.assertAllClose(tf.norm(embeddings, axis=1), [1, 1, 1])

  def test_config_round_trip(self):
    model = _tiny_encoder()
    rebuilt = tf_keras.Model.from_config(model.get_config())
    self.assertEqual(rebuilt.output_shape, model.output_shape)

  def test_enlarge_boxes_keeps_the_centre_and_clips_to_the_image(self):
    boxes = tf.constant([[0.4, 0.4, 0.6, 0.8], [0.0, 0.0, 0.4, 0.2]])
    self.assertAllClose(
      image_encoder.enlarge_boxes(boxes, 1.5), [[0.35, 0.3, 0.65, 0.9], [0.0, 0.0, 0.5, 0.25]]
    )
    self.assertAllClose(image_encoder.enlarge_boxes(boxes, tf.constant([[1.0], [1.0]])), boxes)

  def test_crop_boxes_takes_each_box_from_its_image(self):
    images = np.zeros([2, 10, 10, 3], np.uint8)
    images[0, :5] = 200  # Top half of image 0 only.
    images[1] = 50
    crops = image_encoder.crop_boxes(
      images, [[0.0, 0.0, 0.4, 1.0], [0.6, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]], [0, 0, 1], 4
    )
    self.assertEqual(crops.shape, (3, 4, 4, 3))
    self.assertAllClose(crops[0], np.full([4, 4, 3], 200.0))
    self.assertAllClose(crops[1], np.zeros([4, 4, 3]))
    self.assertAllClose(crops[2], np.full([4, 4, 3], 50.0))

  def test_embed_boxes_averages_the_1x_and_1_5x_crops(self):
    model = _tiny_encoder()
    encoder = image_encoder.load_image_encoder(model, batch_size=2)
    image = np.random.default_rng(1).integers(0, 256, [1, 20, 30, 3]).astype(np.uint8)
    boxes = np.array([[0.1, 0.1, 0.5, 0.4], [0.3, 0.5, 0.9, 0.95], [0.0, 0.0, 1.0, 1.0]])
    embeddings = encoder.embed_boxes(image, boxes)
    for box, embedding in zip(boxes, embeddings, strict=True):
      crops = [
        image_encoder.crop_boxes(image, image_encoder.enlarge_boxes([box], s), [0], CROP_SIZE)
        for s in (1.0, 1.5)
      ]
      mean = (model(crops[0]) + model(crops[1]))[0] / 2
      self.assertAllClose(embedding, mean / tf.norm(mean), atol=1e-5)

  @parameterized.parameters('encoder.keras', 'saved_model')
  def test_loads_from_a_path_with_its_crop_size(self, name):
    model = _tiny_encoder()
    path = os.path.join(self.get_temp_dir(), name)
    model.save(path)
    encoder = image_encoder.load_image_encoder(path)
    self.assertEqual(encoder.crop_size, CROP_SIZE)
    crops = np.random.default_rng(2).uniform(0, 255, [3, CROP_SIZE, CROP_SIZE, 3])
    self.assertAllClose(encoder.embed_crops(crops), model(crops.astype(np.float32)), atol=1e-5)

  def test_an_encoder_of_any_size_needs_a_crop_size(self):
    inputs = tf_keras.Input([None, None, 3])
    model = tf_keras.Model(inputs, tf_keras.layers.GlobalAveragePooling2D()(inputs))
    with self.assertRaisesRegex(ValueError, 'give the crop size'):
      image_encoder.load_image_encoder(model)
    self.assertEqual(image_encoder.load_image_encoder(model, crop_size=6).crop_size, 6)

  def test_unknown_path_is_named(self):
    with self.assertRaisesRegex(ValueError, 'nowhere.pb'):
      image_encoder.load_image_encoder('/nowhere.pb')


if __name__ == '__main__':
  tf.test.main()
