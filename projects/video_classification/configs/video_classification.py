"""Video classification experiments: R3D-50 on Kinetics/UCF101/HMDB51 and a CPU demo.

Each factory's docstring holds the command that runs it. Data paths are left empty: set
`task.train_data.input_path` / `task.validation_data.input_path` to TFRecords in the video
contract (tools/video_to_tfrecord.py writes them).
"""

import dataclasses

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.vision.configs import backbones_3d as mg_backbones_3d
from official.vision.configs import common
from official.vision.configs import video_classification as mg_video

from projects.common.configs import backbones_3d, experiment_tails, runtime, schedules, video_data


@dataclasses.dataclass
class VideoClassificationModel(mg_video.VideoClassificationModel):
  """Model Garden's video classifier with the projects' backbone choices."""

  backbone: backbones_3d.Backbone3D = dataclasses.field(
    default_factory=lambda: backbones_3d.Backbone3D(
      type='resnet_3d', resnet_3d=mg_backbones_3d.ResNet3D50()
    )
  )


@dataclasses.dataclass
class VideoClassificationTask(mg_video.VideoClassificationTask):
  """Model Garden's video classification task config on the projects' data config."""

  model: VideoClassificationModel = dataclasses.field(default_factory=VideoClassificationModel)
  train_data: video_data.VideoDataConfig = dataclasses.field(
    default_factory=lambda: video_data.VideoDataConfig(is_training=True, drop_remainder=True)
  )
  validation_data: video_data.VideoDataConfig = dataclasses.field(
    default_factory=lambda: video_data.VideoDataConfig(is_training=False, drop_remainder=False)
  )


def r3d50_supervised(
  dataset: str, train_batch_size: int, eval_batch_size: int
) -> VideoClassificationTask:
  """R3D-50 (Model Garden's `ResNet3D50`: 5x7x7 stem, self-gating) on 32 frames at stride 2.

  Clip shape as Model Garden's "3D ResNet-50 32x2" Kinetics row. Recipe from the SlowFast paper
  (Feichtenhofer et al. 2019, Appendix A.2): 224^2 random-resized crops, dropout 0.5 before the
  classifier, weight decay 1e-4, BN momentum 0.9; evaluation averages 10 clips x 3 crops at
  short side 256.
  """
  return VideoClassificationTask(
    model=VideoClassificationModel(
      dropout_rate=0.5,
      norm_activation=common.NormActivation(norm_momentum=0.9, norm_epsilon=1e-5),
    ),
    losses=mg_video.Losses(l2_weight_decay=1e-4),
    train_data=video_data.standard_video_data(
      dataset,
      True,
      num_frames=32,
      temporal_stride=2,
      crop_size=224,
      global_batch_size=train_batch_size,
    ),
    validation_data=video_data.standard_video_data(
      dataset,
      False,
      num_frames=32,
      temporal_stride=2,
      crop_size=224,
      global_batch_size=eval_batch_size,
      num_test_clips=10,
      num_test_crops=3,
      min_image_size=256,
    ),
  )


def supervised_trainer(
  task: VideoClassificationTask, epochs: float, warmup_epochs: float, base_learning_rate: float
) -> cfg.TrainerConfig:
  """SGD (Nesterov momentum 0.9) with warm-up and cosine decay; evaluation after every epoch."""
  return schedules.epoch_trainer(
    task.train_data,
    task.validation_data,
    epochs=epochs,
    warmup_epochs=warmup_epochs,
    base_learning_rate=base_learning_rate,
    optimizer=schedules.sgd_optimizer(nesterov=True),
  )


def _kinetics(dataset: str) -> cfg.ExperimentConfig:
  task = r3d50_supervised(dataset, train_batch_size=1024, eval_batch_size=64)
  # SlowFast recipe: LR 1.6 at batch 1024 (0.4 per 256), 196 epochs, 34 linear warm-up epochs,
  # momentum 0.9.
  return experiment_tails.classification_experiment(
    task,
    supervised_trainer(task, epochs=196, warmup_epochs=34, base_learning_rate=0.4),
    cfg.RuntimeConfig(mixed_precision_dtype='bfloat16'),
  )


@exp_factory.register_config_factory('video_classification_r3d50_kinetics400')
def video_classification_r3d50_kinetics400() -> cfg.ExperimentConfig:
  """R3D-50 32x2 supervised on Kinetics-400.

  python train.py --experiment=video_classification_r3d50_kinetics400 \
    --config_file=experiments/video_classification/k400_r3d50_196ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return _kinetics('kinetics400')


@exp_factory.register_config_factory('video_classification_r3d50_kinetics600')
def video_classification_r3d50_kinetics600() -> cfg.ExperimentConfig:
  """R3D-50 32x2 supervised on Kinetics-600.

  python train.py --experiment=video_classification_r3d50_kinetics600 \
    --config_file=experiments/video_classification/k600_r3d50_196ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return _kinetics('kinetics600')


@exp_factory.register_config_factory('video_classification_r3d50_kinetics700')
def video_classification_r3d50_kinetics700() -> cfg.ExperimentConfig:
  """R3D-50 32x2 supervised on Kinetics-700.

  python train.py --experiment=video_classification_r3d50_kinetics700 \
    --config_file=experiments/video_classification/k700_r3d50_196ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return _kinetics('kinetics700')


def _small_benchmark(dataset: str) -> cfg.ExperimentConfig:
  # UCF101/HMDB51 are fine-tuned from a Kinetics checkpoint (set task.init_checkpoint), the
  # standard protocol since I3D (Carreira & Zisserman 2017): the Kinetics clip shape,
  # batch 64, LR 0.2 (0.8 per 256) with cosine decay over 50 epochs, dropout 0.5; eval 10 clips x
  # 3 crops.
  task = r3d50_supervised(dataset, train_batch_size=64, eval_batch_size=16)
  task.init_checkpoint_modules = 'backbone'
  return experiment_tails.classification_experiment(
    task,
    supervised_trainer(task, epochs=50, warmup_epochs=2, base_learning_rate=0.8),
    cfg.RuntimeConfig(mixed_precision_dtype='bfloat16'),
  )


@exp_factory.register_config_factory('video_classification_r3d50_ucf101')
def video_classification_r3d50_ucf101() -> cfg.ExperimentConfig:
  """R3D-50 fine-tuned on UCF101 split 1 from a Kinetics checkpoint.

  python train.py --experiment=video_classification_r3d50_ucf101 \
    --config_file=experiments/video_classification/ucf101_r3d50_50ep.yaml \
    --params_override=task.init_checkpoint=K400_DIR --mode=train_and_eval --model_dir=DIR
  """
  return _small_benchmark('ucf101')


@exp_factory.register_config_factory('video_classification_r3d50_hmdb51')
def video_classification_r3d50_hmdb51() -> cfg.ExperimentConfig:
  """R3D-50 fine-tuned on HMDB51 split 1 from a Kinetics checkpoint.

  python train.py --experiment=video_classification_r3d50_hmdb51 \
    --config_file=experiments/video_classification/hmdb51_r3d50_50ep.yaml \
    --params_override=task.init_checkpoint=K400_DIR --mode=train_and_eval --model_dir=DIR
  """
  return _small_benchmark('hmdb51')


def demo_data(is_training: bool, **overrides) -> video_data.VideoDataConfig:
  """The built-in moving digits as the supervised demos read them: 8-frame clips, batch 16 / 50.

  Crops keep most of the digit (at least 60 % of the frame).
  """
  return video_data.demo_video_data(
    is_training,
    num_frames=8,
    global_batch_size=16 if is_training else 50,
    aug_min_area_ratio=0.6,
    **overrides,
  )


@exp_factory.register_config_factory('video_classification_demo')
def video_classification_demo() -> cfg.ExperimentConfig:
  """Slim R3D-10 on the built-in moving digits; minutes on 2 CPU cores (`make demo`).

  python train.py --experiment=video_classification_demo --mode=train_and_eval \
    --model_dir=/tmp/video_classification_demo
  """
  task = VideoClassificationTask(
    model=VideoClassificationModel(
      backbone=backbones_3d.demo_slim_r3d(),
      dropout_rate=0.0,
      norm_activation=common.NormActivation(norm_momentum=0.9, norm_epsilon=1e-5),
    ),
    losses=mg_video.Losses(l2_weight_decay=1e-4),
    train_data=demo_data(is_training=True),
    validation_data=demo_data(is_training=False, num_test_clips=2, num_test_crops=1),
  )
  # 0.1 at batch 16.
  trainer = supervised_trainer(task, epochs=4, warmup_epochs=0.5, base_learning_rate=1.6)
  return experiment_tails.classification_experiment(task, trainer, runtime.cpu_runtime())
