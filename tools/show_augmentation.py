r"""Writes PNGs of a detection experiment's augmented training examples, ground truth drawn.

Usage (from the repo root; `python -m tools.show_augmentation` works the same):
  python tools/show_augmentation.py --experiment=maskrcnn_resnetfpn_coco \
    --params_override='task.train_data.input_path=/data/coco/train-*.tfrecord' \
    --output_dir=/tmp/augmented [--num_images=8] [--copy_paste [--min_visible_area=300] \
    [--blend_sigma=0]] [--seed=0]

The examples are those `train.py` would train on: the experiment's training input
(`--config_file` / `--params_override` as in train.py) read and parsed by its task, so flips,
scale jitter and any other augmentation of its parser are applied. `--copy_paste` reads a Mask
R-CNN experiment's training data through the Copy-Paste parser instead
(projects.copy_paste.dataloaders.copy_paste_input), to compare the two on the same data.

Each PNG (`<index>.png` in --output_dir) is the image the model sees, its normalisation undone,
cut to the parser's output size (the padding to the backbone's stride is left out), with the
ground truth the parser produced: boxes and class names, and for Mask R-CNN the mask targets
pasted back into their boxes. RetinaNet's parser outputs no boxes, only anchor targets: its boxes
are decoded back from the positive anchors (so an object no anchor matched is not drawn).
Class names come from `categories.json` beside the training TFRecords, else the ids are shown.
Exit code 2 for bad arguments or configs.
"""

import argparse
import os
import sys
from collections.abc import Iterator, Sequence

if __package__ in (None, ''):
  # Run as a script: make the repo root importable, as `python -m` would.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import tensorflow as tf
from official.core import config_definitions as cfg
from official.core import task_factory
from official.vision.configs import maskrcnn as mg_maskrcnn
from official.vision.configs import retinanet as mg_retinanet
from official.vision.ops import box_ops, mask_ops, preprocess_ops
from official.vision.utils.object_detection import box_list, faster_rcnn_box_coder

from projects import registry_imports  # noqa: F401  (registers our experiments)
from projects.common import experiment_config
from projects.common.detection import drawing, evaluation_report
from projects.copy_paste.dataloaders import copy_paste_input
from projects.copy_paste.ops import copy_paste as cp

# One example's ground truth: boxes [N, 4] as [ymin, xmin, ymax, xmax] pixels, class ids [N],
# and masks [N, height, width] or None.
GroundTruth = tuple[np.ndarray, np.ndarray, np.ndarray | None]


def displayable_image(image: np.ndarray, image_info: np.ndarray) -> np.ndarray:
  """uint8 RGB of a parsed image: Model Garden's normalisation undone, cut to the output size."""
  height, width = (int(v) for v in image_info[1])
  pixels = image[:height, :width].astype(np.float32)
  pixels = pixels * np.array(preprocess_ops.STDDEV_RGB) + np.array(preprocess_ops.MEAN_RGB)
  return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def maskrcnn_ground_truth(labels: dict, index: int, height: int, width: int) -> GroundTruth:
  """Boxes, classes and full-size masks of Mask R-CNN training labels (padding rows dropped)."""
  classes = labels['gt_classes'][index]
  real = classes >= 0
  boxes = labels['gt_boxes'][index][real]
  masks = None
  if 'gt_masks' in labels:
    outer = labels.get('gt_outer_boxes', labels['gt_boxes'])[index][real]
    outer_xywh = box_ops.yxyx_to_xywh(outer)
    crops = labels['gt_masks'][index][real]
    masks = (
      mask_ops.paste_instance_masks(crops, outer_xywh, height, width)
      if len(crops)
      else np.zeros((0, height, width), np.uint8)
    )
  return boxes, classes[real], masks


def retinanet_ground_truth(
  labels: dict, index: int, box_coder_weights: Sequence[float] | None
) -> GroundTruth:
  """Boxes and classes decoded from RetinaNet anchor targets: each distinct box that a positive
  anchor regresses to (the encoding is exact, so the anchors of one object agree)."""
  levels = sorted(labels['anchor_boxes'], key=int)
  anchors = np.concatenate([labels['anchor_boxes'][k].reshape(-1, 4) for k in levels])
  targets = np.concatenate([labels['box_targets'][k][index].reshape(-1, 4) for k in levels])
  classes = np.concatenate([labels['cls_targets'][k][index].reshape(-1) for k in levels])
  positive = labels['box_weights'][index].reshape(-1) > 0
  coder = faster_rcnn_box_coder.FasterRcnnBoxCoder(scale_factors=box_coder_weights)
  decoded = coder.decode(
    tf.constant(targets[positive], tf.float32),
    box_list.BoxList(tf.constant(anchors[positive], tf.float32)),
  )
  boxes = decoded.get().numpy()
  keyed = np.concatenate([np.round(boxes, 1), classes[positive, None].astype(np.float64)], axis=1)
  _, first = np.unique(keyed, axis=0, return_index=True)
  first = np.sort(first)
  return boxes[first], classes[positive][first].astype(np.int64), None


def training_batches(params: cfg.ExperimentConfig, args) -> Iterator[tuple[np.ndarray, dict]]:
  """Batches (images, labels) of the experiment's training input, as numpy."""
  task = task_factory.get_task(params.task)
  if args.copy_paste:
    dataset = copy_paste_input.build_inputs(
      params.task,
      params.task.train_data,
      min_visible_area=args.min_visible_area,
      blend_sigma=args.blend_sigma,
    )
  else:
    dataset = task.build_inputs(params.task.train_data)
  for images, labels in dataset:
    yield images.numpy(), tf.nest.map_structure(lambda t: t.numpy(), labels)


def draw_example(image: np.ndarray, labels: dict, index: int, params, names) -> np.ndarray:
  pixels = displayable_image(image, labels['image_info'][index])
  height, width = pixels.shape[:2]
  if isinstance(params.task.model, mg_maskrcnn.MaskRCNN):
    boxes, classes, masks = maskrcnn_ground_truth(labels, index, height, width)
  else:
    weights = params.task.model.detection_generator.box_coder_weights
    boxes, classes, masks = retinanet_ground_truth(labels, index, weights)
  boxes_xywh = box_ops.yxyx_to_xywh(boxes.reshape(-1, 4))
  return drawing.draw_detections(pixels, boxes_xywh, classes.tolist(), names, masks=masks)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--experiment', required=True, help='registered detection experiment')
  parser.add_argument('--config_file', action='append', default=[], help='YAML, as in train.py')
  parser.add_argument('--params_override', help='overrides, as in train.py')
  parser.add_argument('--output_dir', required=True, help='folder for the PNGs')
  parser.add_argument('--num_images', type=int, default=8, help='examples to draw (default 8)')
  parser.add_argument(
    '--copy_paste', action='store_true', help='read a Mask R-CNN experiment with Copy-Paste'
  )
  parser.add_argument(
    '--min_visible_area',
    type=float,
    default=cp.DEFAULT_MIN_VISIBLE_AREA,
    help='with --copy_paste: output pixels a covered object keeps to stay (default %(default)s)',
  )
  parser.add_argument(
    '--blend_sigma',
    type=float,
    default=0.0,
    help='with --copy_paste: Gaussian smoothing of the paste alpha, 0 for none (default)',
  )
  parser.add_argument(
    '--seed', type=int, help='global TensorFlow seed: fixes the shuffles and augmentation draws'
  )
  args = parser.parse_args(argv)
  if args.num_images < 1:
    parser.error(f'--num_images must be at least 1, got {args.num_images}')
  return args


def main(argv: Sequence[str] | None = None) -> int:
  args = _parse_args(argv)
  if args.seed is not None:
    # The global seed fixes the op seeds of the shuffles and of every random draw.
    tf.random.set_seed(args.seed)
  try:
    params = experiment_config.build_experiment_config(
      args.experiment, args.config_file, args.params_override
    )
    model = params.task.model
    if not isinstance(model, mg_maskrcnn.MaskRCNN | mg_retinanet.RetinaNet):
      raise ValueError(
        f'experiment {args.experiment!r} has a {type(model).__name__} model; '
        'show_augmentation.py draws RetinaNet and Mask R-CNN (detection) experiments'
      )
    if args.copy_paste and not isinstance(model, mg_maskrcnn.MaskRCNN):
      raise ValueError('--copy_paste needs a Mask R-CNN experiment (it pastes instance masks)')
    experiment_config.check_input_paths(params, 'train')
    names = evaluation_report.category_names_beside(params.task.train_data.input_path)
    batches = training_batches(params, args)
    written = 0
    tf.io.gfile.makedirs(args.output_dir)
    for images, labels in batches:
      for index in range(len(images)):
        if written == args.num_images:
          break
        path = os.path.join(args.output_dir, f'{written}.png')
        drawing.write_png(path, draw_example(images[index], labels, index, params, names))
        written += 1
      if written == args.num_images:
        break
  except (experiment_config.ExperimentConfigError, ValueError, OSError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f'{written} augmented training examples of {args.experiment!r} in {args.output_dir}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
