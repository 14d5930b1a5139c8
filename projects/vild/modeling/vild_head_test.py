"""Tests for ViLD's text classifier and detection head."""

import numpy as np
import tensorflow as tf
import tf_keras
from absl.testing import parameterized

from projects.vild.losses import vild_losses
from projects.vild.modeling import vild_head
from projects.vild.ops import score_ensemble

EMBEDDING_DIM = 8


def _category_embeddings(num_categories=4, seed=0):
  return np.random.default_rng(seed).normal(size=(num_categories, EMBEDDING_DIM))


def _make_test_head(**overrides):
  params = {
    'category_embeddings': _category_embeddings(),
    'base_class_mask': [True, True, False, True],
    'num_convs': 1,
    'num_filters': 4,
    'num_fcs': 1,
    'fc_dims': 16,
  }
  params.update(overrides)
  return vild_head.ViLDDetectionHead(**params)


def _roi_features(batch=2, rois=3, seed=0):
  return tf.random.stateless_normal([batch, rois, 7, 7, 4], seed=[seed, 0])


class TextClassifierTest(tf.test.TestCase):
  def test_logits_are_cosines_over_temperature_background_first(self):
    embeddings = _category_embeddings()
    classifier = vild_head.TextClassifier(embeddings, temperature=0.01)
    regions = tf.math.l2_normalize(tf.random.stateless_normal([2, 3, EMBEDDING_DIM], [1, 2]), -1)
    logits = classifier(regions).numpy()
    self.assertEqual(logits.shape, (2, 3, 5))
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    self.assertAllClose(logits[..., 1:], regions.numpy() @ unit.T / 0.01, rtol=1e-4, atol=1e-4)
    background = classifier.background_embedding.numpy()
    background /= np.linalg.norm(background)
    self.assertAllClose(logits[..., 0], regions.numpy() @ background / 0.01, rtol=1e-4, atol=1e-4)

  def test_text_embeddings_get_no_gradient_and_background_does(self):
    classifier = vild_head.TextClassifier(_category_embeddings())
    regions = tf.math.l2_normalize(tf.random.stateless_normal([2, 3, EMBEDDING_DIM], [3, 4]), -1)
    classifier(regions)
    self.assertEqual(len(classifier.trainable_variables), 1)
    self.assertIs(classifier.trainable_variables[0], classifier.background_embedding)
    self.assertEmpty(classifier.non_trainable_variables)
    before = classifier.category_embeddings.numpy()
    background_before = classifier.background_embedding.numpy()
    optimizer = tf_keras.optimizers.SGD(1.0)
    with tf.GradientTape() as tape:
      loss = vild_losses.vild_text_loss(
        classifier(regions), [[0, 1, 2], [0, 0, 4]], [True, True, True, True]
      )
    gradients = tape.gradient(loss, classifier.trainable_variables)
    self.assertGreater(float(tf.norm(gradients[0])), 0.0)
    optimizer.apply_gradients(zip(gradients, classifier.trainable_variables, strict=True))
    self.assertAllEqual(classifier.category_embeddings, before)
    self.assertNotAllClose(classifier.background_embedding, background_before)

  def test_rejects_bad_embeddings(self):
    with self.assertRaisesRegex(ValueError, r'\[num_categories, dim\].*\(8,\)'):
      vild_head.TextClassifier(np.ones(8))
    with self.assertRaisesRegex(ValueError, r'rows \[1\] are zero'):
      vild_head.TextClassifier(np.stack([np.ones(8), np.zeros(8)]))
    classifier = vild_head.TextClassifier(_category_embeddings())
    with self.assertRaisesRegex(ValueError, '6 dimensions.*built for 8'):
      classifier.set_category_embeddings(np.ones([3, 6]))
    with self.assertRaisesRegex(ValueError, 'temperature must be > 0'):
      vild_head.TextClassifier(_category_embeddings(), temperature=0.0)


class ViLDDetectionHeadTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.product(image_branch=[False, True], num_convs=[0, 1])
  def test_output_shapes(self, image_branch, num_convs):
    head = _make_test_head(image_branch=image_branch, num_convs=num_convs)
    roi_features = _roi_features()
    class_outputs, box_outputs = head(roi_features, training=True)
    self.assertEqual(class_outputs.shape, (2, 3, 5))
    self.assertEqual(box_outputs.shape, (2, 3, 4))  # Class agnostic.
    embeddings = head.image_embeddings(roi_features)
    self.assertEqual(embeddings.shape, (2, 3, EMBEDDING_DIM))
    self.assertAllClose(tf.norm(embeddings, axis=-1), tf.ones([2, 3]))
    self.assertAllClose(tf.norm(head.text_embeddings(roi_features), axis=-1), tf.ones([2, 3]))

  def test_image_branch_has_its_own_weights(self):
    plain, ensemble = _make_test_head(), _make_test_head(image_branch=True)
    roi_features = _roi_features()
    plain(roi_features)
    ensemble(roi_features)
    self.assertAllClose(plain.image_embeddings(roi_features), plain.text_embeddings(roi_features))
    self.assertNotAllClose(
      ensemble.image_embeddings(roi_features), ensemble.text_embeddings(roi_features)
    )
    self.assertGreater(len(ensemble.trainable_variables), len(plain.trainable_variables))

  def test_text_weights_are_not_trainable(self):
    head = _make_test_head()
    head(_roi_features())
    background = head.text_classifier.background_embedding
    self.assertTrue(any(v is background for v in head.trainable_variables))
    # The category embeddings are a constant: no variable of their shape exists to train.
    self.assertFalse(any(v.shape == (4, EMBEDDING_DIM) for v in head.variables))
    with tf.GradientTape() as tape:
      class_outputs, _ = head(_roi_features(), training=True)
      loss = vild_losses.vild_text_loss(class_outputs, [[1, 0, 2], [4, 0, 0]], head.base_class_mask)
    self.assertGreater(float(tf.norm(tape.gradient(loss, background))), 0.0)

  @parameterized.parameters(False, True)
  def test_inference_outputs_log_odds_of_final_scores(self, image_branch):
    head = _make_test_head(image_branch=image_branch)
    roi_features = _roi_features()
    class_outputs, _ = head(roi_features, training=False)
    self.assertEqual(class_outputs.shape, (2, 3, 5))
    classifier = head.text_classifier
    text_scores = tf.nn.softmax(classifier(head.text_embeddings(roi_features)))[..., 1:]
    expected = text_scores
    if image_branch:
      image_scores = tf.nn.softmax(classifier.category_logits(head.image_embeddings(roi_features)))
      expected = score_ensemble.ensemble_scores(text_scores, image_scores, head.base_class_mask)
    self.assertAllClose(tf.sigmoid(class_outputs[..., 1:]), expected, atol=1e-6)

  def test_swapping_categories_changes_output_classes(self):
    head = _make_test_head()
    roi_features = _roi_features()
    head(roi_features)
    embeddings = head.text_embeddings(roi_features).numpy().reshape(-1, EMBEDDING_DIM)
    # Each region's own embedding as a category name: region i is best matched by category i.
    head.set_categories(embeddings)
    scores, _ = head(roi_features, training=False)
    self.assertAllEqual(tf.argmax(scores[..., 1:], -1), np.arange(6).reshape(2, 3))
    head.set_categories(embeddings[::-1], base_class_mask=[True] * 6)
    scores, _ = head(roi_features, training=False)
    self.assertEqual(scores.shape, (2, 3, 7))
    self.assertAllEqual(tf.argmax(scores[..., 1:], -1), 5 - np.arange(6).reshape(2, 3))
    self.assertAllEqual(head.base_class_mask, [True] * 6)

  def test_classifies_in_float32_under_mixed_precision(self):
    tf_keras.mixed_precision.set_global_policy('mixed_float16')
    try:
      head = _make_test_head(image_branch=True)
      class_outputs, box_outputs = head(_roi_features(), training=True)
      scores, _ = head(_roi_features(), training=False)
    finally:
      tf_keras.mixed_precision.set_global_policy('float32')
    self.assertEqual(class_outputs.dtype, tf.float32)
    self.assertEqual(scores.dtype, tf.float32)
    self.assertEqual(box_outputs.dtype, tf.float16)
    self.assertEqual(head.text_classifier.background_embedding.dtype, tf.float32)

  def test_config_round_trip(self):
    head = _make_test_head(image_branch=True, temperature=0.05, ensemble_lambda=0.5)
    config = head.get_config()
    rebuilt = vild_head.ViLDDetectionHead.from_config(config)
    self.assertEqual(rebuilt.get_config(), config)
    self.assertEqual(rebuilt.num_categories, 4)

  def test_rejects_wrong_base_mask_length(self):
    with self.assertRaisesRegex(ValueError, '4 categories'):
      _make_test_head(base_class_mask=[True, False])


if __name__ == '__main__':
  tf.test.main()
