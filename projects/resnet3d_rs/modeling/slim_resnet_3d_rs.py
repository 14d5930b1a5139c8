"""A narrow, shallow 3D ResNet-RS for demos and tests, built from Model Garden's R3D-RS pieces.

Model Garden's `resnet_3d_rs` only comes at depth 50-350 and full width (47 M parameters at
R3D-RS-50; about 3 s per step of 16 tiny 8x32^2 clips on 2 CPU cores). This backbone keeps every
architectural change of 3D ResNet-RS (Du et al. 2021) -- the ResNet-D stem, bottleneck blocks
with squeeze-and-excitation, self-gating and stochastic depth (Model Garden's `BottleneckBlock3D`)
-- and makes the number of blocks and the width free, so the RS recipe trains on a CPU in minutes.
"""

from collections.abc import Sequence

import tf_keras
from official.modeling import hyperparams, tf_utils
from official.vision.modeling.backbones import factory
from official.vision.modeling.layers import nn_blocks_3d, nn_layers

from projects.common.modeling import slim_r3d

# Bottleneck widths of the four stages (the block outputs are 4x wider), as in Model Garden's
# RESNET_SPECS; and the ResNet-D stem's three convolutions (Model Garden's stem_type 'v1').
BASE_FILTERS = (64, 128, 256, 512)
STEM_FILTERS = (32, 32, 64)


@tf_keras.utils.register_keras_serializable(package='projects')
class SlimResNet3DRS(slim_r3d.EndpointBackbone):
  """R3D-RS with any blocks per stage and a width multiplier; endpoints '2'..'5' like ResNet3D."""

  def __init__(
    self,
    blocks_per_stage: Sequence[int] = (1, 1, 1, 1),
    width_multiplier: float = 0.25,
    temporal_kernel_sizes: Sequence[int] = (1, 1, 3, 3),
    temporal_strides: Sequence[int] = (1, 1, 1, 1),
    use_self_gating: bool = True,
    se_ratio: float = 0.25,
    stochastic_depth_drop_rate: float = 0.1,
    stem_conv_temporal_kernel_size: int = 5,
    stem_conv_temporal_stride: int = 1,
    stem_pool: bool = False,
    input_specs: tf_keras.layers.InputSpec | None = None,
    activation: str = 'relu',
    use_sync_bn: bool = False,
    norm_momentum: float = 0.99,
    norm_epsilon: float = 1e-3,
    kernel_initializer: str = 'VarianceScaling',
    kernel_regularizer: tf_keras.regularizers.Regularizer | None = None,
    **kwargs,
  ):
    per_stage = {
      'blocks_per_stage': blocks_per_stage,
      'temporal_kernel_sizes': temporal_kernel_sizes,
      'temporal_strides': temporal_strides,
    }
    for name, values in per_stage.items():
      if len(values) != len(BASE_FILTERS):
        raise ValueError(
          f'SlimResNet3DRS needs one {name} entry per stage ({len(BASE_FILTERS)}), '
          f'got {list(values)}'
        )
    if min(blocks_per_stage) < 1:
      raise ValueError(f'every stage needs at least one block, got {list(blocks_per_stage)}')
    config_dict = {
      'blocks_per_stage': list(blocks_per_stage),
      'width_multiplier': width_multiplier,
      'temporal_kernel_sizes': list(temporal_kernel_sizes),
      'temporal_strides': list(temporal_strides),
      'use_self_gating': use_self_gating,
      'se_ratio': se_ratio,
      'stochastic_depth_drop_rate': stochastic_depth_drop_rate,
      'stem_conv_temporal_kernel_size': stem_conv_temporal_kernel_size,
      'stem_conv_temporal_stride': stem_conv_temporal_stride,
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

    def width(filters):
      # At least 8 channels so the SE bottleneck (ratio 0.25 of 4x the width) keeps 8 units.
      return max(8, int(round(filters * width_multiplier)))

    def conv_bn_act(x, filters, kernel, strides):
      x = tf_keras.layers.Conv3D(
        filters,
        kernel,
        strides=strides,
        padding='same',
        use_bias=False,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=kernel_regularizer,
      )(x)
      x = tf_keras.layers.BatchNormalization(
        momentum=norm_momentum, epsilon=norm_epsilon, synchronized=use_sync_bn
      )(x)
      return tf_utils.get_activation(activation)(x)

    inputs = tf_keras.Input(shape=input_specs.shape[1:])
    # ResNet-D stem adapted to 3D: only the first convolution is temporal.
    x = conv_bn_act(
      inputs,
      width(STEM_FILTERS[0]),
      (stem_conv_temporal_kernel_size, 3, 3),
      (stem_conv_temporal_stride, 2, 2),
    )
    x = conv_bn_act(x, width(STEM_FILTERS[1]), (1, 3, 3), (1, 1, 1))
    x = conv_bn_act(x, width(STEM_FILTERS[2]), (1, 3, 3), (1, 1, 1))
    if stem_pool:
      x = tf_keras.layers.MaxPool3D((1, 3, 3), strides=(1, 2, 2), padding='same')(x)

    endpoints = {}
    for stage, num_blocks in enumerate(blocks_per_stage):
      for block in range(num_blocks):
        first = block == 0
        x = nn_blocks_3d.BottleneckBlock3D(
          filters=width(BASE_FILTERS[stage]),
          temporal_kernel_size=temporal_kernel_sizes[stage],
          temporal_strides=temporal_strides[stage] if first else 1,
          spatial_strides=2 if first and stage > 0 else 1,
          # Grows linearly with the stage as in Model Garden's ResNet3D.
          stochastic_depth_drop_rate=nn_layers.get_stochastic_depth_rate(
            stochastic_depth_drop_rate, stage + 2, 5
          ),
          se_ratio=se_ratio,
          # As in Model Garden's ResNet3D: self-gating in the last block of each stage.
          use_self_gating=use_self_gating and block == num_blocks - 1,
          kernel_initializer=kernel_initializer,
          kernel_regularizer=kernel_regularizer,
          activation=activation,
          use_sync_bn=use_sync_bn,
          norm_momentum=norm_momentum,
          norm_epsilon=norm_epsilon,
        )(x)
      endpoints[str(stage + 2)] = x

    super().__init__(config_dict, inputs, endpoints, **kwargs)


@factory.register_backbone_builder('slim_resnet_3d_rs')
def build_slim_resnet_3d_rs(
  input_specs: tf_keras.layers.InputSpec,
  backbone_config: hyperparams.Config,
  norm_activation_config: hyperparams.Config,
  l2_regularizer: tf_keras.regularizers.Regularizer | None = None,
) -> tf_keras.Model:
  """Builds SlimResNet3DRS from a backbone one-of whose type is 'slim_resnet_3d_rs'."""
  return slim_r3d.build_endpoint_backbone(
    SlimResNet3DRS, input_specs, backbone_config, norm_activation_config, l2_regularizer
  )
