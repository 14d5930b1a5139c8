"""Backbone configs of the 3D ResNet-RS family: Model Garden's `resnet_3d_rs` plus a slim one."""

import dataclasses

from official.modeling import hyperparams

from projects.common.configs import backbones_3d


@dataclasses.dataclass
class SlimResNet3DRS(hyperparams.Config):
  """R3D-RS at any depth and width (projects.resnet3d_rs.modeling.slim_resnet_3d_rs).

  Defaults: one bottleneck block per stage at 1/4 width, the demo network (1.1 M parameters).
  """

  blocks_per_stage: tuple[int, ...] = (1, 1, 1, 1)
  width_multiplier: float = 0.25
  temporal_kernel_sizes: tuple[int, ...] = (1, 1, 3, 3)
  temporal_strides: tuple[int, ...] = (1, 1, 1, 1)
  use_self_gating: bool = True
  se_ratio: float = 0.25
  stochastic_depth_drop_rate: float = 0.1
  stem_conv_temporal_kernel_size: int = 5
  stem_conv_temporal_stride: int = 1
  stem_pool: bool = False


@dataclasses.dataclass
class Backbone3D(backbones_3d.Backbone3D):
  """The projects' 3D backbones (`resnet_3d`, `resnet_3d_rs`, `slim_r3d`) plus `slim_resnet_3d_rs`."""

  slim_resnet_3d_rs: SlimResNet3DRS = dataclasses.field(default_factory=SlimResNet3DRS)
