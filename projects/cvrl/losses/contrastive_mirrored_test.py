"""Tests the NT-Xent loss across two MirroredStrategy replicas on two logical CPU devices."""

import numpy as np
import tensorflow as tf

from projects.cvrl.losses import contrastive, two_cpu_replicas
from projects.cvrl.losses.contrastive_test import numpy_nt_xent


def _random_pair(num_videos: int, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(0)
  embeddings_a = rng.normal(size=(num_videos, dim)).astype(np.float32)
  return embeddings_a, embeddings_a + rng.normal(size=(num_videos, dim)).astype(np.float32)


class MirroredContrastiveLossTest(two_cpu_replicas.TwoReplicaTestCase):
  def _run_per_replica(self, embeddings_a, embeddings_b, replica_batches, with_gradients=True):
    """Per-replica (loss, metrics[, gradients of loss / num_replicas]) for the given row split."""
    starts = np.cumsum([0, *replica_batches])

    def shard(embeddings):
      return self.strategy.experimental_distribute_values_from_function(
        lambda ctx: embeddings[
          starts[ctx.replica_id_in_sync_group] : starts[ctx.replica_id_in_sync_group + 1]
        ]
      )

    def replica_step(local_a, local_b):
      with tf.GradientTape() as tape:
        tape.watch([local_a, local_b])
        loss, metrics = contrastive.contrastive_loss(local_a, local_b)
        scaled_loss = loss / tf.distribute.get_replica_context().num_replicas_in_sync
      if not with_gradients:
        return loss, metrics
      return loss, metrics, tape.gradient(scaled_loss, [local_a, local_b])

    outputs = tf.function(lambda a, b: self.strategy.run(replica_step, args=(a, b)))(
      shard(embeddings_a), shard(embeddings_b)
    )
    return tf.nest.map_structure(
      lambda value: [t.numpy() for t in self.strategy.experimental_local_results(value)], outputs
    )

  def test_replica_losses_average_to_global_loss(self):
    embeddings_a, embeddings_b = _random_pair(num_videos=8)
    losses, metrics, _ = self._run_per_replica(embeddings_a, embeddings_b, [4, 4])
    expected_loss, expected_accuracy, expected_entropy = numpy_nt_xent(
      embeddings_a, embeddings_b, 0.1
    )
    self.assertNotAllClose(losses[0], losses[1])
    self.assertAllClose(np.mean(losses), expected_loss, rtol=1e-5)
    self.assertAllClose(np.mean(metrics['contrastive_accuracy']), expected_accuracy)
    self.assertAllClose(np.mean(metrics['contrastive_entropy']), expected_entropy, rtol=1e-5)

  def test_summed_gradients_equal_global_gradient(self):
    # Model Garden sums the replicas' gradients of loss / num_replicas_in_sync; the all-gather
    # must route each replica's share back so that sum is the global loss's gradient.
    embeddings_a, embeddings_b = _random_pair(num_videos=8)
    _, _, gradients = self._run_per_replica(embeddings_a, embeddings_b, [4, 4])
    global_a, global_b = tf.constant(embeddings_a), tf.constant(embeddings_b)
    with tf.GradientTape() as tape:
      tape.watch([global_a, global_b])
      global_loss, _ = contrastive.contrastive_loss(global_a, global_b)
    expected = tape.gradient(global_loss, [global_a, global_b])
    for replica_gradients, expected_gradient in zip(gradients, expected, strict=True):
      self.assertAllClose(np.concatenate(replica_gradients), expected_gradient, atol=1e-6)

  def test_ragged_final_evaluation_batch(self):
    # Forward only: a ragged batch is an evaluation batch (training drops the remainder), and
    # MirroredStrategy's all_gather gradient does not support uneven shards.
    embeddings_a, embeddings_b = _random_pair(num_videos=7)
    losses, _ = self._run_per_replica(embeddings_a, embeddings_b, [4, 3], with_gradients=False)
    expected_loss, _, _ = numpy_nt_xent(embeddings_a, embeddings_b, 0.1)
    self.assertAllClose((4 * losses[0] + 3 * losses[1]) / 7, expected_loss, rtol=1e-5)


if __name__ == '__main__':
  tf.test.main()
