"""SpineNet experiments: one per row of the papers' RetinaNet, Mask R-CNN and mobile tables.

Du et al., "SpineNet: Learning Scale-Permuted Backbone for Recognition and Localization" (CVPR
2020, arXiv 1912.05027) and Du et al., "Efficient Scale-Permuted Backbone with Learned Resource
Distribution" (ECCV 2020, arXiv 2010.11426; the mobile SpineNet-49XS/49S/49, also the CVPR
paper's Appendix A). Model Garden ships the backbones, heads, losses, input pipelines and the
COCO evaluator, but only generic `retinanet_spinenet_coco` / `maskrcnn_spinenet_coco` /
`retinanet_mobile_coco` factories; these are the per-row recipes. Every setting names its source:

  [TF1]    the papers' code release: tensorflow/tpu, models/official/detection/configs/spinenet/
           <file>.yaml (named on each row) and the defaults in configs/base_config.py,
           retinanet_config.py and maskrcnn_config.py that those files do not override.
  [paper]  the SpineNet paper: Sec. 4.1 (the RetinaNet head of each size), Sec. 5.1 (protocols B
           and C, anchor sizes), Appendix A (the mobile models' heads and input sizes).
  [FLOPs]  our measurement: the only choice that reproduces the paper's FLOPs and parameters
           (SpineNet-49S, see `retinanet_spinenet49s_coco`).

Data paths are left empty: set `task.train_data.input_path`, `task.validation_data.input_path`
and `task.annotation_file` to COCO TFRecords and JSON (tools/coco_to_tfrecord.py writes them).
"""

import dataclasses

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import optimization
from official.vision.configs import backbones as mg_backbones
from official.vision.configs import common, decoders
from official.vision.configs import maskrcnn as mg_maskrcnn
from official.vision.configs import retinanet as mg_retinanet

from projects.common.configs import runtime
from projects.spinenet.configs import detection

COCO_TRAIN_EXAMPLES = mg_retinanet.COCO_TRAIN_EXAMPLES
COCO_VALIDATION_EXAMPLES = mg_retinanet.COCO_VAL_EXAMPLES
# COCO's category ids run 1..90; Model Garden keeps id 0 for background.
COCO_NUM_CLASSES = 91
# [TF1] every row trains on batch 256; evaluation batch 8 is the release's default.
TRAIN_BATCH_SIZE = 256
EVAL_BATCH_SIZE = 8
STEPS_PER_EPOCH = COCO_TRAIN_EXAMPLES // TRAIN_BATCH_SIZE
# [TF1] base_config.py: linear warm-up from this learning rate.
WARMUP_LEARNING_RATE = 0.0067
RESTRICTIONS = ['task.train_data.is_training != None', 'task.validation_data.is_training != None']


@dataclasses.dataclass(frozen=True)
class PaperRow:
  """One row of a paper's table: where it is, and its figures (None where not found).

  `params_m` (millions) and `gmacs` (billions of multiply-adds, the papers' "FLOPs") come from
  the TF1 release's MODEL_ZOO.md, which lists the paper's figures; `box_ap` / `mask_ap` are the
  paper's (see `ap_source`).
  """

  table: str
  config_file: str
  input_size: int
  box_ap: float | None
  params_m: float | None
  gmacs: float | None
  ap_source: str
  mask_ap: float | None = None


RETINANET_TABLE = 'SpineNet Table 2 (RetinaNet, protocol C)'
MASKRCNN_TABLE = 'SpineNet Table 6 (Mask R-CNN)'
MOBILE_TABLE = 'SpineNet App. A Table 10 / Eff-SpineNet (mobile RetinaNet)'
TEST_DEV = 'COCO test-dev, the paper as Papers with Code lists it'
VAL_TF1 = 'COCO val2017, TF1 config header (= paper Table 6)'

PAPER_ROWS = {
  'retinanet_spinenet49s_coco': PaperRow(
    RETINANET_TABLE, 'coco_retinanet_spinenet49s_640_500ep.yaml', 640, 41.5, 11.9, 33.8, TEST_DEV
  ),
  'retinanet_spinenet49_coco': PaperRow(
    RETINANET_TABLE, 'coco_retinanet_spinenet49_640_500ep.yaml', 640, 44.3, 28.5, 85.4, TEST_DEV
  ),
  'retinanet_spinenet96_coco': PaperRow(
    RETINANET_TABLE, 'coco_retinanet_spinenet96_1024_500ep.yaml', 1024, 48.6, 43.0, 265.4, TEST_DEV
  ),
  'retinanet_spinenet143_coco': PaperRow(
    RETINANET_TABLE, 'coco_retinanet_spinenet143_1280_500ep.yaml', 1280, 50.7, 67.0, 524.0, TEST_DEV
  ),
  'retinanet_spinenet190_coco': PaperRow(
    RETINANET_TABLE,
    'coco_retinanet_spinenet190_1280_400ep.yaml',
    1280,
    52.1,
    163.6,
    1885.0,
    TEST_DEV,
  ),
  'maskrcnn_spinenet49_coco': PaperRow(
    MASKRCNN_TABLE, 'coco_maskrcnn_spinenet49_640_350ep.yaml', 640, 42.9, 40.8, 215.7, VAL_TF1, 38.1
  ),
  'maskrcnn_spinenet96_coco': PaperRow(
    MASKRCNN_TABLE,
    'coco_maskrcnn_spinenet96_1024_350ep.yaml',
    1024,
    47.2,
    55.2,
    314.6,
    VAL_TF1,
    41.5,
  ),
  'maskrcnn_spinenet143_coco': PaperRow(
    MASKRCNN_TABLE,
    'coco_maskrcnn_spinenet143_1280_350ep.yaml',
    1280,
    48.8,
    79.2,
    498.4,
    VAL_TF1,
    42.7,
  ),
  'maskrcnn_spinenet190_coco': PaperRow(
    MASKRCNN_TABLE,
    'coco_maskrcnn_spinenet190_1536_400ep.yaml',
    1536,
    52.0,
    168.2,
    1685.7,
    'COCO val2017, TF1 config header and MODEL_ZOO.md',
    45.9,
  ),
  'retinanet_spinenet_mobile49xs_coco': PaperRow(
    MOBILE_TABLE, 'coco_retinanet_spinenet_mobile49xs_256_600ep.yaml', 256, None, None, None, ''
  ),
  'retinanet_spinenet_mobile49s_coco': PaperRow(
    MOBILE_TABLE, 'coco_retinanet_spinenet_mobile49s_384_600ep.yaml', 384, None, None, None, ''
  ),
  'retinanet_spinenet_mobile49_coco': PaperRow(
    MOBILE_TABLE,
    'coco_retinanet_spinenet_mobile49_384_600ep.yaml',
    384,
    28.6,
    2.34,
    1.0,
    'COCO val2017, TF1 MODEL_ZOO.md',
  ),
}


def spinenet_backbone(model_id: str, stochastic_depth_drop_rate: float) -> detection.Backbone:
  """Model Garden's SpineNet-`model_id` with outputs P3-P7."""
  return detection.Backbone(
    type='spinenet',
    spinenet=mg_backbones.SpineNet(
      model_id=model_id, stochastic_depth_drop_rate=stochastic_depth_drop_rate
    ),
  )


def _stepwise_trainer(
  train_steps: int,
  learning_rate: float,
  boundaries: tuple[int, int],
  warmup_steps: int,
  gradient_clip_norm: float | None,
) -> cfg.TrainerConfig:
  """[TF1] SGD momentum 0.9, linear warm-up, then the rate divided by 10 at each boundary."""
  sgd = {'momentum': 0.9}
  if gradient_clip_norm:
    sgd['global_clipnorm'] = gradient_clip_norm
  return cfg.TrainerConfig(
    train_steps=train_steps,
    validation_steps=COCO_VALIDATION_EXAMPLES // EVAL_BATCH_SIZE,
    validation_interval=STEPS_PER_EPOCH,
    steps_per_loop=STEPS_PER_EPOCH,
    summary_interval=STEPS_PER_EPOCH,
    checkpoint_interval=STEPS_PER_EPOCH,
    optimizer_config=optimization.OptimizationConfig(
      {
        'optimizer': {'type': 'sgd', 'sgd': sgd},
        'learning_rate': {
          'type': 'stepwise',
          'stepwise': {
            'boundaries': list(boundaries),
            'values': [round(learning_rate * 0.1**i, 8) for i in range(3)],
          },
        },
        'warmup': {
          'type': 'linear',
          'linear': {'warmup_steps': warmup_steps, 'warmup_learning_rate': WARMUP_LEARNING_RATE},
        },
      }
    ),
  )


def _coco_data(data_cls, is_training: bool, aug_scale: tuple[float, float]):
  data = data_cls(
    is_training=is_training,
    global_batch_size=TRAIN_BATCH_SIZE if is_training else EVAL_BATCH_SIZE,
  )
  if is_training:
    data.parser.aug_rand_hflip = True
    data.parser.aug_scale_min, data.parser.aug_scale_max = aug_scale
  else:
    data.drop_remainder = False
  return data


def retinanet_experiment(
  backbone: detection.Backbone,
  input_size: int,
  head: mg_retinanet.RetinaNetHead,
  activation: str,
  aug_scale: tuple[float, float],
  anchor_size: float,
  train_steps: int,
  learning_rate: float,
  boundaries: tuple[int, int],
  warmup_steps: int = 2000,
  l2_weight_decay: float = 4e-5,
  gradient_clip_norm: float | None = 10.0,
) -> cfg.ExperimentConfig:
  """RetinaNet on COCO with `backbone` feeding `head` directly (SpineNet is its own pyramid).

  [TF1] batch norm keeps the release's defaults (momentum 0.997, epsilon 1e-4) with sync BN.
  """
  task = detection.RetinaNetTask(
    model=detection.RetinaNet(
      num_classes=COCO_NUM_CLASSES,
      input_size=[input_size, input_size, 3],
      min_level=3,
      max_level=7,
      anchor=mg_retinanet.Anchor(anchor_size=anchor_size),
      backbone=backbone,
      decoder=decoders.Decoder(type='identity', identity=decoders.Identity()),
      head=head,
      norm_activation=common.NormActivation(
        activation=activation, use_sync_bn=True, norm_momentum=0.997, norm_epsilon=1e-4
      ),
    ),
    losses=mg_retinanet.Losses(l2_weight_decay=l2_weight_decay),
    train_data=_coco_data(detection.RetinaNetDataConfig, True, aug_scale),
    validation_data=_coco_data(detection.RetinaNetDataConfig, False, aug_scale),
  )
  trainer = _stepwise_trainer(
    train_steps, learning_rate, boundaries, warmup_steps, gradient_clip_norm
  )
  return cfg.ExperimentConfig(
    runtime=cfg.RuntimeConfig(mixed_precision_dtype='bfloat16'),
    task=task,
    trainer=trainer,
    restrictions=RESTRICTIONS,
  )


def maskrcnn_experiment(
  backbone: detection.Backbone,
  input_size: int,
  activation: str,
  aug_scale: tuple[float, float],
  anchor_size: float,
  train_steps: int,
  learning_rate: float,
  boundaries: tuple[int, int],
  head_num_convs: int | None = None,
  head_num_filters: int | None = None,
) -> cfg.ExperimentConfig:
  """Mask R-CNN on COCO with `backbone` feeding the RPN and RoI heads directly.

  [TF1] RPN of one conv, box head of 4 convs and one 1024-wide fc, mask head of 4 convs, all
  with batch norm (momentum 0.99, epsilon 1e-3); `head_num_convs` / `head_num_filters` replace
  the convs and widths of all three heads; weight decay 4e-5, no gradient clipping.
  """
  rpn_head = mg_maskrcnn.RPNHead(num_convs=1, num_filters=256)
  detection_head = mg_maskrcnn.DetectionHead(num_convs=4, num_filters=256, num_fcs=1)
  mask_head = mg_maskrcnn.MaskHead(num_convs=4, num_filters=256)
  for head in (rpn_head, detection_head, mask_head):
    head.num_convs = head_num_convs or head.num_convs
    head.num_filters = head_num_filters or head.num_filters
  task = detection.MaskRCNNTask(
    model=detection.MaskRCNN(
      num_classes=COCO_NUM_CLASSES,
      input_size=[input_size, input_size, 3],
      min_level=3,
      max_level=7,
      anchor=mg_maskrcnn.Anchor(anchor_size=anchor_size),
      backbone=backbone,
      decoder=decoders.Decoder(type='identity', identity=decoders.Identity()),
      rpn_head=rpn_head,
      detection_head=detection_head,
      mask_head=mask_head,
      norm_activation=common.NormActivation(
        activation=activation, use_sync_bn=True, norm_momentum=0.99, norm_epsilon=1e-3
      ),
    ),
    losses=mg_maskrcnn.Losses(l2_weight_decay=4e-5),
    train_data=_coco_data(detection.MaskRCNNDataConfig, True, aug_scale),
    validation_data=_coco_data(detection.MaskRCNNDataConfig, False, aug_scale),
  )
  trainer = _stepwise_trainer(train_steps, learning_rate, boundaries, 2000, None)
  return cfg.ExperimentConfig(
    runtime=cfg.RuntimeConfig(mixed_precision_dtype='bfloat16'),
    task=task,
    trainer=trainer,
    restrictions=RESTRICTIONS,
  )


# [TF1] spinenet{49S,49,96,143}_retinanet.yaml (protocol C): 500 epochs, LR 0.28 divided at
# 217610 and 226870, warm-up 2000 steps, gradient clipping at norm 10.
PROTOCOL_C = dict(train_steps=231500, learning_rate=0.28, boundaries=(217610, 226870))


@exp_factory.register_config_factory('retinanet_spinenet49s_coco')
def retinanet_spinenet49s_coco() -> cfg.ExperimentConfig:
  """RetinaNet SpineNet-49S, 640^2 (SpineNet Table 2; [TF1] spinenet49S_retinanet.yaml).

  Swish, stochastic depth 0.2, scale jitter 0.5-2.0, anchor size 3, 500 epochs. The head is 4
  convs of 128 filters ([paper] Sec. 4.1, [TF1]). [FLOPs] The backbone's P3-P7 endpoints are 256
  wide, not the 128 of Model Garden's SCALING_MAP['49S'] (which the TF1 YAML also names): with
  256 this model has the paper's 33.8 B multiply-adds and 11.9 M parameters, with 128 it has
  31.0 B and 11.3 M (set `spinenet_scaled.endpoints_num_filters: 128` for that variant).

  python train.py --experiment=retinanet_spinenet49s_coco \
    --config_file=experiments/spinenet/coco_retinanet_spinenet49s_640_500ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  backbone = detection.Backbone(
    type='spinenet_scaled',
    spinenet_scaled=detection.SpineNetScaled(
      model_id='49S', stochastic_depth_drop_rate=0.2, endpoints_num_filters=256
    ),
  )
  return retinanet_experiment(
    backbone,
    640,
    mg_retinanet.RetinaNetHead(num_convs=4, num_filters=128),
    'swish',
    (0.5, 2.0),
    anchor_size=3.0,
    **PROTOCOL_C,
  )


@exp_factory.register_config_factory('retinanet_spinenet49_coco')
def retinanet_spinenet49_coco() -> cfg.ExperimentConfig:
  """RetinaNet SpineNet-49, 640^2 (SpineNet Table 2; [TF1] spinenet49_retinanet.yaml).

  Swish, stochastic depth 0.2, scale jitter 0.5-2.0, anchor size 3, 500 epochs, head 4 x 256.

  python train.py --experiment=retinanet_spinenet49_coco \
    --config_file=experiments/spinenet/coco_retinanet_spinenet49_640_500ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return retinanet_experiment(
    spinenet_backbone('49', 0.2),
    640,
    mg_retinanet.RetinaNetHead(num_convs=4, num_filters=256),
    'swish',
    (0.5, 2.0),
    anchor_size=3.0,
    **PROTOCOL_C,
  )


@exp_factory.register_config_factory('retinanet_spinenet96_coco')
def retinanet_spinenet96_coco() -> cfg.ExperimentConfig:
  """RetinaNet SpineNet-96, 1024^2 (SpineNet Table 2; [TF1] spinenet96_retinanet.yaml).

  Swish, stochastic depth 0.2, scale jitter 0.5-2.0, anchor size 3, 500 epochs, head 4 x 256.

  python train.py --experiment=retinanet_spinenet96_coco \
    --config_file=experiments/spinenet/coco_retinanet_spinenet96_1024_500ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return retinanet_experiment(
    spinenet_backbone('96', 0.2),
    1024,
    mg_retinanet.RetinaNetHead(num_convs=4, num_filters=256),
    'swish',
    (0.5, 2.0),
    anchor_size=3.0,
    **PROTOCOL_C,
  )


@exp_factory.register_config_factory('retinanet_spinenet143_coco')
def retinanet_spinenet143_coco() -> cfg.ExperimentConfig:
  """RetinaNet SpineNet-143, 1280^2 (SpineNet Table 2; [TF1] spinenet143_retinanet.yaml).

  Swish, stochastic depth 0.16, scale jitter 0.1-1.9, anchor size 4 ([paper] Sec. 5.1 for 143
  and larger; the TF1 default), 500 epochs, head 4 x 256.

  python train.py --experiment=retinanet_spinenet143_coco \
    --config_file=experiments/spinenet/coco_retinanet_spinenet143_1280_500ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return retinanet_experiment(
    spinenet_backbone('143', 0.16),
    1280,
    mg_retinanet.RetinaNetHead(num_convs=4, num_filters=256),
    'swish',
    (0.1, 1.9),
    anchor_size=4.0,
    **PROTOCOL_C,
  )


@exp_factory.register_config_factory('retinanet_spinenet190_coco')
def retinanet_spinenet190_coco() -> cfg.ExperimentConfig:
  """RetinaNet SpineNet-190, 1280^2 (SpineNet Table 2; [TF1] spinenet190_retinanet.yaml).

  Swish, stochastic depth 0.2, scale jitter 0.1-1.9, anchor size 4, head 7 x 512 ([paper]
  Sec. 4.1); 400 epochs at LR 0.3 divided at 171310 and 180570.

  python train.py --experiment=retinanet_spinenet190_coco \
    --config_file=experiments/spinenet/coco_retinanet_spinenet190_1280_400ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return retinanet_experiment(
    spinenet_backbone('190', 0.2),
    1280,
    mg_retinanet.RetinaNetHead(num_convs=7, num_filters=512),
    'swish',
    (0.1, 1.9),
    anchor_size=4.0,
    train_steps=185200,
    learning_rate=0.3,
    boundaries=(171310, 180570),
  )


# [TF1] spinenet{49,96,143}_mrcnn.yaml (protocol B): 350 epochs, LR 0.28 divided at 148160 and
# 157420, scale jitter 0.5-2.0, anchor size 3, ReLU, no stochastic depth.
PROTOCOL_B_MASKRCNN = dict(
  activation='relu',
  aug_scale=(0.5, 2.0),
  anchor_size=3.0,
  train_steps=162050,
  learning_rate=0.28,
  boundaries=(148160, 157420),
)


@exp_factory.register_config_factory('maskrcnn_spinenet49_coco')
def maskrcnn_spinenet49_coco() -> cfg.ExperimentConfig:
  """Mask R-CNN SpineNet-49, 640^2 (SpineNet Table 6; [TF1] spinenet49_mrcnn.yaml), 350 epochs.

  python train.py --experiment=maskrcnn_spinenet49_coco \
    --config_file=experiments/spinenet/coco_maskrcnn_spinenet49_640_350ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return maskrcnn_experiment(spinenet_backbone('49', 0.0), 640, **PROTOCOL_B_MASKRCNN)


@exp_factory.register_config_factory('maskrcnn_spinenet96_coco')
def maskrcnn_spinenet96_coco() -> cfg.ExperimentConfig:
  """Mask R-CNN SpineNet-96, 1024^2 (SpineNet Table 6; [TF1] spinenet96_mrcnn.yaml), 350 epochs.

  python train.py --experiment=maskrcnn_spinenet96_coco \
    --config_file=experiments/spinenet/coco_maskrcnn_spinenet96_1024_350ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return maskrcnn_experiment(spinenet_backbone('96', 0.0), 1024, **PROTOCOL_B_MASKRCNN)


@exp_factory.register_config_factory('maskrcnn_spinenet143_coco')
def maskrcnn_spinenet143_coco() -> cfg.ExperimentConfig:
  """Mask R-CNN SpineNet-143, 1280^2 (SpineNet Table 6; [TF1] spinenet143_mrcnn.yaml).

  350 epochs; the release keeps anchor size 3 here (its RetinaNet-143 uses 4).

  python train.py --experiment=maskrcnn_spinenet143_coco \
    --config_file=experiments/spinenet/coco_maskrcnn_spinenet143_1280_350ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return maskrcnn_experiment(spinenet_backbone('143', 0.0), 1280, **PROTOCOL_B_MASKRCNN)


@exp_factory.register_config_factory('maskrcnn_spinenet190_coco')
def maskrcnn_spinenet190_coco() -> cfg.ExperimentConfig:
  """Mask R-CNN SpineNet-190, 1536^2 (SpineNet Table 6; [TF1] spinenet190_mrcnn.yaml).

  Swish, stochastic depth 0.2, scale jitter 0.1-2.0, anchor size 5, RPN / box / mask heads of 7
  convs x 384 filters; 400 epochs at LR 0.28 divided at 173530 and 182910.

  python train.py --experiment=maskrcnn_spinenet190_coco \
    --config_file=experiments/spinenet/coco_maskrcnn_spinenet190_1536_400ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return maskrcnn_experiment(
    spinenet_backbone('190', 0.2),
    1536,
    activation='swish',
    aug_scale=(0.1, 2.0),
    anchor_size=5.0,
    train_steps=187600,
    learning_rate=0.28,
    boundaries=(173530, 182910),
    head_num_convs=7,
    head_num_filters=384,
  )


def mobile_retinanet_experiment(
  model_id: str, input_size: int, head_num_filters: int
) -> cfg.ExperimentConfig:
  """RetinaNet with Model Garden's mobile SpineNet-`model_id` (MBConv blocks, SE 0.2).

  [paper] App. A: separable convolutions in the head, protocol B with swish, 600 epochs.
  [TF1] spinenet-mbconv49_retinanet.yaml: LR 0.28 divided at 263910 and 273170 (277800 steps),
  weight decay 3e-5, no stochastic depth, the default 500-step warm-up, anchor size 3.
  """
  backbone = detection.Backbone(
    type='spinenet_mobile',
    spinenet_mobile=mg_backbones.SpineNetMobile(model_id=model_id, stochastic_depth_drop_rate=0.0),
  )
  return retinanet_experiment(
    backbone,
    input_size,
    mg_retinanet.RetinaNetHead(num_convs=4, num_filters=head_num_filters, use_separable_conv=True),
    'swish',
    (0.5, 2.0),
    anchor_size=3.0,
    train_steps=277800,
    learning_rate=0.28,
    boundaries=(263910, 273170),
    warmup_steps=500,
    l2_weight_decay=3e-5,
    gradient_clip_norm=None,
  )


@exp_factory.register_config_factory('retinanet_spinenet_mobile49xs_coco')
def retinanet_spinenet_mobile49xs_coco() -> cfg.ExperimentConfig:
  """RetinaNet mobile SpineNet-49XS, 256^2, head 4 x 24 separable ([paper] App. A), 600 epochs.

  python train.py --experiment=retinanet_spinenet_mobile49xs_coco \
    --config_file=experiments/spinenet/coco_retinanet_spinenet_mobile49xs_256_600ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return mobile_retinanet_experiment('49XS', 256, 24)


@exp_factory.register_config_factory('retinanet_spinenet_mobile49s_coco')
def retinanet_spinenet_mobile49s_coco() -> cfg.ExperimentConfig:
  """RetinaNet mobile SpineNet-49S, 384^2, head 4 x 40 separable ([paper] App. A), 600 epochs.

  python train.py --experiment=retinanet_spinenet_mobile49s_coco \
    --config_file=experiments/spinenet/coco_retinanet_spinenet_mobile49s_384_600ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return mobile_retinanet_experiment('49S', 384, 40)


@exp_factory.register_config_factory('retinanet_spinenet_mobile49_coco')
def retinanet_spinenet_mobile49_coco() -> cfg.ExperimentConfig:
  """RetinaNet mobile SpineNet-49, 384^2, head 4 x 48 separable ([paper] App. A), 600 epochs.

  python train.py --experiment=retinanet_spinenet_mobile49_coco \
    --config_file=experiments/spinenet/coco_retinanet_spinenet_mobile49_384_600ep.yaml \
    --mode=train_and_eval --model_dir=DIR
  """
  return mobile_retinanet_experiment('49', 384, 48)


# The built-in digit scenes (projects.common.datasets.digit_scenes): 128^2 images, category ids
# 1..10, so 11 outputs with background; 2000 training and 300 validation images.
DEMO_DATASET = 'digit_scenes'
DEMO_INPUT_SIZE = 128
DEMO_NUM_CLASSES = 11
DEMO_TRAIN_EXAMPLES = 2000
DEMO_TRAIN_BATCH_SIZE = 32
DEMO_STEPS_PER_EPOCH = DEMO_TRAIN_EXAMPLES // DEMO_TRAIN_BATCH_SIZE
DEMO_EVAL_BATCH_SIZE = 20
# Digits per scene: `digits_per_image` of digit_scenes.build_digit_scenes is (1, 6). The parser
# pads every image's objects to `max_num_instances`; Model Garden's 100 moves 16x the mask crops.
DEMO_MAX_OBJECTS_PER_IMAGE = 6
RETINANET_DEMO_EPOCHS = 10
MASKRCNN_DEMO_EPOCHS = 6
DEMO_LEARNING_RATE = 3e-3
DEMO_BACKBONE_ID = '49XS'


def _demo_backbone() -> detection.Backbone:
  """Mobile SpineNet-49XS, the papers' smallest detector backbone (24-wide P3-P7)."""
  return detection.Backbone(
    type='spinenet_mobile',
    spinenet_mobile=mg_backbones.SpineNetMobile(model_id=DEMO_BACKBONE_ID),
  )


def _demo_data(data_cls, is_training: bool, dtype: str):
  """The built-in digit scenes without flips: a mirrored digit is another glyph."""
  data = data_cls(
    builtin_dataset=DEMO_DATASET,
    is_training=is_training,
    global_batch_size=DEMO_TRAIN_BATCH_SIZE if is_training else DEMO_EVAL_BATCH_SIZE,
    dtype=dtype,
    shuffle_buffer_size=DEMO_TRAIN_EXAMPLES,
  )
  data.parser.max_num_instances = DEMO_MAX_OBJECTS_PER_IMAGE
  if is_training:
    data.parser.aug_rand_hflip = False
    data.parser.aug_scale_min, data.parser.aug_scale_max = 0.8, 1.25
  else:
    data.drop_remainder = False
  return data


def demo_trainer(epochs: int, warmup_epochs: float) -> cfg.TrainerConfig:
  """Adam at `DEMO_LEARNING_RATE`, linear warm-up, cosine decay over `epochs` of the digit scenes.

  From scratch, as the papers train SpineNet, but in ~10 CPU minutes instead of hundreds of TPU
  epochs. RetinaNet demo, seed 0, AMD EPYC (2 cores): SGD at 0.04 per 16 images for 4 epochs
  reached 1.2 box AP, Adam at 2e-3 for the same 4 epochs 2.3, Adam at 3e-3 for 12 epochs at
  batch 32 29.8 (11.7 min).
  """
  train_steps = epochs * DEMO_STEPS_PER_EPOCH
  return cfg.TrainerConfig(
    train_steps=train_steps,
    validation_steps=-1,
    validation_interval=train_steps,
    steps_per_loop=DEMO_STEPS_PER_EPOCH,
    summary_interval=DEMO_STEPS_PER_EPOCH,
    checkpoint_interval=train_steps,
    optimizer_config=optimization.OptimizationConfig(
      {
        'optimizer': {'type': 'adam', 'adam': {'global_clipnorm': 10.0}},
        'learning_rate': {
          'type': 'cosine',
          'cosine': {'initial_learning_rate': DEMO_LEARNING_RATE, 'decay_steps': train_steps},
        },
        'warmup': {
          'type': 'linear',
          'linear': {'warmup_steps': round(warmup_epochs * DEMO_STEPS_PER_EPOCH)},
        },
      }
    ),
  )


def _demo_nms(detection_generator_class, **settings):
  """`detection_generator_class` with one batched NMS over all classes.

  `combined_non_max_suppression` is one CPU/GPU kernel (not TPU, which the demos never use);
  Model Garden's default `v2` loops over classes in the graph: the RetinaNet demo evaluated its
  300 validation images in 140 s with it and in 23 s batched, with the same AP (AMD EPYC, 2 cores).
  """
  return detection_generator_class(nms_version='batched', **settings)


def demo_norm_activation() -> common.NormActivation:
  """Swish and plain batch norm (one device) whose moving averages span ~10 steps, not ~100.

  Evaluation normalizes with the moving averages, and in a run of a few hundred Adam steps the
  weights move faster than Model Garden's momentum 0.99 follows: a 7-epoch Mask R-CNN demo run
  scored 1.2 box AP with them and 27.6 when the same checkpoint normalized each evaluation batch
  by its own statistics (AMD EPYC, seed 0).
  """
  return common.NormActivation(
    activation='swish', use_sync_bn=False, norm_momentum=0.9, norm_epsilon=1e-3
  )


@exp_factory.register_config_factory('retinanet_spinenet_demo')
def retinanet_spinenet_demo() -> cfg.ExperimentConfig:
  """RetinaNet with mobile SpineNet-49XS on the built-in digit scenes at 128^2; CPU minutes.

  The paper's smallest row (`retinanet_spinenet_mobile49xs_coco`: head of 4 separable convs x
  24) at half its input size, on 10 digit classes: batch 32 for 10 epochs. Results:
  projects/spinenet/README.md.

  python train.py --experiment=retinanet_spinenet_demo --mode=train_and_eval \
    --model_dir=/tmp/retinanet_spinenet_demo
  """
  cpu = runtime.cpu_runtime()
  task = detection.RetinaNetTask(
    model=detection.RetinaNet(
      num_classes=DEMO_NUM_CLASSES,
      input_size=[DEMO_INPUT_SIZE, DEMO_INPUT_SIZE, 3],
      min_level=3,
      max_level=7,
      anchor=mg_retinanet.Anchor(anchor_size=3.0),
      backbone=_demo_backbone(),
      decoder=decoders.Decoder(type='identity', identity=decoders.Identity()),
      head=mg_retinanet.RetinaNetHead(num_convs=4, num_filters=24, use_separable_conv=True),
      detection_generator=_demo_nms(mg_retinanet.DetectionGenerator),
      norm_activation=demo_norm_activation(),
    ),
    losses=mg_retinanet.Losses(l2_weight_decay=3e-5),
    train_data=_demo_data(detection.RetinaNetDataConfig, True, cpu.mixed_precision_dtype),
    validation_data=_demo_data(detection.RetinaNetDataConfig, False, cpu.mixed_precision_dtype),
  )
  return cfg.ExperimentConfig(
    runtime=cpu,
    task=task,
    trainer=demo_trainer(RETINANET_DEMO_EPOCHS, warmup_epochs=1),
    restrictions=RESTRICTIONS,
  )


@exp_factory.register_config_factory('maskrcnn_spinenet_demo')
def maskrcnn_spinenet_demo() -> cfg.ExperimentConfig:
  """Mask R-CNN with mobile SpineNet-49XS on the built-in digit scenes at 128^2; CPU minutes.

  Narrow heads (RPN 1 conv x 64, box head one 256-wide fc, mask head 2 convs x 64), 32 sampled
  RoIs and 8 mask targets per image, at most 10 detections: the scenes hold 1-6 digits. Seconds
  per training step at batch 32 (AMD EPYC, 2 cores, one fixed batch): 1.83 with Model Garden's
  per-image proposal NMS, 64 RoIs and 16 masks; 1.43 with batched proposal NMS; 0.94 with 32 RoIs
  and 8 masks as well (the 112^2 mask-target crops cost most). bench/detection_demo_step.py times
  these settings. Results: projects/spinenet/README.md.

  python train.py --experiment=maskrcnn_spinenet_demo --mode=train_and_eval \
    --model_dir=/tmp/maskrcnn_spinenet_demo
  """
  cpu = runtime.cpu_runtime()
  task = detection.MaskRCNNTask(
    model=detection.MaskRCNN(
      num_classes=DEMO_NUM_CLASSES,
      input_size=[DEMO_INPUT_SIZE, DEMO_INPUT_SIZE, 3],
      min_level=3,
      max_level=7,
      anchor=mg_maskrcnn.Anchor(anchor_size=3.0),
      backbone=_demo_backbone(),
      decoder=decoders.Decoder(type='identity', identity=decoders.Identity()),
      rpn_head=mg_maskrcnn.RPNHead(num_convs=1, num_filters=64),
      detection_head=mg_maskrcnn.DetectionHead(num_convs=0, num_fcs=1, fc_dims=256),
      mask_head=mg_maskrcnn.MaskHead(num_convs=2, num_filters=64),
      roi_generator=mg_maskrcnn.ROIGenerator(
        pre_nms_top_k=500,
        num_proposals=200,
        test_pre_nms_top_k=500,
        test_num_proposals=100,
        use_batched_nms=True,
      ),
      roi_sampler=mg_maskrcnn.ROISampler(num_sampled_rois=32),
      mask_sampler=mg_maskrcnn.MaskSampler(num_sampled_masks=8),
      detection_generator=_demo_nms(mg_maskrcnn.DetectionGenerator, max_num_detections=10),
      norm_activation=demo_norm_activation(),
    ),
    losses=mg_maskrcnn.Losses(l2_weight_decay=3e-5),
    train_data=_demo_data(detection.MaskRCNNDataConfig, True, cpu.mixed_precision_dtype),
    validation_data=_demo_data(detection.MaskRCNNDataConfig, False, cpu.mixed_precision_dtype),
  )
  return cfg.ExperimentConfig(
    runtime=cpu,
    task=task,
    trainer=demo_trainer(MASKRCNN_DEMO_EPOCHS, warmup_epochs=0.5),
    restrictions=RESTRICTIONS,
  )
