"""3D backbone configs: Model Garden's `Backbone3D` one-of plus the projects' own backbones."""

import dataclasses

from official.modeling import hyperparams
from official.vision.configs import backbones_3d


@dataclasses.dataclass
class SlimR3D(hyperparams.Config):
  """R3D-10/18/34 with a width multiplier (projects.common.modeling.slim_r3d)."""

  depth: int = 18
  width_multiplier: float = 1.0
  temporal_kernel_sizes: tuple[int, ...] = (3, 3, 3, 3)
  temporal_strides: tuple[int, ...] = (1, 1, 2, 2)
  stem_temporal_kernel_size: int = 3
  # Small inputs (e.g. 32^2 digits) keep detail with a stride-1 stem and no stem pool.
  stem_spatial_stride: int = 2
  stem_pool: bool = True


@dataclasses.dataclass
class Backbone3D(backbones_3d.Backbone3D):
  """Model Garden's 3D backbones (`resnet_3d`, `resnet_3d_rs`) plus `slim_r3d`."""

  slim_r3d: SlimR3D = dataclasses.field(default_factory=SlimR3D)
