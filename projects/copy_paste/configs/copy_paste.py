"""Copy-Paste Mask R-CNN: Model Garden's Mask R-CNN task config with a `copy_paste` block on the
training input, and the CPU demo on the built-in digit scenes.

Ghiasi et al., "Simple Copy-Paste is a Strong Data Augmentation Method for Instance
Segmentation" (CVPR 2021, arXiv 2012.07177). The COCO experiments are the paper's models as the code
release's README lists them; every setting names its source:

  [TF1]    the paper's code release: tensorflow/tpu, models/official/detection/projects/copy_paste/
           configs/<file>.yaml (named on each row), the defaults of configs/maskrcnn_config.py
           that those files keep (anchor size 8 on P2-P6), and its README (the rows' box / mask
           AP, parameters and FLOPs). No row loads a checkpoint: all train from scratch.
  [paper]  Sec. 4.1 (training details) states the same recipe: sync BN, batch 256, weight decay
           4e-5, LR 0.32 warmed up from 0.0032 over 1000 steps and divided by 10 at 0.9, 0.95
           and 0.975 of training, large-scale jitter.

Data paths are left empty: set `task.train_data.input_path`, `task.validation_data.input_path`
and `task.annotation_file` to COCO TFRecords and JSON (tools/coco_to_tfrecord.py writes them).
"""

import dataclasses

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams, optimization
from official.vision.configs import backbones, common, decoders, retinanet
from official.vision.configs import maskrcnn as mg_maskrcnn

from projects.copy_paste.ops import copy_paste as cp
from projects.spinenet.configs import spinenet

RESTRICTIONS = ['task.train_data.is_training != None', 'task.validation_data.is_training != None']


@dataclasses.dataclass
class CopyPaste(hyperparams.Config):
  """Copy-Paste of the training input (projects.copy_paste.ops.copy_paste.paste).

  The flip and the scale jitter of both images are the parser's `aug_rand_hflip` and
  `aug_scale_min` / `aug_scale_max` (0.1 / 2.0 is the paper's large-scale jitter).
  `paste_source_input_path` is a file pattern of another dataset (same decoder and file type
  as the training data) whose objects are pasted; the paper pastes from the training data.
  """

  enabled: bool = True
  # Empty: the training data itself, read a second time with its own shuffle.
  paste_source_input_path: str = ''
  min_visible_area: float = cp.DEFAULT_MIN_VISIBLE_AREA
  blend_sigma: float = 0.0
  blend_kernel_size: int = cp.DEFAULT_BLEND_KERNEL_SIZE

  def validate(self):
    if self.min_visible_area < 0:
      raise ValueError(f'copy_paste.min_visible_area must be >= 0, got {self.min_visible_area}')
    if self.blend_sigma < 0 or self.blend_kernel_size < 1:
      raise ValueError(
        f'copy_paste.blend_sigma must be >= 0 and blend_kernel_size >= 1, got '
        f'{self.blend_sigma} and {self.blend_kernel_size}'
      )


@dataclasses.dataclass
class DataConfig(mg_maskrcnn.DataConfig):
  """Model Garden's Mask R-CNN input plus `copy_paste` (training only) and `builtin_dataset`
  (a generated dataset, `projects.common.datasets.builtin`, that fills an empty `input_path`)."""

  copy_paste: CopyPaste = dataclasses.field(default_factory=lambda: CopyPaste(enabled=False))
  builtin_dataset: str = ''


@dataclasses.dataclass
class CopyPasteMaskRCNNTask(mg_maskrcnn.MaskRCNNTask):
  train_data: DataConfig = dataclasses.field(
    default_factory=lambda: DataConfig(is_training=True, copy_paste=CopyPaste())
  )
  validation_data: DataConfig = dataclasses.field(
    default_factory=lambda: DataConfig(is_training=False, drop_remainder=False)
  )


# The demo: 128 px digit scenes; digits of 20-64 px cover 200-1500 pixels, so the TF1 threshold
# of 300 would drop most partly covered digits.
DEMO_MIN_VISIBLE_AREA = 30
# Copy-Paste builds on the registered SpineNet demo detector (same model and data).
DEMO_DETECTOR_EXPERIMENT = 'maskrcnn_spinenet_demo'
# Longer than the detector demo's 6: the README's ablation ran 10 epochs (620 steps).
DEMO_EPOCHS = 10


@exp_factory.register_config_factory('maskrcnn_copypaste_demo')
def maskrcnn_copypaste_demo() -> cfg.ExperimentConfig:
  """`maskrcnn_spinenet_demo` (mobile SpineNet-49XS, 128 px digit scenes) with Copy-Paste.

  Everything but the training input's `copy_paste` block, its room for pasted objects and the
  schedule (`DEMO_EPOCHS`) is the registered SpineNet demo's, so
  `task.train_data.copy_paste.enabled=false` is that demo on this task: the ablation's baseline.
  The paste images take the demo's flip and scale jitter (no flips: a mirrored digit is another
  glyph).

    python train.py --experiment=maskrcnn_copypaste_demo --mode=train_and_eval \
      --model_dir=/tmp/maskrcnn_copypaste_demo
  """
  settings = exp_factory.get_exp_config(DEMO_DETECTOR_EXPERIMENT).as_dict()
  # Only the selected backbone: the detector's backbone config offers types Model Garden's
  # Mask R-CNN config does not.
  backbone = settings['task']['model']['backbone']
  settings['task']['model']['backbone'] = {
    'type': backbone['type'],
    backbone['type']: backbone[backbone['type']],
  }
  config = cfg.ExperimentConfig(
    task=CopyPasteMaskRCNNTask(
      train_data=DataConfig(
        is_training=True, copy_paste=CopyPaste(min_visible_area=DEMO_MIN_VISIBLE_AREA)
      )
    ),
    restrictions=RESTRICTIONS,
  )
  # `settings` has no `copy_paste` key: the block above stays.
  config.override(settings, is_strict=True)
  # A pasted scene adds its objects to the destination's.
  config.task.train_data.parser.max_num_instances = 2 * spinenet.DEMO_MAX_OBJECTS_PER_IMAGE
  config.trainer = spinenet.demo_trainer(DEMO_EPOCHS, warmup_epochs=1)
  return config


# COCO's category ids run 1..90; Model Garden keeps id 0 for background.
COCO_NUM_CLASSES = 91
# [TF1] every row: batch 256; evaluation batch 8 is the release's default.
TRAIN_BATCH_SIZE = 256
EVAL_BATCH_SIZE = 8
STEPS_PER_EPOCH = retinanet.COCO_TRAIN_EXAMPLES // TRAIN_BATCH_SIZE
# [paper] Sec. 4.1 / [TF1]: LR 0.32, warmed up linearly from 0.0032 over 1000 steps.
LEARNING_RATE = 0.32
WARMUP_LEARNING_RATE = 0.0032
WARMUP_STEPS = 1000
# [paper] Sec. 4.1: the rate is divided by 10 at these fractions of training.
DECAY_FRACTIONS = (0.9, 0.95, 0.975)
# [TF1] the FPN rows train 270k steps (~584 epochs), the Cascade row 180k.
FPN_TRAIN_STEPS = 270000
CASCADE_TRAIN_STEPS = 180000


@dataclasses.dataclass(frozen=True)
class PaperRow:
  """One row of `BACKBONE_TABLE`: its YAML, the TF1 config it follows and its COCO val2017 figures
  (parameters in millions, FLOPs in billions, as the table gives them)."""

  config_file: str
  tf1_config: str
  input_size: int
  box_ap: float
  mask_ap: float
  params_m: float
  gflops: float


# The paper's models as its code release lists them (the checkpoints' COCO val2017 figures).
BACKBONE_TABLE = 'Copy-Paste TF1 release README, checkpoint table'

PAPER_ROWS = {
  'maskrcnn_copypaste_r50_coco': PaperRow(
    'coco_maskrcnn_copypaste_r50_1024_584ep.yaml',
    'maskrcnn_resnet50_1024.yaml',
    1024,
    48.3,
    42.4,
    48,
    431,
  ),
  'maskrcnn_copypaste_r101_coco': PaperRow(
    'coco_maskrcnn_copypaste_r101_1024_584ep.yaml',
    'maskrcnn_resnet101_1024.yaml',
    1024,
    49.8,
    43.5,
    67,
    509,
  ),
  'maskrcnn_copypaste_r101_1280_coco': PaperRow(
    'coco_maskrcnn_copypaste_r101_1280_584ep.yaml',
    'maskrcnn_resnet101_1280.yaml',
    1280,
    50.3,
    44.1,
    67,
    693,
  ),
  'maskrcnn_copypaste_effb7_640_coco': PaperRow(
    'coco_maskrcnn_copypaste_effb7_640_584ep.yaml',
    'maskrcnn_effb7_640.yaml',
    640,
    50.0,
    43.7,
    86,
    286,
  ),
  'maskrcnn_copypaste_effb7_coco': PaperRow(
    'coco_maskrcnn_copypaste_effb7_1024_584ep.yaml',
    'maskrcnn_effb7_1024.yaml',
    1024,
    51.9,
    45.1,
    86,
    447,
  ),
  'maskrcnn_copypaste_effb7_1280_coco': PaperRow(
    'coco_maskrcnn_copypaste_effb7_1280_584ep.yaml',
    'maskrcnn_effb7_1280.yaml',
    1280,
    52.5,
    45.8,
    86,
    595,
  ),
  'cascadercnn_copypaste_effb7_1280_coco': PaperRow(
    'coco_cascadercnn_copypaste_effb7_1280_390ep.yaml',
    'cascade_maskrcnn_effb7_1280.yaml',
    1280,
    54.0,
    46.3,
    118,
    854,
  ),
}


def _coco_trainer(train_steps: int) -> cfg.TrainerConfig:
  """[paper] / [TF1] SGD momentum 0.9, no gradient clipping, the step schedule above."""
  boundaries = [round(train_steps * fraction) for fraction in DECAY_FRACTIONS]
  return cfg.TrainerConfig(
    train_steps=train_steps,
    validation_steps=retinanet.COCO_VAL_EXAMPLES // EVAL_BATCH_SIZE,
    validation_interval=STEPS_PER_EPOCH,
    steps_per_loop=STEPS_PER_EPOCH,
    summary_interval=STEPS_PER_EPOCH,
    checkpoint_interval=STEPS_PER_EPOCH,
    optimizer_config=optimization.OptimizationConfig(
      {
        'optimizer': {'type': 'sgd', 'sgd': {'momentum': 0.9}},
        'learning_rate': {
          'type': 'stepwise',
          'stepwise': {
            'boundaries': boundaries,
            'values': [round(LEARNING_RATE * 0.1**i, 8) for i in range(len(boundaries) + 1)],
          },
        },
        'warmup': {
          'type': 'linear',
          'linear': {'warmup_steps': WARMUP_STEPS, 'warmup_learning_rate': WARMUP_LEARNING_RATE},
        },
      }
    ),
  )


def coco_experiment(
  backbone: backbones.Backbone,
  input_size: int,
  train_steps: int = FPN_TRAIN_STEPS,
  cascade: bool = False,
) -> cfg.ExperimentConfig:
  """Mask R-CNN with FPN on P2-P6 and Copy-Paste with large-scale jitter, on COCO.

  [TF1] RPN of 2 convs, box head of 4 convs and 2 fcs, mask head of 4 convs (256 filters, batch
  norm in all), sync BN (momentum 0.997, epsilon 1e-4), ReLU, bfloat16, flip, jitter 0.1-2.0.
  The release's YAMLs say `type: cascade_mask_rcnn` but, except on the Cascade row, set no
  cascade stages: they are plain Mask R-CNN (the README's 48 M parameters for R50-FPN agree).
  `cascade`: [TF1] cascade_maskrcnn_effb7_1280.yaml, two more box stages at IoU 0.7 and 0.8
  after a first one at 0.6, class-agnostic boxes, class scores averaged over the stages.
  """
  detection_head = mg_maskrcnn.DetectionHead(num_convs=4, num_filters=256, num_fcs=2)
  roi_sampler = mg_maskrcnn.ROISampler()
  if cascade:
    detection_head.class_agnostic_bbox_pred = True
    detection_head.cascade_class_ensemble = True
    roi_sampler.foreground_iou_threshold = 0.6
    roi_sampler.cascade_iou_thresholds = [0.7, 0.8]
  train = DataConfig(
    is_training=True,
    global_batch_size=TRAIN_BATCH_SIZE,
    copy_paste=CopyPaste(),
    parser=mg_maskrcnn.Parser(
      aug_rand_hflip=True,
      aug_scale_min=cp.LARGE_SCALE_JITTER[0],
      aug_scale_max=cp.LARGE_SCALE_JITTER[1],
    ),
  )
  validation = DataConfig(
    is_training=False, global_batch_size=EVAL_BATCH_SIZE, drop_remainder=False
  )
  model = mg_maskrcnn.MaskRCNN(
    num_classes=COCO_NUM_CLASSES,
    input_size=[input_size, input_size, 3],
    include_mask=True,
    min_level=2,
    max_level=6,
    anchor=mg_maskrcnn.Anchor(anchor_size=8.0),
    backbone=backbone,
    decoder=decoders.Decoder(type='fpn', fpn=decoders.FPN(num_filters=256)),
    rpn_head=mg_maskrcnn.RPNHead(num_convs=2, num_filters=256),
    detection_head=detection_head,
    mask_head=mg_maskrcnn.MaskHead(num_convs=4, num_filters=256),
    roi_sampler=roi_sampler,
    norm_activation=common.NormActivation(
      activation='relu', use_sync_bn=True, norm_momentum=0.997, norm_epsilon=1e-4
    ),
  )
  return cfg.ExperimentConfig(
    runtime=cfg.RuntimeConfig(mixed_precision_dtype='bfloat16'),
    task=CopyPasteMaskRCNNTask(
      model=model,
      losses=mg_maskrcnn.Losses(l2_weight_decay=4e-5),
      train_data=train,
      validation_data=validation,
    ),
    trainer=_coco_trainer(train_steps),
    restrictions=RESTRICTIONS,
  )


def resnet_backbone(depth: int) -> backbones.Backbone:
  return backbones.Backbone(type='resnet', resnet=backbones.ResNet(model_id=depth))


def efficientnet_b7_backbone() -> backbones.Backbone:
  return backbones.Backbone(type='efficientnet', efficientnet=backbones.EfficientNet(model_id='b7'))


@exp_factory.register_config_factory('maskrcnn_copypaste_r50_coco')
def maskrcnn_copypaste_r50_coco() -> cfg.ExperimentConfig:
  """Mask R-CNN ResNet-50 FPN, 1024^2, Copy-Paste ([TF1] maskrcnn_resnet50_1024.yaml).

  The paper's recipe: large-scale jitter 0.1-2.0, from scratch, batch 256, 270k steps.

  python train.py --experiment=maskrcnn_copypaste_r50_coco \\
    --config_file=experiments/copy_paste/coco_maskrcnn_copypaste_r50_1024_584ep.yaml \\
    --mode=train_and_eval --model_dir=DIR
  """
  return coco_experiment(resnet_backbone(50), 1024)


@exp_factory.register_config_factory('maskrcnn_copypaste_r101_coco')
def maskrcnn_copypaste_r101_coco() -> cfg.ExperimentConfig:
  """Mask R-CNN ResNet-101 FPN, 1024^2, Copy-Paste ([TF1] maskrcnn_resnet101_1024.yaml).

  python train.py --experiment=maskrcnn_copypaste_r101_coco \\
    --config_file=experiments/copy_paste/coco_maskrcnn_copypaste_r101_1024_584ep.yaml \\
    --mode=train_and_eval --model_dir=DIR
  """
  return coco_experiment(resnet_backbone(101), 1024)


@exp_factory.register_config_factory('maskrcnn_copypaste_r101_1280_coco')
def maskrcnn_copypaste_r101_1280_coco() -> cfg.ExperimentConfig:
  """Mask R-CNN ResNet-101 FPN, 1280^2, Copy-Paste ([TF1] maskrcnn_resnet101_1280.yaml).

  python train.py --experiment=maskrcnn_copypaste_r101_1280_coco \\
    --config_file=experiments/copy_paste/coco_maskrcnn_copypaste_r101_1280_584ep.yaml \\
    --mode=train_and_eval --model_dir=DIR
  """
  return coco_experiment(resnet_backbone(101), 1280)


@exp_factory.register_config_factory('maskrcnn_copypaste_effb7_640_coco')
def maskrcnn_copypaste_effb7_640_coco() -> cfg.ExperimentConfig:
  """Mask R-CNN EfficientNet-B7 FPN, 640^2, Copy-Paste ([TF1] maskrcnn_effb7_640.yaml).

  python train.py --experiment=maskrcnn_copypaste_effb7_640_coco \\
    --config_file=experiments/copy_paste/coco_maskrcnn_copypaste_effb7_640_584ep.yaml \\
    --mode=train_and_eval --model_dir=DIR
  """
  return coco_experiment(efficientnet_b7_backbone(), 640)


@exp_factory.register_config_factory('maskrcnn_copypaste_effb7_coco')
def maskrcnn_copypaste_effb7_coco() -> cfg.ExperimentConfig:
  """Mask R-CNN EfficientNet-B7 FPN, 1024^2, Copy-Paste ([TF1] maskrcnn_effb7_1024.yaml).

  python train.py --experiment=maskrcnn_copypaste_effb7_coco \\
    --config_file=experiments/copy_paste/coco_maskrcnn_copypaste_effb7_1024_584ep.yaml \\
    --mode=train_and_eval --model_dir=DIR
  """
  return coco_experiment(efficientnet_b7_backbone(), 1024)


@exp_factory.register_config_factory('maskrcnn_copypaste_effb7_1280_coco')
def maskrcnn_copypaste_effb7_1280_coco() -> cfg.ExperimentConfig:
  """Mask R-CNN EfficientNet-B7 FPN, 1280^2, Copy-Paste ([TF1] maskrcnn_effb7_1280.yaml).

  python train.py --experiment=maskrcnn_copypaste_effb7_1280_coco \\
    --config_file=experiments/copy_paste/coco_maskrcnn_copypaste_effb7_1280_584ep.yaml \\
    --mode=train_and_eval --model_dir=DIR
  """
  return coco_experiment(efficientnet_b7_backbone(), 1280)


@exp_factory.register_config_factory('cascadercnn_copypaste_effb7_1280_coco')
def cascadercnn_copypaste_effb7_1280_coco() -> cfg.ExperimentConfig:
  """Cascade Mask R-CNN EfficientNet-B7 FPN, 1280^2, Copy-Paste, 180k steps.

  [TF1] cascade_maskrcnn_effb7_1280.yaml. The release's Cascade Eff-B7 NAS-FPN rows are not
  registered: their NAS-FPN uses bottleneck blocks, swish in the decoder only and drop-connect
  0.2 (cascade_maskrcnn_effb7_nasfpn_1280.yaml), none of which Model Garden's `nasfpn` decoder
  offers (conv blocks, the backbone's activation).

  python train.py --experiment=cascadercnn_copypaste_effb7_1280_coco \\
    --config_file=experiments/copy_paste/coco_cascadercnn_copypaste_effb7_1280_390ep.yaml \\
    --mode=train_and_eval --model_dir=DIR
  """
  return coco_experiment(
    efficientnet_b7_backbone(), 1280, train_steps=CASCADE_TRAIN_STEPS, cascade=True
  )
