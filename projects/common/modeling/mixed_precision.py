"""bfloat16 that trains on every CPU: the stem convolution, which oneDNN gets wrong, stays float32.

TensorFlow 2.20's oneDNN `Conv3DBackpropFilterV2` in bfloat16 returns non-finite filter gradients
for a video stem's convolution (a 5x7x7 or 1x7x7 kernel on the 3-channel clip at 112^2, strides
2x2x2) on CPUs with native bfloat16 (AVX512-BF16 / AMX): an R3D-50 under the bfloat16 policy has a
finite loss at step 0 and NaN from step 1. The same kernel is finite in float32, with temporal
stride 1, at 56^2, and with oneDNN off. Computing the stem in float32 removes the failing kernel,
at the price of a float32 share of the convolution MACs: 9.9% in `cvrl_kinetics600`'s R3D-50,
0.9% in R3D-RS-50 (counted at 8x112^2).

Only the stem: every convolution after it reads the stem's (or the stem pool's) output, at half
the clip's resolution or less (or, in the stride-1 demo stems, at 32^2), the sizes at which the
bfloat16 kernel was finite. In the R3D-50 and R3D-RS-50 configs the stem is also the only Conv3D
with a temporal stride above 1, so keeping those instead would select the same layer. A non-finite
loss left by any other kernel stops training with an error (projects.common.training.trainer)
rather than passing unseen.
"""

import tensorflow as tf
import tf_keras


def stem_convolution(model: tf_keras.layers.Layer) -> tf_keras.layers.Conv3D | None:
  """The Conv3D that reads the clip: the first in the model's layer order; None if it has none.

  Keras orders a functional model's layers from its inputs to its outputs, and nested models
  (a backbone inside a classifier) are expanded in place, so the first Conv3D is the stem's input
  convolution for every backbone the configs select (ResNet3D v0 and ResNet-D v1 stems, SlimR3D,
  SlimResNet3DRS; `mixed_precision_test` checks each).
  """
  for layer in model._flatten_layers(include_self=False, recursive=True):  # noqa: SLF001
    if isinstance(layer, tf_keras.layers.Conv3D):
      return layer
  return None


def runs_on_cpu_only() -> bool:
  """True if TensorFlow sees no GPU or TPU, so every kernel of a step is a CPU (oneDNN) kernel."""
  return not (tf.config.list_logical_devices('GPU') or tf.config.list_logical_devices('TPU'))


def compute_stem_in_float32(model: tf_keras.layers.Layer) -> tf_keras.layers.Conv3D | None:
  """Makes the model's stem convolution compute in float32 if it computes in bfloat16.

  Works on a built model: a Keras layer casts its inputs and reads its (float32) variables in its
  compute dtype at every call, and a functional model calls each layer when it runs, so a new
  policy takes effect from the next trace on. Returns the convolution it changed, else None.
  """
  stem = stem_convolution(model)
  if stem is None or stem.compute_dtype != 'bfloat16':
    return None
  # tf_keras has no public setter for a built layer's policy; this is the one its constructor uses.
  stem._set_dtype_policy(tf_keras.mixed_precision.Policy('float32'))  # noqa: SLF001
  return stem
