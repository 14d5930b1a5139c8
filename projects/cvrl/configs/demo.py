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
  """The CPU demos' slim R3D-10 with CVRL's temporal kernels (`TEMPORAL_KERNEL_PER_STAGE`).

  Pretraining steps cost 0.33 s here against 1.07 s for 8-frame clips with temporal kernel 3 in
  every stage (bench/cvrl_demo_step.py). Seeded `make demo` runs: 5 pretraining epochs of the
  old layout gave 31.8 % linear-eval top-1 (random init 21.0 %) in 9.0 min; 20 epochs of this
  one 69.6 % and 67.6 % (random init 19.6 and 20.6 %) in 9.3 and 9.1 min.
  """
  backbone = backbones_3d.demo_slim_r3d()
  backbone.slim_r3d.temporal_kernel_sizes = cvrl.TEMPORAL_KERNEL_PER_STAGE
  return backbone


@exp_factory.register_config_factory('cvrl_demo')
def cvrl_demo() -> cfg.ExperimentConfig:
  """CVRL pretraining of a slim R3D-10 on the built-in moving digits, on 2 CPU cores.

  python train.py --experiment=cvrl_demo --mode=train_and_eval --model_dir=/tmp/cvrl_demo
  """
  # The Kinetics recipe scaled down to 20 epochs (1240 steps, ~7.5 min here); 0.8 per 256 videos
  # (0.1 at batch 32) is the release's 0.08 raised tenfold so that so few steps learn.
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
      True, DEMO_NUM_FRAMES, 32, data_class=cvrl.PretrainDataConfig, **augmentation
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
      epochs=20,
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
