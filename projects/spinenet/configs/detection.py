"""RetinaNet and Mask R-CNN task configs of the SpineNet project: Model Garden's, plus the
`spinenet_scaled` backbone and a built-in dataset that fills `input_path`."""

import dataclasses
from typing import Optional

from official.vision.configs import backbones as mg_backbones
from official.vision.configs import maskrcnn as mg_maskrcnn
from official.vision.configs import retinanet as mg_retinanet


@dataclasses.dataclass
class SpineNetScaled(mg_backbones.SpineNet):
  """Model Garden's `SpineNet` fields plus the scaling that `model_id` otherwise fixes.

  Each scaling field left at None keeps the value of `model_id` in Model Garden's
  `spinenet.SCALING_MAP` (projects.spinenet.modeling.spinenet_scaled builds it).
  """

  endpoints_num_filters: Optional[int] = None  # noqa: UP045 (hyperparams reads typing.Optional)
  filter_size_scale: Optional[float] = None  # noqa: UP045
  resample_alpha: Optional[float] = None  # noqa: UP045
  block_repeats: Optional[int] = None  # noqa: UP045


@dataclasses.dataclass
class Backbone(mg_backbones.Backbone):
  """Model Garden's 2D backbones plus `spinenet_scaled`."""

  spinenet_scaled: SpineNetScaled = dataclasses.field(default_factory=SpineNetScaled)


def _spinenet_backbone() -> Backbone:
  return Backbone(type='spinenet', spinenet=mg_backbones.SpineNet())


@dataclasses.dataclass
class RetinaNet(mg_retinanet.RetinaNet):
  backbone: Backbone = dataclasses.field(default_factory=_spinenet_backbone)


@dataclasses.dataclass
class MaskRCNN(mg_maskrcnn.MaskRCNN):
  backbone: Backbone = dataclasses.field(default_factory=_spinenet_backbone)


@dataclasses.dataclass
class RetinaNetDataConfig(mg_retinanet.DataConfig):
  """Model Garden's RetinaNet input plus `builtin_dataset`.

  `builtin_dataset` names a generated dataset (`projects.common.datasets.builtin`); when it is
  set and `input_path` is empty, `train.py` generates the data once into the cache and writes its
  file pattern into `input_path` (and the validation JSON into `task.annotation_file`).
  """

  builtin_dataset: str = ''


@dataclasses.dataclass
class MaskRCNNDataConfig(mg_maskrcnn.DataConfig):
  """Model Garden's Mask R-CNN input plus `builtin_dataset` (see `RetinaNetDataConfig`)."""

  builtin_dataset: str = ''


@dataclasses.dataclass
class RetinaNetTask(mg_retinanet.RetinaNetTask):
  model: RetinaNet = dataclasses.field(default_factory=RetinaNet)
  train_data: RetinaNetDataConfig = dataclasses.field(
    default_factory=lambda: RetinaNetDataConfig(is_training=True)
  )
  validation_data: RetinaNetDataConfig = dataclasses.field(
    default_factory=lambda: RetinaNetDataConfig(is_training=False)
  )


@dataclasses.dataclass
class MaskRCNNTask(mg_maskrcnn.MaskRCNNTask):
  model: MaskRCNN = dataclasses.field(default_factory=MaskRCNN)
  train_data: MaskRCNNDataConfig = dataclasses.field(
    default_factory=lambda: MaskRCNNDataConfig(is_training=True)
  )
  validation_data: MaskRCNNDataConfig = dataclasses.field(
    default_factory=lambda: MaskRCNNDataConfig(is_training=False, drop_remainder=False)
  )
