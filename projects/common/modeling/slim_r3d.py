"""A slim R3D (3D ResNet with basic blocks) backbone for demos, tests and small data.

Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition" (R3D-18/34),
with a width multiplier so the same network shape runs on a laptop CPU in minutes.
"""

from collections.abc import Sequence

import tensorflow as tf
import tf_keras
from official.modeling import hyperparams
from official.vision.modeling.backbones import factory

# Basic blocks per stage, as in R3D / ResNet v1.
BLOCKS_PER_STAGE = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
BASE_FILTERS = (64, 128, 256, 512)


class EndpointBackbone(tf_keras.Model):
  """A functional backbone whose outputs are endpoints '2'..'5', like Model Garden's ResNet3D.

  Subclasses build the graph from their constructor arguments, pass those arguments as
  `config_dict`, and so serialise and rebuild from them.
  """

  def __init__(self, config_dict: dict, inputs, endpoints: dict[str, tf.Tensor], **kwargs):
    self._config_dict = config_dict
    self._output_specs = {name: t.get_shape() for name, t in endpoints.items()}
    super().__init__(inputs=inputs, outputs=endpoints, **kwargs)

  def get_config(self):
    return dict(self._config_dict)

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(**config)

  @property
  def output_specs(self):
    return self._output_specs


def build_endpoint_backbone(
  backbone_cls: type[EndpointBackbone],
  input_specs: tf_keras.layers.InputSpec,
  backbone_config: hyperparams.Config,
  norm_activation_config: hyperparams.Config,
  l2_regularizer: tf_keras.regularizers.Regularizer | None,
) -> EndpointBackbone:
  """`backbone_cls` from a backbone one-of whose chosen config's fields are its arguments."""
  return backbone_cls(
    **backbone_config.get().as_dict(),
    input_specs=input_specs,
    activation=norm_activation_config.activation,
    use_sync_bn=norm_activation_config.use_sync_bn,
    norm_momentum=norm_activation_config.norm_momentum,
    norm_epsilon=norm_activation_config.norm_epsilon,
    kernel_regularizer=l2_regularizer,
  )


@tf_keras.utils.register_keras_serializable(package='projects')
class SlimR3D(EndpointBackbone):
  """R3D-10/18/34 with a width multiplier; returns endpoints '2'..'5' like Model Garden's ResNet3D."""

  def __init__(
    self,
    depth: int = 18,
    width_multiplier: float = 1.0,
    temporal_kernel_sizes: Sequence[int] = (3, 3, 3, 3),
    temporal_strides: Sequence[int] = (1, 1, 2, 2),
    stem_temporal_kernel_size: int = 3,
    stem_spatial_stride: int = 2,
    stem_pool: bool = True,
    input_specs: tf_keras.layers.InputSpec | None = None,
    activation: str = 'relu',
    use_sync_bn: bool = False,
    norm_momentum: float = 0.99,
    norm_epsilon: float = 1e-3,
    kernel_initializer: str = 'he_normal',
    kernel_regularizer: tf_keras.regularizers.Regularizer | None = None,
    **kwargs,
  ):
    if depth not in BLOCKS_PER_STAGE:
      raise ValueError(f'SlimR3D depth must be one of {sorted(BLOCKS_PER_STAGE)}, got {depth}')
    if len(temporal_kernel_sizes) != 4 or len(temporal_strides) != 4:
      raise ValueError(
        'SlimR3D needs one temporal kernel size and one temporal stride per stage (4 each), '
        f'got {list(temporal_kernel_sizes)} and {list(temporal_strides)}'
      )
    config_dict = {
      'depth': depth,
      'width_multiplier': width_multiplier,
      'temporal_kernel_sizes': list(temporal_kernel_sizes),
      'temporal_strides': list(temporal_strides),
      'stem_temporal_kernel_size': stem_temporal_kernel_size,
      'stem_spatial_stride': stem_spatial_stride,
      'stem_pool': stem_pool,
      'input_specs': input_specs,
      'activation': activation,
      'use_sync_bn': use_sync_bn,
      'norm_momentum': norm_momentum,
      'norm_epsilon': norm_epsilon,
      'kernel_initializer': kernel_initializer,
      'kernel_regularizer': kernel_regularizer,
    }
    if input_specs is None:
      input_specs = tf_keras.layers.InputSpec(shape=[None, None, None, None, 3])
    conv_kwargs = {
      'padding': 'same',
      'use_bias': False,
      'kernel_initializer': kernel_initializer,
      'kernel_regularizer': kernel_regularizer,
    }

    def norm_act(x, with_activation=True):
      x = tf_keras.layers.BatchNormalization(
        momentum=norm_momentum, epsilon=norm_epsilon, synchronized=use_sync_bn
      )(x)
      return tf_keras.layers.Activation(activation)(x) if with_activation else x

    def conv(x, filters, kernel, strides=(1, 1, 1)):
      return tf_keras.layers.Conv3D(filters, kernel, strides=strides, **conv_kwargs)(x)

    def width(filters):
      # At least 8 channels so very slim variants keep a usable batch-norm statistic per channel.
      return max(8, int(round(filters * width_multiplier)))

    inputs = tf_keras.Input(shape=input_specs.shape[1:])
    x = conv(
      inputs,
      width(64),
      (stem_temporal_kernel_size, 7, 7),
      strides=(1, stem_spatial_stride, stem_spatial_stride),
    )
    x = norm_act(x)
    if stem_pool:
      x = tf_keras.layers.MaxPool3D((1, 3, 3), strides=(1, 2, 2), padding='same')(x)

    endpoints = {}
    for stage, (num_blocks, base_filters) in enumerate(
      zip(BLOCKS_PER_STAGE[depth], BASE_FILTERS, strict=True)
    ):
      filters = width(base_filters)
      kernel_t = temporal_kernel_sizes[stage]
      for block in range(num_blocks):
        strides = (temporal_strides[stage], 1 if stage == 0 else 2, 1 if stage == 0 else 2)
        if block > 0:
          strides = (1, 1, 1)
        shortcut = x
        if strides != (1, 1, 1) or x.shape[-1] != filters:
          shortcut = conv(x, filters, (1, 1, 1), strides)
          shortcut = norm_act(shortcut, with_activation=False)
        x = conv(x, filters, (kernel_t, 3, 3), strides)
        x = norm_act(x)
        x = conv(x, filters, (kernel_t, 3, 3))
        x = norm_act(x, with_activation=False)
        x = tf_keras.layers.Activation(activation)(x + shortcut)
      endpoints[str(stage + 2)] = x

    super().__init__(config_dict, inputs, endpoints, **kwargs)


@factory.register_backbone_builder('slim_r3d')
def build_slim_r3d(
  input_specs: tf_keras.layers.InputSpec,
  backbone_config: hyperparams.Config,
  norm_activation_config: hyperparams.Config,
  l2_regularizer: tf_keras.regularizers.Regularizer | None = None,
) -> tf_keras.Model:
  """Builds SlimR3D from a `Backbone3D` config whose type is 'slim_r3d'."""
  return build_endpoint_backbone(
    SlimR3D, input_specs, backbone_config, norm_activation_config, l2_regularizer
  )
