"""Tests for the ViLD-text and ViLD-image losses against NumPy references."""

import numpy as np
import tensorflow as tf

from projects.vild.losses import vild_losses


def _numpy_cross_entropy(logits, target):
  logits = logits - logits.max()
  return np.log(np.exp(logits).sum()) - logits[target]


class ViLDTextLossTest(tf.test.TestCase):
  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.logits = rng.normal(size=(2, 3, 5)).astype(np.float32)  # Background + 4 categories.
    self.base = np.array([True, False, True, False])

  def test_softmax_over_background_and_base_only(self):
    targets = np.array([[0, 1, 3], [3, 0, 1]])
    loss = vild_losses.vild_text_loss(self.logits, targets, self.base)
    kept = [0, 1, 3]  # Columns: background, category 1, category 3.
    expected = np.mean(
      [
        _numpy_cross_entropy(self.logits[b, r, kept], kept.index(targets[b, r]))
        for b in range(2)
        for r in range(3)
      ]
    )
    self.assertAllClose(loss, expected, rtol=1e-5)

  def test_novel_logits_get_no_gradient(self):
    logits = tf.constant(self.logits)
    with tf.GradientTape() as tape:
      tape.watch(logits)
      loss = vild_losses.vild_text_loss(logits, [[0, 1, 3], [3, 0, 1]], self.base)
    gradient = tape.gradient(loss, logits).numpy()
    self.assertAllEqual(gradient[..., [2, 4]], np.zeros([2, 3, 2]))
    self.assertGreater(np.abs(gradient[..., [0, 1, 3]]).sum(), 0)

  def test_novel_targets_add_no_loss(self):
    with_novel = vild_losses.vild_text_loss(self.logits, [[2, 1, 4], [3, 0, 2]], self.base)
    base_target_logits = np.stack([self.logits[0, 1], self.logits[1, 0], self.logits[1, 1]])
    base_only = vild_losses.vild_text_loss(base_target_logits[None], [[1, 3, 0]], self.base)
    self.assertAllClose(with_novel, base_only)

  def test_all_novel_targets_give_zero_not_nan(self):
    loss = vild_losses.vild_text_loss(self.logits, [[2, 2, 4], [4, 4, 2]], self.base)
    self.assertEqual(float(loss), 0.0)


class ViLDImageLossTest(tf.test.TestCase):
  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(1)
    student = rng.normal(size=(2, 4, 6)).astype(np.float32)
    self.student = student / np.linalg.norm(student, axis=-1, keepdims=True)
    self.teacher = rng.normal(size=(2, 4, 6)).astype(np.float32) * 3.0
    self.valid = np.array([[True, True, False, False], [True, False, False, False]])

  def test_matches_numpy_reference(self):
    loss = vild_losses.vild_image_loss(self.student, self.teacher, self.valid, weight=0.5)
    teacher = self.teacher / np.linalg.norm(self.teacher, axis=-1, keepdims=True)
    per_proposal = np.abs(self.student - teacher).sum(-1)
    self.assertAllClose(loss, 0.5 * per_proposal[self.valid].mean(), rtol=1e-5)

  def test_padding_is_ignored(self):
    garbage = self.teacher.copy()
    garbage[~self.valid] = np.nan
    student = tf.constant(self.student)
    with tf.GradientTape() as tape:
      tape.watch(student)
      loss = vild_losses.vild_image_loss(student, garbage, self.valid)
    gradient = tape.gradient(loss, student).numpy()
    self.assertAllClose(loss, vild_losses.vild_image_loss(self.student, self.teacher, self.valid))
    self.assertTrue(np.isfinite(gradient).all())
    self.assertAllEqual(gradient[~self.valid], np.zeros_like(gradient[~self.valid]))

  def test_weight_scales_and_no_valid_proposal_gives_zero(self):
    loss = vild_losses.vild_image_loss(self.student, self.teacher, self.valid, weight=1.0)
    doubled = vild_losses.vild_image_loss(self.student, self.teacher, self.valid, weight=2.0)
    self.assertAllClose(doubled, 2.0 * loss)
    none_valid = np.zeros_like(self.valid)
    self.assertEqual(float(vild_losses.vild_image_loss(self.student, self.teacher, none_valid)), 0)

  def test_valid_proposals_from_padded_boxes(self):
    boxes = tf.constant([[[0.0, 0.0, 4.0, 4.0], [-1.0, -1.0, -1.0, -1.0], [0.0, 0.0, 0.0, 0.0]]])
    self.assertAllEqual(vild_losses.valid_proposals(boxes), [[True, False, False]])

  def test_dimension_mismatch_names_both_sizes(self):
    with self.assertRaisesRegex(ValueError, '6 dimensions.*5'):
      vild_losses.vild_image_loss(self.student, self.teacher[..., :5], self.valid)


if __name__ == '__main__':
  tf.test.main()
