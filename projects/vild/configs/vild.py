"""ViLD experiments: one per row of the paper's LVIS table, and a CPU demo on the digit scenes.

Gu et al., "Open-vocabulary Object Detection via Vision and Language Knowledge Distillation"
(ICLR 2022, arXiv 2104.13921). Settings name their source:

  [TF1]    the paper's code release: tensorflow/tpu, models/official/detection/projects/vild/
           configs/vild_resnet.yaml and vild_ensemble_resnet.yaml (identical but for the image
           branch), and the checkpoint table of its README (distillation weight per row).
  [paper]  the paper: Sec. 3 (losses, temperature 0.01, ensemble lambda 2/3), Sec. 4.1 (LVIS with
           the 337 rare categories held out as novel).

The category list is a file: `task.model.vild.text_embeddings_file` is the `.npy` [C, D] that
tools/text_embeddings.py writes, with the category names beside it (`<stem>.names.json`). Row k
is class id k + 1 of the data, so `task.model.num_classes` is C + 1. Which categories are novel
(never training targets) is `novel_category_names` and/or `novel_lvis_frequencies`.
"""

import dataclasses
from typing import List  # noqa: UP035 (hyperparams reads typing.List)

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams, optimization
from official.vision.configs import backbones as mg_backbones
from official.vision.configs import common, decoders
from official.vision.configs import maskrcnn as mg_maskrcnn

from projects.spinenet.configs import detection, spinenet
from projects.vild.data import demo_data
from projects.vild.losses import vild_losses
from projects.vild.modeling import vild_head
from projects.vild.ops import score_ensemble

# [TF1] vild_parser.max_num_rois: precomputed proposals distilled per image.
PAPER_MAX_NUM_ROIS = 300
LVIS_NUM_CATEGORIES = 1203
LVIS_TRAIN_BATCH_SIZE = 256
LVIS_EVAL_BATCH_SIZE = 8
# [TF1] eval.eval_samples: LVIS v1 val images.
LVIS_VALIDATION_EXAMPLES = 19809
LVIS_TRAIN_STEPS = 180000
RESTRICTIONS = ['task.train_data.is_training != None', 'task.validation_data.is_training != None']


@dataclasses.dataclass(frozen=True)
class PaperRow:
  """One row of ViLD's LVIS results: its YAML and figures (LVIS v1 val AP_r, AP_c, AP_f, AP in
  percent; None where not taken from a checked source). Figures are those of the release's CLIP
  ViT-B/32 teacher (512-d embeddings); a run with another teacher is not the same experiment."""

  row: str
  config_file: str
  source: str
  ap_r: float | None = None
  ap_c: float | None = None
  ap_f: float | None = None
  ap: float | None = None


RELEASE_TABLE = (
  'tensorflow/tpu models/official/detection/projects/vild/README.md, trained checkpoints'
)
PAPER_ROWS = {
  'vild_text_r50_lvis': PaperRow(
    'ViLD-text, ResNet-50',
    'lvis_vild_text_r50_1024_180k.yaml',
    "the paper's LVIS table, row ViLD-text (no released checkpoint; figures not copied here)",
  ),
  'vild_r50_lvis': PaperRow(
    'ViLD, ResNet-50, weight 0.5',
    'lvis_vild_r50_1024_180k.yaml',
    RELEASE_TABLE,
    16.6,
    19.8,
    28.2,
    22.5,
  ),
  'vild_ensemble_r50_lvis': PaperRow(
    'ViLD-ensemble, ResNet-50, weight 0.5',
    'lvis_vild_ensemble_r50_1024_180k.yaml',
    RELEASE_TABLE,
    18.0,
    24.7,
    30.6,
    25.9,
  ),
  'vild_r152_lvis': PaperRow(
    'ViLD, ResNet-152, weight 1.0',
    'lvis_vild_r152_1024_180k.yaml',
    RELEASE_TABLE,
    19.6,
    21.6,
    28.5,
    24.0,
  ),
  'vild_ensemble_r152_lvis': PaperRow(
    'ViLD-ensemble, ResNet-152, weight 2.0',
    'lvis_vild_ensemble_r152_1024_180k.yaml',
    RELEASE_TABLE,
    19.2,
    24.8,
    30.8,
    26.2,
  ),
}


@dataclasses.dataclass
class ViLD(hyperparams.Config):
  """The open-vocabulary classifier.

  text_embeddings_file: `.npy` [C, D] text embeddings of the category names (row k = class id
    k + 1), names beside it as tools/text_embeddings.py writes them. Empty with a built-in
    training dataset: that dataset's own embeddings file.
  novel_category_names: names (from the names file) held out of training.
  novel_lvis_frequencies: LVIS frequency groups held out ('r' = rare, ViLD's split); needs the
    LVIS v1 category list as the names file.
  temperature: softmax temperature of the cosine classifier ([paper] 0.01).
  ensemble: ViLD-ensemble (a separate image-branch head; scores combined with `ensemble_lambda`).
  """

  text_embeddings_file: str = ''
  novel_category_names: List[str] = dataclasses.field(default_factory=list)  # noqa: UP006
  novel_lvis_frequencies: str = ''
  temperature: float = vild_head.PAPER_TEMPERATURE
  ensemble: bool = False
  ensemble_lambda: float = score_ensemble.PAPER_ENSEMBLE_LAMBDA

  def validate(self):
    if self.temperature <= 0:
      raise ValueError(f'vild.temperature must be > 0, got {self.temperature}')
    if not 0.0 <= self.ensemble_lambda <= 1.0:
      raise ValueError(f'vild.ensemble_lambda must lie in [0, 1], got {self.ensemble_lambda}')
    unknown = sorted(set(self.novel_lvis_frequencies) - set('rcf'))
    if unknown:
      raise ValueError(
        f'vild.novel_lvis_frequencies={self.novel_lvis_frequencies!r} has unknown groups '
        f'{unknown}; expected letters of "rcf"'
      )


@dataclasses.dataclass
class ViLDModel(detection.MaskRCNN):
  """Mask R-CNN (SpineNet project's backbones too) with class-agnostic boxes and masks."""

  detection_head: mg_maskrcnn.DetectionHead = dataclasses.field(
    default_factory=lambda: mg_maskrcnn.DetectionHead(class_agnostic_bbox_pred=True)
  )
  mask_head: mg_maskrcnn.MaskHead = dataclasses.field(
    default_factory=lambda: mg_maskrcnn.MaskHead(class_agnostic=True)
  )
  vild: ViLD = dataclasses.field(default_factory=ViLD)


@dataclasses.dataclass
class ViLDLosses(mg_maskrcnn.Losses):
  """Model Garden's Mask R-CNN losses (the class loss becomes ViLD-text) plus ViLD-image.

  image_distillation_weight: weight of the L1 distillation towards the teacher's embeddings of
    precomputed proposals ([TF1] feat_distill_weight, 0.5 for R50); 0 is ViLD-text, and then
    the training data's RoI fields are not read.
  """

  image_distillation_weight: float = vild_losses.PAPER_IMAGE_LOSS_WEIGHT

  def validate(self):
    if self.image_distillation_weight < 0:
      raise ValueError(
        f'losses.image_distillation_weight must be >= 0, got {self.image_distillation_weight}'
      )
    # Options of the softmax class loss that ViLD-text replaces: set, they would do nothing.
    if (
      self.frcnn_class_use_binary_cross_entropy
      or self.frcnn_class_loss_top_k_percent != 1.0
      or self.class_weights
    ):
      raise ValueError(
        'ViLD-text replaces the Fast R-CNN class loss: losses.frcnn_class_use_binary_cross_entropy, '
        'frcnn_class_loss_top_k_percent and class_weights must keep their defaults (false, 1.0, '
        'null)'
      )


@dataclasses.dataclass
class ViLDParser(mg_maskrcnn.Parser):
  """Model Garden's parser settings plus the number of precomputed proposals per image."""

  max_num_rois: int = PAPER_MAX_NUM_ROIS


@dataclasses.dataclass
class ViLDDataConfig(detection.MaskRCNNDataConfig):
  parser: ViLDParser = dataclasses.field(default_factory=ViLDParser)


@dataclasses.dataclass
class ViLDTask(detection.MaskRCNNTask):
  model: ViLDModel = dataclasses.field(default_factory=ViLDModel)
  losses: ViLDLosses = dataclasses.field(default_factory=ViLDLosses)
  train_data: ViLDDataConfig = dataclasses.field(
    default_factory=lambda: ViLDDataConfig(is_training=True)
  )
  validation_data: ViLDDataConfig = dataclasses.field(
    default_factory=lambda: ViLDDataConfig(is_training=False, drop_remainder=False)
  )


def _lvis_data(is_training: bool) -> ViLDDataConfig:
  """[TF1] vild_parser: 1024^2, large-scale jitter 0.1-2.0 and flips, up to 300 instances."""
  data = ViLDDataConfig(
    is_training=is_training,
    global_batch_size=LVIS_TRAIN_BATCH_SIZE if is_training else LVIS_EVAL_BATCH_SIZE,
    parser=ViLDParser(max_num_instances=300, mask_crop_size=112),
  )
  if is_training:
    data.parser.aug_rand_hflip = True
    data.parser.aug_scale_min, data.parser.aug_scale_max = 0.1, 2.0
  else:
    data.drop_remainder = False
  return data


def _lvis_trainer() -> cfg.TrainerConfig:
  """[TF1] 180k steps of SGD (momentum 0.9) at batch 256: LR 0.32, / 10 at 162k and 171k (its
  third boundary, 175.5k, has no level and so changes nothing), 1000 warm-up steps from 0.0032."""
  steps_per_loop = 1000
  return cfg.TrainerConfig(
    train_steps=LVIS_TRAIN_STEPS,
    validation_steps=-(-LVIS_VALIDATION_EXAMPLES // LVIS_EVAL_BATCH_SIZE),
    validation_interval=10 * steps_per_loop,
    steps_per_loop=steps_per_loop,
    summary_interval=steps_per_loop,
    checkpoint_interval=steps_per_loop,
    optimizer_config=optimization.OptimizationConfig(
      {
        'optimizer': {'type': 'sgd', 'sgd': {'momentum': 0.9}},
        'learning_rate': {
          'type': 'stepwise',
          'stepwise': {'boundaries': [162000, 171000], 'values': [0.32, 0.032, 0.0032]},
        },
        'warmup': {
          'type': 'linear',
          'linear': {'warmup_steps': 1000, 'warmup_learning_rate': 0.0032},
        },
      }
    ),
  )


def vild_lvis_experiment(
  resnet_depth: int, image_distillation_weight: float, ensemble: bool
) -> cfg.ExperimentConfig:
  """ViLD Mask R-CNN on LVIS v1 with the rare categories novel ([paper] Sec. 4.1).

  [TF1] ResNet-FPN P2-P6 (256 wide, batch-normed), anchors of size 8 with 3 aspect ratios, RPN
  of 2 convs, box head of 4 convs and 2 fcs of 1024, mask head of 4 convs, all class agnostic;
  512 sampled RoIs (25% foreground), 128 sampled masks, 1000 proposals, up to 300 detections
  with no score threshold; sync batch norm (momentum 0.997, epsilon 1e-4); weight decay 4e-5;
  float32 (use_bfloat16: false); no pretrained checkpoint (checkpoint.path is empty).
  """
  model = ViLDModel(
    num_classes=LVIS_NUM_CATEGORIES + 1,
    input_size=[1024, 1024, 3],
    min_level=2,
    max_level=6,
    anchor=mg_maskrcnn.Anchor(anchor_size=8.0, num_scales=1, aspect_ratios=[0.5, 1.0, 2.0]),
    backbone=detection.Backbone(type='resnet', resnet=mg_backbones.ResNet(model_id=resnet_depth)),
    decoder=decoders.Decoder(
      type='fpn', fpn=decoders.FPN(num_filters=256, use_separable_conv=False)
    ),
    rpn_head=mg_maskrcnn.RPNHead(num_convs=2, num_filters=256),
    detection_head=mg_maskrcnn.DetectionHead(
      num_convs=4, num_filters=256, num_fcs=2, fc_dims=1024, class_agnostic_bbox_pred=True
    ),
    mask_head=mg_maskrcnn.MaskHead(num_convs=4, num_filters=256, class_agnostic=True),
    roi_generator=mg_maskrcnn.ROIGenerator(
      pre_nms_top_k=2000, num_proposals=1000, test_pre_nms_top_k=1000, test_num_proposals=1000
    ),
    roi_sampler=mg_maskrcnn.ROISampler(num_sampled_rois=512, foreground_fraction=0.25),
    mask_sampler=mg_maskrcnn.MaskSampler(num_sampled_masks=128),
    detection_generator=mg_maskrcnn.DetectionGenerator(
      pre_nms_top_k=1000,
      pre_nms_score_threshold=0.0,
      nms_iou_threshold=0.5,
      max_num_detections=300,
    ),
    norm_activation=common.NormActivation(
      activation='relu', use_sync_bn=True, norm_momentum=0.997, norm_epsilon=1e-4
    ),
    vild=ViLD(novel_lvis_frequencies='r', ensemble=ensemble),
  )
  task = ViLDTask(
    model=model,
    losses=ViLDLosses(
      l2_weight_decay=4e-5,
      rpn_huber_loss_delta=1.0 / 9.0,
      frcnn_huber_loss_delta=1.0,
      image_distillation_weight=image_distillation_weight,
    ),
    train_data=_lvis_data(True),
    validation_data=_lvis_data(False),
  )
  return cfg.ExperimentConfig(task=task, trainer=_lvis_trainer(), restrictions=RESTRICTIONS)


@exp_factory.register_config_factory('vild_text_r50_lvis')
def vild_text_r50_lvis() -> cfg.ExperimentConfig:
  """ViLD-text, ResNet-50 ([paper] LVIS table, row ViLD-text): no image distillation.

  python train.py --experiment=vild_text_r50_lvis \
    --config_file=experiments/vild/lvis_vild_text_r50_1024_180k.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return vild_lvis_experiment(50, image_distillation_weight=0.0, ensemble=False)


@exp_factory.register_config_factory('vild_r50_lvis')
def vild_r50_lvis() -> cfg.ExperimentConfig:
  """ViLD, ResNet-50, distillation weight 0.5 ([TF1] vild_resnet.yaml; README row ViLD R50).

  python train.py --experiment=vild_r50_lvis \
    --config_file=experiments/vild/lvis_vild_r50_1024_180k.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return vild_lvis_experiment(50, image_distillation_weight=0.5, ensemble=False)


@exp_factory.register_config_factory('vild_ensemble_r50_lvis')
def vild_ensemble_r50_lvis() -> cfg.ExperimentConfig:
  """ViLD-ensemble, ResNet-50, weight 0.5 ([TF1] vild_ensemble_resnet.yaml; README row).

  python train.py --experiment=vild_ensemble_r50_lvis \
    --config_file=experiments/vild/lvis_vild_ensemble_r50_1024_180k.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return vild_lvis_experiment(50, image_distillation_weight=0.5, ensemble=True)


@exp_factory.register_config_factory('vild_r152_lvis')
def vild_r152_lvis() -> cfg.ExperimentConfig:
  """ViLD, ResNet-152, distillation weight 1.0 ([TF1] README row ViLD R152).

  python train.py --experiment=vild_r152_lvis \
    --config_file=experiments/vild/lvis_vild_r152_1024_180k.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return vild_lvis_experiment(152, image_distillation_weight=1.0, ensemble=False)


@exp_factory.register_config_factory('vild_ensemble_r152_lvis')
def vild_ensemble_r152_lvis() -> cfg.ExperimentConfig:
  """ViLD-ensemble, ResNet-152, distillation weight 2.0 ([TF1] README row ViLD-ensemble R152).

  python train.py --experiment=vild_ensemble_r152_lvis \
    --config_file=experiments/vild/lvis_vild_ensemble_r152_1024_180k.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return vild_lvis_experiment(152, image_distillation_weight=2.0, ensemble=True)


# The built-in digit scenes with proposals and teacher embeddings (projects/vild/data/demo_data.py):
# ids 1..10 are 'zero'..'nine'; these three are never training targets.
DEMO_NOVEL_CATEGORIES = ['two', 'five', 'eight']
# Proposals per training image that the demo data holds (`build_vild_digit_scenes` default).
DEMO_MAX_NUM_ROIS = 20
# Longer than the detector demo's 6: the README's results ran 10 epochs (620 steps).
DEMO_EPOCHS = 10


@exp_factory.register_config_factory('vild_demo')
def vild_demo() -> cfg.ExperimentConfig:
  """ViLD on the built-in digit scenes, 'two', 'five' and 'eight' held out; CPU minutes.

  The `maskrcnn_spinenet_demo` detector (mobile SpineNet-49XS at 128^2, its heads and runtime;
  `DEMO_EPOCHS` epochs) with class-agnostic boxes and masks, the text classifier of the dataset's
  own embeddings file (MiniLM) and ViLD-image at weight 0.5 on its 20 proposals per image.
  ViLD-text: `--params_override=task.losses.image_distillation_weight=0`; ViLD-ensemble:
  `task.model.vild.ensemble=true`.

  python train.py --experiment=vild_demo --mode=train_and_eval --model_dir=/tmp/vild_demo
  """
  base = spinenet.maskrcnn_spinenet_demo()
  task = ViLDTask()
  task.override(base.task.as_dict())
  task.model.detection_head.class_agnostic_bbox_pred = True
  task.model.mask_head.class_agnostic = True
  task.model.vild = ViLD(novel_category_names=list(DEMO_NOVEL_CATEGORIES))
  for data in (task.train_data, task.validation_data):
    data.builtin_dataset = demo_data.DATASET_NAME
    data.parser.max_num_rois = DEMO_MAX_NUM_ROIS
  return cfg.ExperimentConfig(
    runtime=base.runtime,
    task=task,
    trainer=spinenet.demo_trainer(DEMO_EPOCHS, warmup_epochs=1),
    restrictions=RESTRICTIONS,
  )
