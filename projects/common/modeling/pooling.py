"""Global pooling of a video backbone's endpoints: one feature vector per clip."""

import tensorflow as tf


def global_pool(endpoints: dict[str, tf.Tensor]) -> tf.Tensor:
  """Float32 global average pool of the deepest endpoint, `[batch, channels]`.

  The clip embedding of every head and tool. The deepest endpoint is the highest level ('5' of
  '2'..'5', as Model Garden's ResNet3D names them). Float32 whatever the backbone computes in:
  heads, normalisation and losses after it are cheap and low precision hurts them.
  """
  deepest = endpoints[max(endpoints, key=int)]
  return tf.cast(tf.reduce_mean(deepest, axis=[1, 2, 3]), tf.float32)
