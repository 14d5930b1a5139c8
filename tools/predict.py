r"""Runs a detection model over images; writes COCO results JSON and the images with detections drawn.

Usage (from the repo root; `python -m tools.predict` works the same):
  python tools/predict.py --experiment=retinanet_spinenet_demo --checkpoint=/tmp/retinanet_demo \
    --input='/data/digit_scenes/validation-*.tfrecord' --output_dir=/tmp/predictions \
    [--score_threshold=0.05] [--draw_score_threshold=0.3] [--max_images=20]
  python tools/predict.py --experiment=maskrcnn_spinenet_demo --saved_model=/tmp/export \
    --input=photos/ --output_dir=/tmp/predictions
  python tools/predict.py --experiment=vild_demo --checkpoint=/tmp/vild_demo \
    --categories='seven,nine,two' --input=photos/ --output_dir=/tmp/predictions

The model is the experiment's RetinaNet or Mask R-CNN (`--config_file` / `--params_override` as
in train.py) restored from `--checkpoint` (a train.py model_dir, whose newest checkpoint is
taken, or a checkpoint prefix; it must hold every variable of the model), or the
`serving_default` signature of a SavedModel exported with Model Garden's DetectionModule
(`image_tensor` input: uint8 images [batch, height, width, 3]; outputs with `image_info`).
Images are prepared as Model Garden's detection parser prepares evaluation images: normalised,
resized keeping the aspect ratio to fit `task.model.input_size`, padded; boxes and masks are
mapped back to the original pixels with `image_info`. Detections are those the model's
`detection_generator` keeps (it drops scores below its `pre_nms_score_threshold`, 0.05 by
default: lower it with --params_override to see weaker ones).

A ViLD experiment's checkpoint detects whatever `--categories` names (comma-separated, or a .txt
/ .json file as tools/text_embeddings.py reads them; class ids 1, 2, ... in that order): the
names are embedded with `--text_encoder` (default: the MiniLM text teacher) and `--templates`
(default: ViLD's prompt ensemble), as tools/text_embeddings.py does, and replace the training
category list. Use the text encoder the model was trained with (same embedding size). Without
`--categories` it detects its training categories.

`--input` is a TFRecord file pattern (comma-separated patterns allowed) of Model Garden's
detection tf.Examples (`image/encoded`, `image/source_id`, optional `image/filename`), or a folder
of images (.jpg .jpeg .png .bmp .gif, searched recursively). Image ids: a record's numeric
`image/source_id`, else the hash of the encoded image Model Garden's decoder gives it; in a
folder the file names' numbers when every name is a number (as COCO's `000000397133.jpg`), else
1, 2, ... in path order.

Written to --output_dir:
  predictions.json  COCO results: [{image_id, category_id, bbox [x, y, w, h] in original pixels,
                    score, segmentation (Mask R-CNN: RLE)}], detections >= --score_threshold;
                    `pycocotools.coco.COCO.loadRes` reads it.
  images.json       the images read, as COCO `images` entries: [{id, file_name, height, width}].
  drawn/<name>.png  each image with its detections >= --draw_score_threshold drawn: boxes,
                    translucent masks, class names (from --label_map, else --categories or a
                    ViLD model's category names file, else `categories.json` beside the input
                    TFRecords or the experiment's validation TFRecords, else the class id) and
                    scores.
Exit code 2 for bad arguments, inputs or checkpoints; 1 when some images could not be decoded
(the others are written).
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

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
from official.vision.evaluation import coco_utils
from official.vision.serving import detection

from projects import registry_imports  # noqa: F401  (registers every experiment)
from projects.common import experiment_config, video_features
from projects.common.detection import drawing, evaluation_report
from projects.vild.configs import vild as vild_configs
from projects.vild.modeling import text_encoder
from projects.vild.tasks import vild as vild_task
from tools import export_saved_model, text_embeddings
from tools.export_saved_model import add_experiment_arguments

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')
SERVING_SIGNATURE = 'serving_default'
DETECTION_OUTPUTS = (
  'detection_boxes',
  'detection_scores',
  'detection_classes',
  'num_detections',
  'image_info',
)
PREDICTIONS_FILE = 'predictions.json'
IMAGES_FILE = 'images.json'
DRAWN_DIR = 'drawn'
# Model Garden's decoder hashes the encoded image into this range when a record has no source id
# (22 bits: ids pass through float32 in its evaluation).
_SOURCE_ID_BUCKETS = 2**22 - 1

# Detection outputs of one image (batch of 1) as numpy arrays.
Outputs = dict[str, np.ndarray]
Detector = Callable[[np.ndarray], Outputs]


class InputError(ValueError):
  """`--input`, `--saved_model` or the experiment is unusable; nothing has been computed."""


@dataclasses.dataclass(frozen=True)
class InputImage:
  """One image to predict: COCO id, name (file or record), encoded bytes, drawing's path."""

  image_id: int
  name: str
  encoded: bytes
  drawn_name: str


def folder_images(folder: str) -> Iterator[InputImage]:
  """Images under `folder` (recursively), sorted by relative path, with their ids.

  The folder is listed now (an empty one is an InputError), each file read when its turn comes.
  """
  paths = sorted(
    Path(os.path.relpath(os.path.join(root, name), folder)).as_posix()
    for root, _, names in os.walk(folder, followlinks=True)
    for name in names
    if name.lower().endswith(IMAGE_EXTENSIONS)
  )
  if not paths:
    raise InputError(f'{folder}: no image file ({", ".join(IMAGE_EXTENSIONS)}) found')
  stems = [Path(path).stem for path in paths]
  numbered = all(stem.isdecimal() for stem in stems) and len({int(s) for s in stems}) == len(stems)
  ids = [int(stem) for stem in stems] if numbered else range(1, len(paths) + 1)
  drawn_names = [Path(path).with_suffix('.png').as_posix() for path in paths]
  if len(set(drawn_names)) < len(drawn_names):
    # `a.jpg` beside `a.png`: keep each whole name so that no drawing overwrites another.
    drawn_names = [f'{path}.png' for path in paths]
  return _read_files(folder, list(zip(ids, paths, drawn_names, strict=True)))


def _read_files(folder: str, listing: list[tuple[int, str, str]]) -> Iterator[InputImage]:
  for image_id, path, drawn_name in listing:
    with open(os.path.join(folder, path), 'rb') as f:
      yield InputImage(image_id, path, f.read(), drawn_name)


def tfrecord_files(input_pattern: str) -> list[str]:
  files = []
  for pattern in (p.strip() for p in input_pattern.split(',')):
    matches = sorted(tf.io.gfile.glob(pattern)) if pattern else []
    if not matches:
      raise InputError(f'--input {pattern!r} is not a folder or a TFRecord pattern matching a file')
    files.extend(matches)
  # A pattern that also matches the label map or a summary beside the shards (`DIR/*`) fails here,
  # naming the file, rather than with a traceback after the model is built.
  for path in files:
    if tf.io.gfile.isdir(path):
      raise InputError(
        f'--input: {path} is a folder; give the folder itself for its images, or a pattern of '
        f'its TFRecord files (e.g. {os.path.join(path, "*")})'
      )
    try:
      for _ in tf.data.TFRecordDataset(path).take(1):
        pass
    except tf.errors.DataLossError:
      raise InputError(
        f'--input: {path} is not a TFRecord file; match only the shards (e.g. DIR/*.tfrecord)'
      ) from None
  return files


def tfrecord_images(files: Sequence[str]) -> Iterator[InputImage]:
  """Images of detection tf.Examples, ids from `image/source_id` as Model Garden reads them."""
  features = {
    'image/encoded': tf.io.FixedLenFeature((), tf.string),
    'image/source_id': tf.io.FixedLenFeature((), tf.string, default_value=''),
    'image/filename': tf.io.FixedLenFeature((), tf.string, default_value=''),
  }
  for path in files:
    for index, record in enumerate(tf.data.TFRecordDataset(path)):
      example = tf.io.parse_single_example(record, features)
      encoded = example['image/encoded']
      source_id = example['image/source_id'].numpy().decode('utf-8')
      if source_id.isdecimal():
        image_id = int(source_id)
      else:
        image_id = int(tf.strings.to_hash_bucket_fast(encoded, _SOURCE_ID_BUCKETS))
      filename = example['image/filename'].numpy().decode('utf-8')
      name = filename or f'{os.path.basename(path)}:{index}'
      yield InputImage(image_id, name, encoded.numpy(), f'{image_id}.png')


def check_detection_experiment(params: cfg.ExperimentConfig, experiment: str) -> None:
  model = params.task.model
  if not isinstance(model, mg_retinanet.RetinaNet | mg_maskrcnn.MaskRCNN):
    raise InputError(
      f'experiment {experiment!r} has a {type(model).__name__} model; predict.py runs '
      'RetinaNet and Mask R-CNN (detection) experiments'
    )


def _numpy(outputs: dict[str, tf.Tensor]) -> Outputs:
  return {key: value.numpy() for key, value in outputs.items()}


@dataclasses.dataclass(frozen=True)
class NamedCategories:
  """Categories named at inference time for a ViLD model: row i is class id i + 1."""

  names: list[str]
  embeddings: np.ndarray  # [len(names), D] text embeddings


def named_categories(
  params: cfg.ExperimentConfig, categories: str, templates: str, encoder_spec: str
) -> NamedCategories:
  """Embeds `--categories` with the text encoder and templates, as tools/text_embeddings.py does."""
  if not isinstance(params.task.model, vild_configs.ViLDModel):
    raise InputError(
      f'--categories needs a ViLD experiment (a text-embedding classifier); this one has a '
      f'{type(params.task.model).__name__} model with fixed classes'
    )
  names = text_embeddings.read_category_names(categories)
  template_list = text_embeddings.read_templates(templates)
  text_encoder.fill_templates(names[0], template_list)  # fails early on a malformed template
  encoder = text_encoder.load_text_encoder(encoder_spec)
  return NamedCategories(names, text_encoder.embed_categories(encoder, names, template_list))


def checkpoint_detector(
  params: cfg.ExperimentConfig, checkpoint: str, categories: NamedCategories | None = None
) -> tuple[Detector, str]:
  """The experiment's model restored from `checkpoint` behind Model Garden's detection serving.

  DetectionModule prepares images as the detection parser prepares evaluation images, so a
  checkpoint here and a SavedModel exported from it give the same detections. A ViLD model
  detects `categories` (a name it was trained on stays a base category for ViLD-ensemble).
  Returns the detector and which checkpoint (and weights) it read.
  """
  task = task_factory.get_task(params.task)
  model = task.build_model()
  if categories is not None:
    trained = task.categories
    trained_base = {
      n for n, base in zip(trained.names, trained.base_class_mask, strict=True) if base
    }
    # Before tracing: the traced function holds the category embeddings as constants.
    model.set_categories(categories.embeddings, [name in trained_base for name in categories.names])
  module = detection.DetectionModule(
    params, model=model, batch_size=1, input_image_size=list(params.task.model.input_size[:2])
  )
  # Tracing before the restore creates every variable, so that the restore checks all of them.
  serve = module.inference_from_image_tensors.get_concrete_function(
    tf.TensorSpec([1, None, None, 3], tf.uint8)
  )
  # The weights evaluation scores: a run folder's best checkpoint, moving averages where kept.
  path = video_features.restore_evaluated_model(task, params, model, checkpoint, whole_model=True)
  return lambda image: _numpy(serve(tf.constant(image[None]))), path


def saved_model_detector(export_dir: str) -> Detector:
  """The detector of a SavedModel's `serving_default` signature (Model Garden detection export)."""
  loaded, signature, input_name, _ = export_saved_model.load_signature(
    export_dir,
    SERVING_SIGNATURE,
    tf.uint8,
    4,
    'uint8 images [batch, height, width, 3] (Model Garden detection export with input_type '
    'image_tensor)',
  )
  missing = [key for key in DETECTION_OUTPUTS if key not in signature.structured_outputs]
  if missing:
    raise InputError(
      f'SavedModel {export_dir!r}: {SERVING_SIGNATURE!r} lacks outputs {missing} '
      f'(has {sorted(signature.structured_outputs)})'
    )

  def detect(image: np.ndarray) -> Outputs:
    # `loaded` stays referenced here: its variables live as long as the signature is used.
    return _numpy(loaded.signatures[SERVING_SIGNATURE](**{input_name: tf.constant(image[None])}))

  return detect


def coco_results(outputs: Outputs, image_id: int, score_threshold: float) -> list[dict]:
  """One image's detections >= `score_threshold` as COCO results, in original image pixels."""
  count = int(outputs['num_detections'][0])
  scores = outputs['detection_scores'][0, :count]
  keep = np.flatnonzero(scores >= score_threshold)
  if not keep.size:
    return []
  image_info = outputs['image_info'].astype(np.float32)
  height, width = image_info[0, 0]
  # Model Garden's evaluator maps boxes back the same way: divide by the resize scale.
  scale = np.tile(image_info[0, 2], 2)
  predictions = {
    'source_id': [np.array([image_id])],
    'detection_classes': [outputs['detection_classes'][:, keep]],
    'detection_scores': [outputs['detection_scores'][:, keep]],
    'image_info': [image_info],
  }
  for key in ('detection_boxes', 'detection_outer_boxes'):
    if key in outputs:
      boxes = outputs[key][0, keep].astype(np.float32) / scale
      predictions[key] = [np.clip(boxes, 0, [height, width, height, width])[None]]
  if 'detection_masks' in outputs:
    predictions['detection_masks'] = [outputs['detection_masks'][:, keep]]
  results = []
  for annotation in coco_utils.convert_predictions_to_coco_annotations(predictions):
    result = {
      'image_id': int(annotation['image_id']),
      'category_id': int(annotation['category_id']),
      'bbox': [round(float(v), 2) for v in annotation['bbox']],
      'score': round(float(annotation['score']), 5),
    }
    if 'segmentation' in annotation:
      rle = annotation['segmentation']
      result['segmentation'] = {'size': list(rle['size']), 'counts': rle['counts'].decode('ascii')}
    results.append(result)
  return results


def category_names(
  label_map: str | None, input_path: str, params: cfg.ExperimentConfig
) -> tuple[dict[int, str], str]:
  """id -> name for the drawings and where it came from ('' when there is no label map)."""
  if label_map:
    return evaluation_report.load_category_names(label_map), label_map
  if isinstance(params.task.model, vild_configs.ViLDModel):
    names_file = text_encoder.category_names_file(vild_task.text_embeddings_file(params.task))
    return dict(enumerate(vild_task.load_categories(params.task).names, start=1)), names_file
  for where in (input_path, params.task.validation_data.input_path):
    if where and not os.path.isdir(where):
      names = evaluation_report.category_names_beside(where)
      if names:
        return names, f'{evaluation_report.LABEL_MAP_FILENAME} beside {where}'
  return {}, ''


def _write_json(path: str, value) -> None:
  partial = f'{path}.partial'
  with tf.io.gfile.GFile(partial, 'w') as f:
    json.dump(value, f)
  tf.io.gfile.rename(partial, path, overwrite=True)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    description=__doc__.split('\n', 1)[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  add_experiment_arguments(parser)
  weights = parser.add_mutually_exclusive_group(required=True)
  weights.add_argument('--checkpoint', help='train.py model_dir (newest checkpoint) or a prefix')
  weights.add_argument('--saved_model', help="SavedModel of Model Garden's detection export")
  parser.add_argument('--input', required=True, help='TFRecord pattern(s) or a folder of images')
  parser.add_argument('--output_dir', required=True, help='folder for the JSON files and PNGs')
  parser.add_argument(
    '--score_threshold',
    type=float,
    default=0.05,
    help='lowest score written to predictions.json (default 0.05; COCO AP wants weak ones too)',
  )
  parser.add_argument(
    '--draw_score_threshold',
    type=float,
    default=0.3,
    help='lowest score drawn on the PNGs (default 0.3; never below --score_threshold)',
  )
  parser.add_argument(
    '--draw_scale',
    type=int,
    default=1,
    help='enlarge the PNGs this many times so labels fit small images (e.g. 4 for the 128 px '
    'demo scenes); predictions.json keeps image coordinates',
  )
  parser.add_argument('--max_images', type=int, help='stop after this many images')
  parser.add_argument('--label_map', help='categories.json or label_map.json naming the classes')
  parser.add_argument(
    '--categories', help='ViLD: names to detect, comma-separated or a .txt / .json file'
  )
  parser.add_argument(
    '--templates',
    default='vild',
    help='ViLD: prompt templates for --categories (vild, simple, .txt)',
  )
  parser.add_argument(
    '--text_encoder',
    default=text_encoder.MINILM,
    help='ViLD: text encoder for --categories (minilm, a SavedModel folder or .keras)',
  )
  args = parser.parse_args(argv)
  if args.categories and args.saved_model:
    parser.error('--categories needs --checkpoint: a SavedModel has its categories built in')
  if args.draw_scale < 1:
    parser.error(f'--draw_scale must be at least 1, got {args.draw_scale}')
  if args.max_images is not None and args.max_images < 1:
    parser.error(f'--max_images must be at least 1, got {args.max_images}')
  for name in ('score_threshold', 'draw_score_threshold'):
    if not 0 <= getattr(args, name) <= 1:
      parser.error(f'--{name} must be in [0, 1], got {getattr(args, name)}')
  return args


def main(argv: Sequence[str] | None = None) -> int:
  args = _parse_args(argv)
  start_time = time.time()
  try:
    params = experiment_config.build_experiment_config(
      args.experiment, args.config_file, args.params_override
    )
    check_detection_experiment(params, args.experiment)
    images = (
      folder_images(args.input)
      if os.path.isdir(args.input)
      else tfrecord_images(tfrecord_files(args.input))
    )
    names, names_source = category_names(args.label_map, args.input, params)
    categories = None
    if args.categories:
      categories = named_categories(params, args.categories, args.templates, args.text_encoder)
      names = dict(enumerate(categories.names, start=1))
      names_source = f'--categories ({len(names)} named)'
    if args.checkpoint:
      detect, source = checkpoint_detector(params, args.checkpoint, categories)
      print(f'checkpoint: {source}')
    else:
      detect, source = saved_model_detector(args.saved_model), args.saved_model
  except (
    experiment_config.ExperimentConfigError,
    video_features.CheckpointError,
    InputError,
    ValueError,
    OSError,
    ImportError,
  ) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f'class names: {names_source or "none found; drawing class ids"}')

  draw_threshold = max(args.draw_score_threshold, args.score_threshold)
  results, image_entries, failures = [], [], []
  for image in images:
    if args.max_images is not None and len(image_entries) >= args.max_images:
      break
    try:
      pixels = tf.io.decode_image(image.encoded, channels=3, expand_animations=False).numpy()
    except tf.errors.InvalidArgumentError as e:
      failures.append(f'{image.name}: not a decodable image ({e.message.splitlines()[0]})')
      continue
    detections = coco_results(detect(pixels), image.image_id, args.score_threshold)
    results.extend(detections)
    height, width = pixels.shape[:2]
    image_entries.append(
      {'id': image.image_id, 'file_name': image.name, 'height': height, 'width': width}
    )
    path = os.path.join(args.output_dir, DRAWN_DIR, image.drawn_name)
    tf.io.gfile.makedirs(os.path.dirname(path))
    shown = [d for d in detections if d['score'] >= draw_threshold]
    drawing.write_png(path, drawing.draw_coco_annotations(pixels, shown, names, args.draw_scale))

  for failure in failures:
    print(f'  failed: {failure}', file=sys.stderr)
  if not image_entries:
    print(f'error: no image of {args.input!r} could be read', file=sys.stderr)
    return 1
  _write_json(os.path.join(args.output_dir, PREDICTIONS_FILE), results)
  _write_json(os.path.join(args.output_dir, IMAGES_FILE), image_entries)
  print(
    f'{len(image_entries)} images, {len(results)} detections >= {args.score_threshold} from '
    f'{source}: {PREDICTIONS_FILE}, {IMAGES_FILE} and {DRAWN_DIR}/ in {args.output_dir} '
    f'({time.time() - start_time:.1f} s)'
  )
  if not results:
    print(
      f'note: no detection scored >= {args.score_threshold}; predictions.json is an empty list, '
      "which pycocotools' loadRes cannot read"
    )
  if failures:
    print(f'error: {len(failures)} image(s) could not be decoded', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
