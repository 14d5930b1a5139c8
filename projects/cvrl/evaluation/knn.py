"""Leave-one-out weighted kNN classification of a set of features: a label-cheap probe of a backbone."""

import numpy as np
import tensorflow as tf

# Rows of the similarity matrix computed at once: 1024 x 30k floats is about 120 MB.
_CHUNK_ROWS = 1024


def leave_one_out_knn_accuracy(
  features: np.ndarray,
  labels: np.ndarray,
  num_neighbors: int = 20,
  temperature: float = 0.07,
) -> float:
  """Top-1 accuracy of classifying each example by its nearest other examples.

  Similarity is cosine; each of the `num_neighbors` nearest examples (never the example itself)
  votes for its label with weight exp(similarity / temperature), as in Wu et al., "Unsupervised
  Feature Learning via Non-Parametric Instance Discrimination" (CVPR 2018).

  Args:
    features: `[num_examples, dim]` features (any scale; they are L2-normalised here).
    labels: `[num_examples]` integer labels in [0, num_classes).
    num_neighbors: neighbours per vote, capped at `num_examples - 1`.
    temperature: vote sharpness; smaller weighs the closest neighbours more.

  Returns:
    The fraction of examples whose weighted vote is their own label.
  """
  features = np.asarray(features, np.float32)
  labels = np.asarray(labels, np.int64)
  num_examples = len(labels)
  if features.ndim != 2 or features.shape[0] != num_examples:
    raise ValueError(
      f'features must be [num_examples, dim] with one row per label, got {features.shape} '
      f'for {num_examples} labels'
    )
  if num_examples < 2:
    raise ValueError(f'leave-one-out kNN needs at least 2 examples, got {num_examples}')
  if num_neighbors < 1:
    raise ValueError(f'num_neighbors must be >= 1, got {num_neighbors}')
  num_neighbors = min(num_neighbors, num_examples - 1)
  num_classes = int(labels.max()) + 1
  normalized = tf.math.l2_normalize(tf.constant(features), axis=1)
  labels_tensor = tf.constant(labels)
  num_correct = 0
  for start in range(0, num_examples, _CHUNK_ROWS):
    rows = tf.range(start, min(start + _CHUNK_ROWS, num_examples))
    similarity = tf.matmul(tf.gather(normalized, rows), normalized, transpose_b=True)
    # Cosine similarity is at least -1, so -2 puts each example last among its own candidates.
    self_positions = tf.stack([rows - start, rows], axis=1)
    similarity = tf.tensor_scatter_nd_update(
      similarity, self_positions, tf.fill([tf.shape(rows)[0]], -2.0)
    )
    top_similarity, top_indices = tf.math.top_k(similarity, k=num_neighbors)
    votes = (
      tf.one_hot(tf.gather(labels_tensor, top_indices), num_classes)
      * tf.exp(top_similarity / temperature)[..., tf.newaxis]
    )
    predictions = tf.argmax(tf.reduce_sum(votes, axis=1), axis=1)
    num_correct += int(
      tf.reduce_sum(tf.cast(predictions == tf.gather(labels_tensor, rows), tf.int32))
    )
  return num_correct / num_examples
