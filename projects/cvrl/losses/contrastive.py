"""NT-Xent (InfoNCE) loss of CVRL with negatives gathered from every replica."""

import tensorflow as tf

# Subtracted from a clip's similarity with itself so it never counts as a candidate; finite (unlike
# -inf) so softmax, cross-entropy and their gradients stay NaN-free (SimCLR's choice).
_SELF_SIMILARITY_PENALTY = 1e9


def contrastive_loss(
  embeddings_a: tf.Tensor, embeddings_b: tf.Tensor, temperature: float = 0.1
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
  """NT-Xent loss of this replica's clip pairs against the global batch of all replicas.

  `embeddings_a[i]` and `embeddings_b[i]`, `[local_batch, dim]`, come from the two clips of video
  i (CVRL Sec. 3.1; 0.1 is the temperature of its pre-training setup). Each of the
  2 * local_batch clips is classified among the 2 * global_batch - 1 other clips of all replicas,
  its pair being the positive. Both are L2-normalised and all the arithmetic is float32 whatever
  their dtype, so a bfloat16 policy keeps this stable.

  Call it in a replica context: inside `strategy.run`, or with no strategy (one device). All
  replicas must call it, in the same order, as it all-gathers across them.

  Returns:
    The mean over this replica's videos of the two clips' cross-entropies (the scale of SimCLR's
    `add_contrastive_loss`), and metrics `contrastive_accuracy` (fraction of clips whose positive
    has the top logit) and `contrastive_entropy` (mean entropy of the softmax over the logits),
    all float32 scalars.

  Scaling: with equal local batches the mean of the replicas' losses is the global batch's loss.
  Model Garden's trainer SUMS gradients across replicas, so the task should differentiate
  `loss / num_replicas_in_sync`; the all-gather's gradient sums the other replicas' contributions
  back, so that yields exactly the global loss's gradient. Uneven local batches (a final
  evaluation batch) are supported forward only: MirroredStrategy cannot differentiate an
  all-gather of uneven shards.
  """
  context = tf.distribute.get_replica_context()
  if context is None:
    raise ValueError(
      'contrastive_loss needs a replica context (call it inside strategy.run), '
      'got the cross-replica context'
    )
  local_a = tf.math.l2_normalize(tf.cast(embeddings_a, tf.float32), axis=-1)
  local_b = tf.math.l2_normalize(tf.cast(embeddings_b, tf.float32), axis=-1)
  local_batch = tf.shape(local_a)[0]
  global_a, global_b = context.all_gather([local_a, local_b], axis=0)
  # Offsets from the gathered sizes rather than replica_id * local_batch: correct for a ragged
  # final evaluation batch too. A separate gather, as all_gather's gradient stacks its inputs.
  replica_batches = context.all_gather(tf.reshape(local_batch, [1]), axis=0)
  replica_id = tf.cast(context.replica_id_in_sync_group, tf.int32)
  positive_index = tf.reduce_sum(replica_batches[:replica_id]) + tf.range(local_batch)
  self_mask = _SELF_SIMILARITY_PENALTY * tf.one_hot(positive_index, tf.shape(global_a)[0])

  def logits_of(anchors: tf.Tensor, same_view: tf.Tensor, other_view: tf.Tensor) -> tf.Tensor:
    # Columns: the other view's clips (the positive among them) then the same view's clips.
    return tf.concat(
      [
        tf.matmul(anchors, other_view, transpose_b=True) / temperature,
        tf.matmul(anchors, same_view, transpose_b=True) / temperature - self_mask,
      ],
      axis=1,
    )

  logits = tf.concat(
    [logits_of(local_a, global_a, global_b), logits_of(local_b, global_b, global_a)], axis=0
  )
  labels = tf.tile(positive_index, [2])
  cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
  loss = 2.0 * tf.reduce_mean(cross_entropy)

  log_probs = tf.nn.log_softmax(logits)
  metrics = {
    'contrastive_accuracy': tf.reduce_mean(
      tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels), tf.float32)
    ),
    'contrastive_entropy': tf.reduce_mean(-tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=1)),
  }
  return loss, metrics
