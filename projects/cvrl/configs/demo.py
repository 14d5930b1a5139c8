"""CVRL CPU demos: pretraining and linear evaluation of a slim R3D-10 on the built-in digits.

`make demo` (tools/run_demo.py) runs `cvrl_demo`, then `cvrl_linear_eval_demo` from its
checkpoint and from a random backbone, and prints both top-1 figures.
"""

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.vision.configs import video_classification as mg_video

from projects.common.configs import (
  backbones_3d,
  experiment_tails,
  runtime,
  schedules,
  video_data,
)
from projects.cvrl.configs import cvrl, experiments

# 4-frame clips of the built-in moving digits (16 frames of 48^2, 2000 train / 500 validation
# videos, 10 digit classes) at 32^2, so a slim R3D-10 step is cheap on a CPU.
DEMO_NUM_FRAMES = 4
DEMO_CLIP_SHAPE = (DEMO_NUM_FRAMES, video_data.DEMO_CROP_SIZE, video_data.DEMO_CROP_SIZE, 3)


def cvrl_demo_backbone() -> backbones_3d.Backbone3D:
  """The CPU demos' slim R3D-10 with CVRL's temporal kernels (`TEMPORAL_KERNEL_PER_STAGE`) and a
  1x7x7 stem.

  On an AMD EPYC (bench/cvrl_demo_step.py, batch 32) a pretraining step costs 0.46 s against
  0.52 s with the default 3x7x7 stem and 1.49 s for 8-frame clips with temporal kernel 3 in every
  stage. The stem is the costliest convolution of the stride-1 demo (3 input channels at 32^2;
  oneDNN's weight gradient for its 3x7x7 kernel took 3.7x its forward pass), and CVRL's own
  stages 2-3 have no temporal kernel either. Seeded `make demo` runs: projects/cvrl/README.md.
  """
  backbone = backbones_3d.demo_slim_r3d()
  backbone.slim_r3d.temporal_kernel_sizes = cvrl.TEMPORAL_KERNEL_PER_STAGE
  backbone.slim_r3d.stem_temporal_kernel_size = 1
  return backbone


@exp_factory.register_config_factory('cvrl_demo')
def cvrl_demo() -> cfg.ExperimentConfig:
  """CVRL pretraining of a slim R3D-10 on the built-in moving digits, on 2 CPU cores.

  python train.py --experiment=cvrl_demo --mode=train_and_eval --model_dir=/tmp/cvrl_demo
  """
  # The Kinetics recipe scaled down to 16 epochs of 64 videos (496 steps, ~6.5 min on a 2-core
  # EPYC); 0.8 per 256 videos (0.2 at batch 64) is the release's 0.08 raised tenfold so that so
  # few steps learn. Batch 64 rather than 32: about the same cost per video (15.2 against 14.4
  # ms, bench/cvrl_demo_step.py) and twice the contrastive negatives per step. With the 1x7x7
  # stem, 16 epochs of 64 against 20 of 32 (seeded `make demo`, AMD EPYC): kNN top-1 65.8 %
  # against 57.8 %, linear probe 66.8 % against 69.2 %, in 9.3 min against 14.3.
  # Crops keep at least half of a frame so the digit stays mostly in view; a mirrored digit is
  # another digit. 32^2 frames get SimCLR's CIFAR-10 (32^2) settings: colour strength 0.5 and no
  # blur, which at this size erases the strokes that tell digits apart.
  augmentation = {
    'aug_min_area_ratio': 0.5,
    'aug_flip_prob': 0.0,
    'aug_color_jitter_strength': 0.5,
    'aug_blur_prob': 0.0,
  }
  task = cvrl.CVRLPretrainTask(
    losses=cvrl.ContrastiveLosses(temperature=0.1, l2_weight_decay=1e-6),
    model=cvrl.PretrainModel(
      backbone=cvrl_demo_backbone(),
      norm_activation=cvrl.cvrl_norm_activation(use_sync_bn=False),
      projection_head=cvrl.ProjectionHead(hidden_dim=512),
    ),
    train_data=video_data.demo_video_data(
      True, DEMO_NUM_FRAMES, 64, data_class=cvrl.PretrainDataConfig, **augmentation
    ),
    validation_data=video_data.demo_video_data(
      False, DEMO_NUM_FRAMES, 100, data_class=cvrl.PretrainDataConfig, **augmentation
    ),
  )
  return cfg.ExperimentConfig(
    runtime=runtime.cpu_runtime(),
    task=task,
    trainer=schedules.epoch_trainer(
      task.train_data,
      task.validation_data,
      epochs=16,
      warmup_epochs=0.5,
      base_learning_rate=0.8,
      optimizer=experiments.contrastive_optimizer('sgd', lars_weight_decay=1e-6),
      validation_every_epochs=20,
    ),
  )


@exp_factory.register_config_factory('cvrl_linear_eval_demo')
def cvrl_linear_eval_demo() -> cfg.ExperimentConfig:
  """Linear evaluation of the `cvrl_demo` backbone on the digit labels of the moving digits.

  python train.py --experiment=cvrl_linear_eval_demo \
    --params_override=task.init_checkpoint=/tmp/cvrl_demo \
    --mode=train_and_eval --model_dir=/tmp/cvrl_linear_eval_demo
  """
  train = video_data.demo_video_data(True, DEMO_NUM_FRAMES, 32, aug_min_area_ratio=0.5)
  validation = video_data.demo_video_data(False, DEMO_NUM_FRAMES, 100, num_test_clips=2)
  task = cvrl.CVRLLinearEvalTask(
    model=cvrl.ClassifierModel(
      backbone=cvrl_demo_backbone(), norm_activation=cvrl.cvrl_norm_activation(use_sync_bn=False)
    ),
    losses=mg_video.Losses(l2_weight_decay=0.0),
    train_data=train,
    validation_data=validation,
  )
  trainer = schedules.epoch_trainer(
    train,
    validation,
    epochs=10,
    warmup_epochs=0.5,
    # 4x the Kinetics rate per video: 10 epochs instead of 100. Measured on one CVRL checkpoint
    # (5 epochs, 8-frame clips): 26.6 % top-1 at 8 per 256, 33.8 % at 32, 33.2 % at 128.
    base_learning_rate=32.0,
    optimizer=schedules.sgd_optimizer(),
    validation_every_epochs=10,
  )
  return experiment_tails.classification_experiment(task, trainer, runtime.cpu_runtime())
