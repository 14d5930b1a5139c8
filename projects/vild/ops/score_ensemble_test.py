"""Tests for ViLD-ensemble's score combination against a NumPy reference."""

import numpy as np
import tensorflow as tf

from projects.vild.ops import score_ensemble


def _numpy_ensemble(text, image, base, lambda_):
  text_exponent = np.where(base, lambda_, 1.0 - lambda_)
  return text**text_exponent * image ** (1.0 - text_exponent)


class EnsembleScoresTest(tf.test.TestCase):
  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.text = rng.dirichlet(np.ones(6), size=(2, 5))[..., 1:].astype(np.float32)
    self.image = rng.dirichlet(np.ones(5), size=(2, 5)).astype(np.float32)
    self.base = np.array([True, False, True, True, False])

  def test_matches_numpy_reference(self):
    for lambda_ in (score_ensemble.PAPER_ENSEMBLE_LAMBDA, 0.0, 0.5, 1.0):
      scores = score_ensemble.ensemble_scores(self.text, self.image, self.base, lambda_)
      self.assertAllClose(scores, _numpy_ensemble(self.text, self.image, self.base, lambda_))

  def test_paper_lambda_is_the_official_cube_root_form(self):
    # Official postprocessing: (text * image * (base ? text : image)) ** (1/3).
    third = np.where(self.base, self.text, self.image)
    official = np.cbrt(self.text * self.image * third)
    scores = score_ensemble.ensemble_scores(self.text, self.image, self.base)
    self.assertAllClose(scores, official, rtol=1e-5)

  def test_base_leans_on_text_and_novel_on_image(self):
    text = np.array([[0.9, 0.9]], np.float32)
    image = np.array([[0.1, 0.1]], np.float32)
    scores = score_ensemble.ensemble_scores(text, image, [True, False]).numpy()
    self.assertGreater(scores[0, 0], scores[0, 1])

  def test_rejects_lambda_outside_unit_interval(self):
    with self.assertRaisesRegex(ValueError, r'\[0, 1\].*1.5'):
      score_ensemble.ensemble_scores(self.text, self.image, self.base, 1.5)


if __name__ == '__main__':
  tf.test.main()
