"""Copy-Paste Mask R-CNN: Model Garden's Mask R-CNN task config with a `copy_paste` block on the
training input, and the CPU demo on the built-in digit scenes.

Ghiasi et al., "Simple Copy-Paste is a Strong Data Augmentation Method for Instance
Segmentation" (CVPR 2021). The paper-row COCO experiments are still to come.
"""

import dataclasses

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams, optimization
from official.vision.configs import backbones, decoders
from official.vision.configs import maskrcnn as mg_maskrcnn

from projects.common.configs import runtime
from projects.common.datasets import digit_scenes
from projects.copy_paste.ops import copy_paste as cp

RESTRICTIONS = ['task.train_data.is_training != None', 'task.validation_data.is_training != None']


@dataclasses.dataclass
class CopyPaste(hyperparams.Config):
  """Copy-Paste of the training input (projects.copy_paste.ops.copy_paste.paste).

  The flip and the scale jitter of both images are the parser's `aug_rand_hflip` and
  `aug_scale_min` / `aug_scale_max` (0.1 / 2.0 is the paper's large-scale jitter).
  """

  enabled: bool = True
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
DEMO_INPUT_SIZE = 128
DEMO_MIN_VISIBLE_AREA = 30
DEMO_TRAIN_BATCH_SIZE = 8
DEMO_EVAL_BATCH_SIZE = 8
DEMO_TRAIN_STEPS = 2000


@exp_factory.register_config_factory('maskrcnn_copypaste_demo')
def maskrcnn_copypaste_demo() -> cfg.ExperimentConfig:
  """Mask R-CNN with Copy-Paste (large-scale jitter) on the built-in digit scenes, on a CPU.

  A slim ResNet-18 FPN from scratch at 128 px. Turn Copy-Paste off, keeping everything else,
  for the baseline: `task.train_data.copy_paste.enabled=false`.

    python train.py --experiment=maskrcnn_copypaste_demo --mode=train_and_eval \
      --model_dir=/tmp/maskrcnn_copypaste_demo
  """
  num_classes = len(digit_scenes.CATEGORY_NAMES) + 1  # Id 0 is background.
  train = DataConfig(
    is_training=True,
    global_batch_size=DEMO_TRAIN_BATCH_SIZE,
    dtype='float32',
    builtin_dataset='digit_scenes',
    copy_paste=CopyPaste(min_visible_area=DEMO_MIN_VISIBLE_AREA),
    parser=mg_maskrcnn.Parser(aug_rand_hflip=True, aug_scale_min=0.1, aug_scale_max=2.0),
  )
  validation = DataConfig(
    is_training=False,
    global_batch_size=DEMO_EVAL_BATCH_SIZE,
    dtype='float32',
    drop_remainder=False,
    builtin_dataset='digit_scenes',
  )
  model = mg_maskrcnn.MaskRCNN(
    num_classes=num_classes,
    input_size=[DEMO_INPUT_SIZE, DEMO_INPUT_SIZE, 3],
    include_mask=True,
    min_level=2,
    max_level=5,
    anchor=mg_maskrcnn.Anchor(anchor_size=4.0),
    backbone=backbones.Backbone(type='resnet', resnet=backbones.ResNet(model_id=18)),
    decoder=decoders.Decoder(type='fpn', fpn=decoders.FPN(num_filters=64)),
  )
  steps_per_epoch = 2000 // DEMO_TRAIN_BATCH_SIZE
  return cfg.ExperimentConfig(
    runtime=runtime.cpu_runtime(),
    task=CopyPasteMaskRCNNTask(
      model=model,
      losses=mg_maskrcnn.Losses(l2_weight_decay=4e-5),
      train_data=train,
      validation_data=validation,
    ),
    trainer=cfg.TrainerConfig(
      train_steps=DEMO_TRAIN_STEPS,
      validation_steps=300 // DEMO_EVAL_BATCH_SIZE,
      validation_interval=steps_per_epoch,
      steps_per_loop=steps_per_epoch,
      summary_interval=steps_per_epoch,
      checkpoint_interval=steps_per_epoch,
      optimizer_config=optimization.OptimizationConfig(
        {
          'optimizer': {'type': 'sgd', 'sgd': {'momentum': 0.9}},
          'learning_rate': {
            'type': 'cosine',
            'cosine': {'initial_learning_rate': 0.02, 'decay_steps': DEMO_TRAIN_STEPS},
          },
          'warmup': {'type': 'linear', 'linear': {'warmup_steps': 100}},
        }
      ),
    ),
    restrictions=RESTRICTIONS,
  )
