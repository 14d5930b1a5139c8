"""Leave-one-out kNN accuracy against a NumPy reference, and its leave-one-out property."""

from unittest import mock

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from projects.cvrl.evaluation import knn


def numpy_knn_accuracy(features, labels, num_neighbors, temperature) -> float:
  normalized = features / np.linalg.norm(features, axis=1, keepdims=True)
  similarity = normalized @ normalized.T
  np.fill_diagonal(similarity, -np.inf)
  correct = 0
  for i, row in enumerate(similarity):
    neighbours = np.argsort(-row)[:num_neighbors]
    votes = np.zeros(labels.max() + 1)
    np.add.at(votes, labels[neighbours], np.exp(row[neighbours] / temperature))
    correct += int(np.argmax(votes) == labels[i])
  return correct / len(labels)


class KnnTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.product(num_neighbors=[1, 5, 200], chunk_rows=[7, 1024])
  def test_matches_numpy(self, num_neighbors, chunk_rows):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 8))
    labels = rng.integers(0, 4, size=60)
    features = centers[labels] + 1.5 * rng.normal(size=(60, 8))
    with mock.patch.object(knn, '_CHUNK_ROWS', chunk_rows):
      accuracy = knn.leave_one_out_knn_accuracy(features, labels, num_neighbors, 0.1)
    expected = numpy_knn_accuracy(features, labels, min(num_neighbors, 59), 0.1)
    self.assertAlmostEqual(accuracy, expected)
    self.assertBetween(accuracy, 0.4, 1.0)

  def test_an_example_never_votes_for_itself(self):
    # Every label is unique, so only the example itself could ever vote correctly.
    features = np.eye(5) + 0.01
    self.assertEqual(knn.leave_one_out_knn_accuracy(features, np.arange(5), 1), 0.0)

  def test_rejects_too_few_examples(self):
    with self.assertRaisesRegex(ValueError, 'at least 2 examples'):
      knn.leave_one_out_knn_accuracy(np.ones((1, 3)), np.zeros(1, np.int64))


if __name__ == '__main__':
  tf.test.main()
