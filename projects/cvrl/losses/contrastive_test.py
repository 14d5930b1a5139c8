"""Tests for the NT-Xent loss on one device against a NumPy reference."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from projects.cvrl.losses import contrastive


def numpy_nt_xent(
  embeddings_a: np.ndarray, embeddings_b: np.ndarray, temperature: float
) -> tuple[float, float, float]:
  """(loss, accuracy, entropy) of the global batch, from the 2N x 2N similarity matrix."""
  embeddings = np.concatenate([embeddings_a, embeddings_b]).astype(np.float64)
  embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
  num_videos = len(embeddings_a)
  logits = embeddings @ embeddings.T / temperature
  np.fill_diagonal(logits, -np.inf)
  positives = np.concatenate([np.arange(num_videos) + num_videos, np.arange(num_videos)])
  log_probs = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
  cross_entropy = -log_probs[np.arange(2 * num_videos), positives]
  probs = np.exp(log_probs)
  entropy = -np.sum(probs * np.where(probs > 0, log_probs, 0.0), axis=1)
  accuracy = np.mean(np.argmax(logits, axis=1) == positives)
  return 2.0 * cross_entropy.mean(), accuracy, entropy.mean()


def _random_pair(num_videos=8, dim=16, noise=1.0, seed=0) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(seed)
  embeddings_a = rng.normal(size=(num_videos, dim)).astype(np.float32)
  embeddings_b = embeddings_a + noise * rng.normal(size=(num_videos, dim)).astype(np.float32)
  return embeddings_a, embeddings_b


class ContrastiveLossTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.product(temperature=[0.1, 0.5], noise=[0.3, 3.0], graph=[False, True])
  def test_matches_numpy(self, temperature, noise, graph):
    embeddings_a, embeddings_b = _random_pair(noise=noise)
    loss_fn = contrastive.contrastive_loss
    if graph:
      loss_fn = tf.function(loss_fn)
    loss, metrics = loss_fn(embeddings_a, embeddings_b, temperature)
    expected_loss, expected_accuracy, expected_entropy = numpy_nt_xent(
      embeddings_a, embeddings_b, temperature
    )
    self.assertAllClose(loss, expected_loss, rtol=1e-5)
    self.assertAllClose(metrics['contrastive_accuracy'], expected_accuracy)
    self.assertAllClose(metrics['contrastive_entropy'], expected_entropy, rtol=1e-5)

  def test_aligned_pairs_score_better_than_random(self):
    aligned_loss, aligned_metrics = contrastive.contrastive_loss(*_random_pair(noise=0.01))
    random_loss, _ = contrastive.contrastive_loss(*_random_pair(noise=100.0))
    self.assertLess(aligned_loss, 0.5 * random_loss)
    self.assertEqual(aligned_metrics['contrastive_accuracy'], 1.0)

  def test_gradient_descent_lowers_loss(self):
    embeddings_a, embeddings_b = _random_pair(noise=3.0)
    variables = tf.Variable(embeddings_a), tf.Variable(embeddings_b)
    losses = []
    for _ in range(20):
      with tf.GradientTape() as tape:
        loss, _ = contrastive.contrastive_loss(*variables)
      gradients = tape.gradient(loss, variables)
      for variable, gradient in zip(variables, gradients, strict=True):
        self.assertTrue(np.all(np.isfinite(gradient)))
        variable.assign_sub(0.5 * gradient)
      losses.append(float(loss))
    self.assertTrue(np.all(np.diff(losses) < 0), msg=losses)

  def test_gradient_matches_finite_differences(self):
    embeddings_a, embeddings_b = _random_pair(num_videos=3, dim=4)
    theoretical, numerical = tf.test.compute_gradient(
      lambda a: contrastive.contrastive_loss(a, embeddings_b, 0.5)[0], [embeddings_a], delta=1e-2
    )
    self.assertAllClose(theoretical[0], numerical[0], atol=2e-2)

  def test_bfloat16_inputs_give_float32(self):
    embeddings_a, embeddings_b = _random_pair()
    loss, metrics = contrastive.contrastive_loss(
      tf.cast(embeddings_a, tf.bfloat16), tf.cast(embeddings_b, tf.bfloat16)
    )
    self.assertEqual(loss.dtype, tf.float32)
    self.assertEqual({m.dtype for m in metrics.values()}, {tf.float32})
    rounded = [
      tf.cast(tf.cast(e, tf.bfloat16), tf.float32).numpy() for e in (embeddings_a, embeddings_b)
    ]
    self.assertAllClose(loss, numpy_nt_xent(*rounded, 0.1)[0], rtol=1e-5)

  def test_cross_replica_context_is_rejected(self):
    strategy = tf.distribute.OneDeviceStrategy('/cpu:0')
    with strategy.scope(), self.assertRaisesRegex(ValueError, 'needs a replica context'):
      contrastive.contrastive_loss(*_random_pair())


if __name__ == '__main__':
  tf.test.main()
