"""3D ResNet-RS (Du et al. 2021, arXiv 2109.01696): the scaling rule, as a function to a config.

`resnet3d_rs_experiment(dataset, depth, num_frames, crop_size)` returns the complete experiment
for one member of the family: depth 50/101/152/200 and 32/48/64 input frames, the paper's
architecture changes and its training recipe. Every setting names its source:

  [paper]     the paper itself: abstract (81.0 K400 / 83.8 K600 from scratch, with R3D-RS-200 at
              48 frames) and its architecture section as quoted by Papers with Code's method page
              ("3D ResNet-RS"): a ResNet-D stem of three 3D convolutions, temporal kernel 5 then 1
              and 1; 3D squeeze-and-excitation with ratio 0.25 in every bottleneck block for all
              experiments; self-gating in each bottleneck block after SE. The scaling rule as
              summarised at emergentmind.com/articles/2109.01696: depth grows together with the
              number of input frames; temporal resolution pays more than spatial resolution.
  [MG-RS50]   the authors' released config of R3D-RS-50 on Kinetics-400, Model Garden's
              official/vision/configs/experiments/video_classification/k400_resnet3drs_50_tpu.yaml
              (the paper: "Code is available at github.com/tensorflow/models/tree/master/official").
  [MG-table]  Model Garden's MODEL_GARDEN.md video table: the R3D-RS rows, "frames x stride".
  [ours]      found in neither: our choice, to be replaced when the paper's value is confirmed.

Where Model Garden's `resnet_3d_rs` differs from the paper's text, Model Garden wins (it is the
paper's code): self-gating sits in the last block of each stage only and before SE.
"""

import dataclasses

from official.core import config_definitions as cfg
from official.modeling import optimization
from official.vision.configs import backbones_3d as mg_backbones_3d
from official.vision.configs import common
from official.vision.configs import video_classification as mg_video

from projects.common.configs import experiment_tails, video_data
from projects.resnet3d_rs.configs import backbones
from projects.video_classification.configs import video_classification as vc_configs

# [MG-table] the depths of the R3D-RS rows. Frames: 32 and 48 are rows [MG-table]; 64 [ours] is
# the next step of the rule, accepted but not registered.
DEPTHS = (50, 101, 152, 200)
NUM_FRAMES = (32, 48, 64)
# [MG-table] every R3D-RS row is "32 x 2" or "48 x 2": frames sampled at stride 2.
TEMPORAL_STRIDE = 2
# [MG-RS50] 350 epochs (decay_steps 73682 = 350 x 215570 / 1024), 5 of linear warm-up
# (1050 steps), LR 0.8 at batch 1024 (0.2 per 256) with cosine decay; SGD momentum 0.9 (Nesterov,
# from the Model Garden factory the YAML overrides).
EPOCHS = 350
WARMUP_EPOCHS = 5
LEARNING_RATE_PER_256 = 0.2
TRAIN_BATCH_SIZE = 1024
EVAL_BATCH_SIZE = 64


@dataclasses.dataclass
class ResNet3DRSModel(vc_configs.VideoClassificationModel):
  """The video classifier with the R3D-RS backbone choices (default: Model Garden's R3D-RS-50)."""

  backbone: backbones.Backbone3D = dataclasses.field(
    default_factory=lambda: backbones.Backbone3D(type='resnet_3d_rs')
  )


@dataclasses.dataclass
class ResNet3DRSTask(vc_configs.VideoClassificationTask):
  """The video classification task config on `ResNet3DRSModel` (same task, same data)."""

  model: ResNet3DRSModel = dataclasses.field(default_factory=ResNet3DRSModel)


def stochastic_depth_rate(depth: int) -> float:
  """Stochastic-depth rate of the last stage (earlier stages get (stage / 5) of it).

  0.1 at depth 50 [MG-RS50]. Deeper models get more, as in the 2D ResNet-RS recipe the paper
  follows (Model Garden's ImageNet ResNet-RS configs: 0.0 up to depth 152, 0.1 at 200); the
  paper's per-depth values were not verifiable here: [ours] a linear growth to 0.2 at depth 200.
  """
  _check_choice('depth', depth, DEPTHS)
  return round(0.1 + 0.1 * (depth - 50) / 150, 3)


def resnet3d_rs_backbone(depth: int) -> backbones.Backbone3D:
  """Model Garden's `resnet_3d_rs` at `depth` with the paper's architecture changes."""
  return backbones.Backbone3D(
    type='resnet_3d_rs',
    resnet_3d_rs=mg_backbones_3d.ResNet3DRS(
      model_id=depth,
      # [paper] ResNet-D stem (Model Garden's 'v1'): 3 convs, temporal kernel 5 then 1, 1.
      stem_type='v1',
      stem_conv_temporal_kernel_size=5,
      # [MG-RS50] the stem convolution halves time; the stem max-pool does not.
      stem_conv_temporal_stride=2,
      stem_pool_temporal_stride=1,
      # [paper] SE ratio 0.25 in every bottleneck block.
      se_ratio=0.25,
      stochastic_depth_drop_rate=stochastic_depth_rate(depth),
      # [MG-RS50] leaves block_specs at ResNet3DRS's default: temporal kernels 1, 1, 3, 3 per
      # stage (no temporal convolution in res2/res3), no temporal stride, self-gating on.
    ),
  )


def resnet3d_rs_experiment(
  dataset: str = 'kinetics400',
  depth: int = 50,
  num_frames: int = 32,
  crop_size: int = 224,
  train_batch_size: int = TRAIN_BATCH_SIZE,
  eval_batch_size: int = EVAL_BATCH_SIZE,
) -> cfg.ExperimentConfig:
  """The complete R3D-RS experiment for one point of the scaling rule.

  The scaling rule [paper]: grow depth (50 -> 200) together with the number of input frames
  (32 -> 48; 64 [ours]); spatial resolution pays less than temporal resolution, so it stays at
  224^2 training crops unless `crop_size` says otherwise. Evaluation crops are 8/7 of
  the training crop (224 -> 256) at short side of the same size, 10 clips x 3 crops [MG-RS50].
  The learning rate scales linearly with `train_batch_size` from 0.8 at 1024 ([MG-RS50]; linear
  scaling [ours], Goyal et al. 2017).
  """
  _check_choice('depth', depth, DEPTHS)
  _check_choice('num_frames', num_frames, NUM_FRAMES)
  if crop_size <= 0 or crop_size % 32:
    raise ValueError(f'crop_size must be a positive multiple of 32 (the stride), got {crop_size}')
  eval_size = crop_size * 8 // 7
  task = ResNet3DRSTask(
    model=ResNet3DRSModel(
      backbone=resnet3d_rs_backbone(depth),
      # [MG-RS50] dropout 0.5 before the classifier.
      dropout_rate=0.5,
      # [MG-RS50] BN momentum 0 with an EMA of *all* weights (below): the EMA of the per-batch
      # statistics replaces BN's own moving average. Without EMA, set a usual momentum (0.9).
      norm_activation=common.NormActivation(
        activation='relu', norm_momentum=0.0, norm_epsilon=1e-5, use_sync_bn=False
      ),
    ),
    # [MG-RS50] weight decay 4e-5 and label smoothing 0.1 (the 2D ResNet-RS regularisers).
    losses=mg_video.Losses(l2_weight_decay=4e-5, label_smoothing=0.1),
    train_data=video_data.standard_video_data(
      dataset,
      is_training=True,
      num_frames=num_frames,
      temporal_stride=TEMPORAL_STRIDE,
      crop_size=crop_size,
      global_batch_size=train_batch_size,
      min_image_size=eval_size,
      # [MG-RS50] Inception-style random-resized crops: 8%-100% of the area, aspect 1/2-2.
      aug_min_area_ratio=0.08,
      aug_max_area_ratio=1.0,
      aug_min_aspect_ratio=0.5,
      aug_max_aspect_ratio=2.0,
    ),
    validation_data=video_data.standard_video_data(
      dataset,
      is_training=False,
      num_frames=num_frames,
      temporal_stride=TEMPORAL_STRIDE,
      crop_size=eval_size,
      global_batch_size=eval_batch_size,
      min_image_size=eval_size,
      num_test_clips=10,
      num_test_crops=3,
    ),
  )
  trainer = vc_configs.supervised_trainer(
    task, epochs=EPOCHS, warmup_epochs=WARMUP_EPOCHS, base_learning_rate=LEARNING_RATE_PER_256
  )
  # [MG-RS50] EMA of all weights (BN statistics included) with decay 0.9999; evaluation uses the
  # averaged weights.
  trainer.optimizer_config.ema = optimization.EMAConfig(
    average_decay=0.9999, trainable_weights_only=False
  )
  return experiment_tails.classification_experiment(
    task, trainer, cfg.RuntimeConfig(mixed_precision_dtype='bfloat16')
  )


def _check_choice(name: str, value: int, choices: tuple[int, ...]) -> None:
  if value not in choices:
    raise ValueError(f'3D ResNet-RS {name} must be one of {list(choices)}, got {value}')
