"""Tests for the image teacher's contrastive loss and training."""

import numpy as np
import tensorflow as tf
import tf_keras

from projects.common.detection import tiny_coco
from projects.vild.teacher import contrastive, image_encoder


def _normalised(rng: np.random.Generator, shape) -> np.ndarray:
  values = rng.normal(size=shape)
  return (values / np.linalg.norm(values, axis=-1, keepdims=True)).astype(np.float32)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
  shifted = logits - logits.max(axis=1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _crop_set(num_classes: int = 3, per_class: int = 4) -> contrastive.CropSet:
  """One box per image; each class is a colour, so the classes can be learned from crops."""
  labels = np.repeat(np.arange(num_classes), per_class).astype(np.int32)
  colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)[:num_classes]
  images = np.full([len(labels), 16, 16, 3], 128, np.uint8)
  images[:, 4:12, 4:12] = colours[labels][:, np.newaxis, np.newaxis]
  boxes = np.tile(np.array([[0.25, 0.25, 0.75, 0.75]], np.float32), [len(labels), 1])
  return contrastive.CropSet(images, boxes, np.arange(len(labels), dtype=np.int32), labels)


class ContrastiveTest(tf.test.TestCase):
  def test_distinct_labels_give_clip_loss(self):
    rng = np.random.default_rng(0)
    images, texts = _normalised(rng, [4, 6]), _normalised(rng, [4, 6])
    logits = 10.0 * images @ texts.T
    clip = -(np.trace(_log_softmax(logits)) + np.trace(_log_softmax(logits.T))) / 8
    loss = contrastive.symmetric_infonce(images, texts, tf.range(4), 10.0)
    self.assertAllClose(loss, clip, atol=1e-5)

  def test_pairs_of_one_category_are_all_positives(self):
    rng = np.random.default_rng(1)
    images, class_texts = _normalised(rng, [4, 6]), _normalised(rng, [2, 6])
    labels = np.array([0, 1, 0, 1])
    texts = class_texts[labels]
    logits = 5.0 * images @ texts.T
    targets = (labels[:, None] == labels[None]).astype(np.float32) / 2
    expected = (
      -(np.sum(targets * _log_softmax(logits)) + np.sum(targets * _log_softmax(logits.T))) / 8
    )
    loss = contrastive.symmetric_infonce(images, texts, labels, 5.0)
    self.assertAllClose(loss, expected, atol=1e-5)
    aligned = contrastive.symmetric_infonce(texts, texts, labels, 5.0)
    self.assertLess(aligned, loss)

  def test_jittered_boxes_stay_near_and_inside(self):
    boxes = tf.constant([[0.2, 0.2, 0.6, 0.5], [0.0, 0.0, 1.0, 1.0]])
    jittered = contrastive.jitter_boxes(tf.random.Generator.from_seed(0), boxes, 0.1, 0.2)
    self.assertAllInRange(jittered, 0.0, 1.0)
    self.assertAllLess(tf.abs(jittered - boxes)[0], 0.15)
    self.assertNotAllClose(jittered[0], boxes[0])

  def test_training_aligns_crops_with_their_category_text(self):
    crop_set = _crop_set()
    text_embeddings = _normalised(np.random.default_rng(2), [3, 8])
    result = contrastive.train_image_teacher(
      crop_set,
      text_embeddings,
      crop_size=8,
      widths=(8,),
      steps=60,
      batch_size=12,
      learning_rate=1e-2,
    )
    self.assertEqual(result.model.output_shape, (None, 8))
    self.assertLess(result.losses[-1], result.losses[0])
    self.assertNotAllClose(result.logit_scale, contrastive.INITIAL_LOGIT_SCALE)
    crops = image_encoder.crop_boxes(
      crop_set.images, crop_set.boxes, crop_set.box_image_indices, crop_size=8
    )
    # Batch statistics: 60 steps leave batch norm's moving averages far from them.
    embeddings = result.model(crops, training=True)
    self.assertAllEqual(np.argmax(embeddings @ text_embeddings.T, axis=1), crop_set.labels)

  def test_zero_shot_accuracy_of_an_encoder_of_mean_colours(self):
    inputs = tf_keras.Input([8, 8, 3])
    encoder = image_encoder.load_image_encoder(
      tf_keras.Model(inputs, tf_keras.layers.GlobalAveragePooling2D()(inputs))
    )
    crop_set = _crop_set()
    # Class k's 'text' is colour channel k: the red, green and blue squares of _crop_set.
    self.assertEqual(contrastive.zero_shot_accuracy(encoder, crop_set, np.eye(3)), 1.0)
    self.assertEqual(contrastive.zero_shot_accuracy(encoder, crop_set, np.eye(3)[::-1]), 1 / 3)

  def test_crop_set_from_coco_json(self):
    image_dir, json_path = tiny_coco.write_dataset(self.get_temp_dir(), tiny_coco.coco_dict())
    crop_set = contrastive.load_coco_crop_set(json_path, image_dir)
    self.assertEqual(crop_set.images.shape, (3, tiny_coco.IMAGE_HEIGHT, tiny_coco.IMAGE_WIDTH, 3))
    self.assertAllEqual(crop_set.box_image_indices, [0, 0, 0, 1, 1])
    self.assertAllEqual(crop_set.labels, [0, 1, 0, 1, 0])  # Category ids 1 and 3.
    # bbox [2, 3, 10, 8] (x, y, w, h) of the 30 x 40 image.
    self.assertAllClose(crop_set.boxes[0], [3 / 30, 2 / 40, 11 / 30, 12 / 40])


if __name__ == '__main__':
  tf.test.main()
