"""CVRL config schema: the pretraining and linear-evaluation task configs and their parts.

Qian et al., "Spatiotemporal Contrastive Video Representation Learning", CVPR 2021
(arXiv 2008.03800), cited as "paper". The defaults come from the authors' own release in Model
Garden, cited as "release", whose R3D-50 checkpoints reproduce the paper's results: the model
defaults of official/projects/video_ssl/configs/video_ssl.py and its README (parameter counts).
The registered experiments are in `experiments.py` (paper settings) and `demo.py` (CPU demos).
"""

import dataclasses

from official.core import config_definitions as cfg
from official.modeling import hyperparams
from official.vision.configs import backbones_3d as mg_backbones_3d
from official.vision.configs import common
from official.vision.configs import video_classification as mg_video
from official.vision.modeling.backbones import resnet_3d

from projects.common import video_ops
from projects.common.configs import backbones_3d, video_data
from projects.cvrl.ops import temporal_sampling

# CVRL's R3D puts temporal kernels in res4/res5 only (the SlowFast "slow pathway" layout).
TEMPORAL_KERNEL_PER_STAGE = (1, 1, 3, 3)
# Fields of Model Garden's video `DataConfig` that the pretraining parser
# (projects/cvrl/dataloaders/pretrain_input.py) does not read: it samples clip pairs with
# `gap_distribution`, augments them with its own `aug_*` fields and decodes the video contract's
# fixed keys. A value other than the default would be silently ignored, so `validate` rejects it.
UNREAD_PRETRAIN_FIELDS = (
  'random_stride_range',
  'zero_centering_image',
  'aug_type',
  'aug_random_rotation',
  'mixup_and_cutmix',
  'num_test_clips',
  'num_test_crops',
  'output_audio',
  'image_field_key',
  'label_field_key',
)


@dataclasses.dataclass
class PretrainDataConfig(video_data.VideoDataConfig):
  """Two clips per video, each augmented on its own (paper Sec. 3.2 and 3.3).

  `feature_shape` and `temporal_stride` describe one clip; the gap between the clips' start
  frames follows `gap_distribution` ('linear' is the paper's default, Fig. 3 ablates 'uniform'
  and decreasing 'power' shapes; see `projects.cvrl.ops.temporal_sampling`). Videos shorter
  than a clip are completed by `short_video` ('loop' or 'pad'). The `aug_*_ratio` fields bound
  the random resized crop; the other `aug_*` fields are `video_ops.augment_clip`'s.
  Validation clips are augmented too, deterministically per video, so successive evaluations
  score the same pairs.
  """

  gap_distribution: str = 'linear'
  gap_power_exponent: float = 2.0
  short_video: str = 'loop'
  aug_min_area_ratio: float = video_ops.CROP_AREA_RANGE[0]
  aug_max_area_ratio: float = video_ops.CROP_AREA_RANGE[1]
  aug_min_aspect_ratio: float = video_ops.CROP_ASPECT_RATIO_RANGE[0]
  aug_max_aspect_ratio: float = video_ops.CROP_ASPECT_RATIO_RANGE[1]
  aug_flip_prob: float = video_ops.FLIP_PROB
  aug_color_jitter_strength: float = video_ops.COLOR_JITTER_STRENGTH
  aug_color_jitter_prob: float = video_ops.COLOR_JITTER_PROB
  aug_grayscale_prob: float = video_ops.GRAYSCALE_PROB
  aug_blur_prob: float = video_ops.BLUR_PROB

  def validate(self):
    super().validate()
    if self.gap_distribution not in temporal_sampling.DISTRIBUTIONS:
      raise ValueError(
        f'gap_distribution must be one of {list(temporal_sampling.DISTRIBUTIONS)}, '
        f'got {self.gap_distribution!r}'
      )
    if self.short_video not in temporal_sampling.SHORT_VIDEO_POLICIES:
      raise ValueError(
        f'short_video must be one of {list(temporal_sampling.SHORT_VIDEO_POLICIES)}, '
        f'got {self.short_video!r}'
      )
    defaults = PretrainDataConfig()
    for name in UNREAD_PRETRAIN_FIELDS:
      if getattr(self, name) != getattr(defaults, name):
        raise ValueError(
          f'{name}={getattr(self, name)!r} is not read by CVRL pretraining '
          f'(projects/cvrl/dataloaders/pretrain_input.py); leave it at {getattr(defaults, name)!r}'
        )
    # Pretraining flips with probability `aug_flip_prob`; `aug_random_flip` (the classification
    # parser's switch) may only say the same.
    if not self.aug_random_flip and self.aug_flip_prob > 0:
      raise ValueError(
        f'aug_random_flip=False but aug_flip_prob={self.aug_flip_prob}: CVRL pretraining flips '
        f'with probability aug_flip_prob; set aug_flip_prob=0 to turn flipping off'
      )


@dataclasses.dataclass
class ProjectionHead(hyperparams.Config):
  """MLP on the pooled backbone features, then L2 normalisation (paper Sec. 3.1).

  As released (`VideoSSLModel`: `hidden_layer_num: 3`, `hidden_dim: 2048`, `projection_dim:
  128`): three 2048-wide Dense + batch norm + ReLU layers, then a linear 128-d output; batch-norm
  momentum 0.997 and epsilon 1e-5 as the release's `hidden_norm_activation`.
  """

  num_hidden_layers: int = 3
  hidden_dim: int = 2048
  output_dim: int = 128
  norm_momentum: float = 0.997
  norm_epsilon: float = 1e-5


def cvrl_r3d(model_id: int = 50) -> backbones_3d.Backbone3D:
  """CVRL's R3D-`model_id` (paper Sec. 4.1) on Model Garden's `resnet_3d`, as released.

  A 5x7x7 stem conv with temporal stride 2 and a 1x3x3 max pool without temporal stride;
  bottleneck stages with temporal kernel 1 in res2/res3 and 3 in res4/res5 (the SlowFast "slow
  pathway" layout), no later temporal downsampling, no self-gating. At depth 50 this has the
  release's 31.7M parameters. Model Garden's `resnet_3d` has no width multiplier, so the paper's
  wider variants (2x/4x filters) cannot be expressed with it.
  """
  block_specs = tuple(
    mg_backbones_3d.ResNet3DBlock(
      temporal_strides=1,
      temporal_kernel_sizes=(kernel,) * num_blocks,
      use_self_gating=False,
    )
    for kernel, (_, _, num_blocks) in zip(
      TEMPORAL_KERNEL_PER_STAGE, resnet_3d.RESNET_SPECS[model_id], strict=True
    )
  )
  return backbones_3d.Backbone3D(
    type='resnet_3d',
    resnet_3d=mg_backbones_3d.ResNet3D(
      model_id=model_id,
      stem_type='v0',
      stem_conv_temporal_kernel_size=5,
      stem_conv_temporal_stride=2,
      stem_pool_temporal_stride=1,
      block_specs=block_specs,
    ),
  )


def cvrl_norm_activation(use_sync_bn: bool = True) -> common.NormActivation:
  # Release: the Kinetics backbone batch norm (momentum 0.9, epsilon 1e-5), synchronised across
  # replicas so the statistics see the whole global batch, as the contrastive loss does.
  return common.NormActivation(norm_momentum=0.9, norm_epsilon=1e-5, use_sync_bn=use_sync_bn)


@dataclasses.dataclass
class PretrainModel(hyperparams.Config):
  """Backbone -> global average pool -> projection head (`projects.cvrl.modeling`)."""

  backbone: backbones_3d.Backbone3D = dataclasses.field(default_factory=cvrl_r3d)
  norm_activation: common.NormActivation = dataclasses.field(default_factory=cvrl_norm_activation)
  projection_head: ProjectionHead = dataclasses.field(default_factory=ProjectionHead)


@dataclasses.dataclass
class ContrastiveLosses(hyperparams.Config):
  """NT-Xent temperature (release: 0.1) and an L2 penalty for optimizers without decay.

  `l2_weight_decay` adds `l2_weight_decay / 2 * ||w||^2` over conv and dense kernels (not batch
  norm, not biases); leave it 0 with LARS, which decays the weights itself.
  """

  temperature: float = 0.1
  l2_weight_decay: float = 0.0


@dataclasses.dataclass
class KnnEvaluation(hyperparams.Config):
  """Leave-one-out kNN top-1 of backbone features on the labelled validation videos.

  Each validation video is classified by its `num_neighbors` most cosine-similar other
  validation videos, votes weighted by exp(similarity / temperature) (Wu et al. 2018). The
  feature of a video is the pooled backbone feature of its un-augmented centre clip (short side
  resized to `min_image_size`, centre crop), gathered from every replica. 0 neighbours turns it
  off; videos without a label index are left out.
  """

  num_neighbors: int = 20
  temperature: float = 0.07


@dataclasses.dataclass
class CVRLPretrainTask(cfg.TaskConfig):
  """Contrastive pretraining (`projects.cvrl.tasks.pretrain`)."""

  model: PretrainModel = dataclasses.field(default_factory=PretrainModel)
  losses: ContrastiveLosses = dataclasses.field(default_factory=ContrastiveLosses)
  train_data: PretrainDataConfig = dataclasses.field(
    default_factory=lambda: PretrainDataConfig(is_training=True, drop_remainder=True)
  )
  validation_data: PretrainDataConfig = dataclasses.field(
    default_factory=lambda: PretrainDataConfig(is_training=False, drop_remainder=False)
  )
  knn: KnnEvaluation = dataclasses.field(default_factory=KnnEvaluation)


@dataclasses.dataclass
class ClassifierModel(hyperparams.Config):
  """Backbone -> global average pool -> [L2 normalise] -> dropout -> linear classifier.

  `normalize_features`: L2-normalise the pooled features first (release: `normalize_feature`
  in linear evaluation, which is what makes its learning rate of 32 stable).
  """

  backbone: backbones_3d.Backbone3D = dataclasses.field(default_factory=cvrl_r3d)
  norm_activation: common.NormActivation = dataclasses.field(default_factory=cvrl_norm_activation)
  normalize_features: bool = True
  dropout_rate: float = 0.0


@dataclasses.dataclass
class CVRLLinearEvalTask(mg_video.VideoClassificationTask):
  """Linear evaluation, or fine-tuning with `freeze_backbone=False`, from a pretrained backbone.

  `init_checkpoint` names a pretraining run (directory or checkpoint); only the backbone is
  read from it (`init_checkpoint_modules='backbone'`). With `freeze_backbone` the backbone's
  weights are not trained and its batch norm runs in inference mode.
  """

  model: ClassifierModel = dataclasses.field(default_factory=ClassifierModel)
  train_data: video_data.VideoDataConfig = dataclasses.field(
    default_factory=lambda: video_data.VideoDataConfig(is_training=True, drop_remainder=True)
  )
  validation_data: video_data.VideoDataConfig = dataclasses.field(
    default_factory=lambda: video_data.VideoDataConfig(is_training=False, drop_remainder=False)
  )
  init_checkpoint_modules: str = 'backbone'
  freeze_backbone: bool = True
