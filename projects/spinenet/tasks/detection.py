"""RetinaNet and Mask R-CNN tasks of the SpineNet experiments: Model Garden's, plus the COCO
evaluation report and checks, before any example is parsed, that `num_classes` and the parser's
`max_num_instances` cover the data."""

import json
import os

import numpy as np
import tensorflow as tf
from official.core import config_definitions as cfg
from official.core import task_factory
from official.vision.tasks import maskrcnn, retinanet

from projects.common import input_errors, sharded_conversion
from projects.common.detection import coco_conversion, evaluation_report
from projects.spinenet.configs import detection as detection_configs
from projects.spinenet.modeling import spinenet_scaled  # noqa: F401  (registers the backbone)

# Model Garden's simple decoder reads the class ids from this key.
CLASS_LABEL_KEY = 'image/object/class/label'


def _detection_files(data: cfg.DataConfig) -> list[str]:
  """The files of a file-based detection input; empty for TFDS or an unset path."""
  if data.tfds_name or not isinstance(data.input_path, str | list | tuple):
    return []
  return input_errors.input_files(data.input_path)


def _first_batch_class_ids(data: cfg.DataConfig, files: list[str]) -> list[tuple[str, np.ndarray]]:
  """(file, class ids) of each example of the first batch in file order; [] if not readable."""
  if data.decoder.type != 'simple_decoder' or data.file_type != 'tfrecord':
    return []
  feature = {CLASS_LABEL_KEY: tf.io.VarLenFeature(tf.int64)}
  batch_size = max(1, data.global_batch_size)
  examples = []
  for path in files:
    for record in tf.data.TFRecordDataset(path).take(batch_size - len(examples)):
      ids = tf.io.parse_single_example(record, feature)[CLASS_LABEL_KEY].values.numpy()
      examples.append((path, ids))
    if len(examples) == batch_size:
      break
  return examples


def _first_batch_largest(examples: list[tuple[str, np.ndarray]], value) -> tuple[int, str] | None:
  """(largest `value(ids)` over `examples`, the file it came from, noted as a first-batch read)."""
  largest, largest_file = None, ''
  for path, ids in examples:
    found = value(ids)
    if found is not None and (largest is None or found > largest):
      largest, largest_file = found, path
  if largest is None:
    return None
  return largest, f'{largest_file} (read from the first {len(examples)} examples of the input)'


def largest_class_id(data: cfg.DataConfig) -> tuple[int, str] | None:
  """(largest class id, the file it was read from) of a detection input, or None if unknown.

  The label map (`categories.json`, which tools/coco_to_tfrecord.py writes beside the shards)
  lists every id; without one, the ids of the first batch of examples in file order are read.
  """
  files = _detection_files(data)
  if not files:
    return None
  label_map = os.path.join(os.path.dirname(files[0]), evaluation_report.LABEL_MAP_FILENAME)
  if tf.io.gfile.exists(label_map):
    names = evaluation_report.load_category_names(label_map)
    return (max(names), label_map) if names else None
  return _first_batch_largest(
    _first_batch_class_ids(data, files), lambda ids: int(ids.max()) if ids.size else None
  )


def largest_instance_count(data: cfg.DataConfig) -> tuple[int, str] | None:
  """(most objects in one example, where that was read) of a detection input, or None if unknown.

  The converter's `summary.json` beside the shards counts every image's annotations; without
  one, the examples of the first batch in file order are counted.
  """
  files = _detection_files(data)
  if not files:
    return None
  summary_path = os.path.join(os.path.dirname(files[0]), sharded_conversion.SUMMARY_FILE)
  if tf.io.gfile.exists(summary_path):
    with tf.io.gfile.GFile(summary_path) as f:
      count = json.load(f).get(coco_conversion.MAX_ANNOTATIONS_PER_IMAGE_KEY)
    if count is not None:
      return int(count), summary_path
  return _first_batch_largest(_first_batch_class_ids(data, files), lambda ids: int(ids.size))


def _split_key(data: cfg.DataConfig) -> str:
  return 'task.train_data' if data.is_training else 'task.validation_data'


def check_num_classes(num_classes: int, data: cfg.DataConfig) -> None:
  """Raises ConfigDataMismatchError if `data` holds a class id a `num_classes` detector lacks.

  Model Garden's detectors output ids 0..num_classes-1 and keep 0 for background, so COCO's ids
  1..90 need num_classes=91; a larger id would be trained as a wrong class without any error.
  """
  found = largest_class_id(data)
  if found is None or found[0] < num_classes:
    return
  largest, where = found
  raise input_errors.ConfigDataMismatchError(
    f'task.model.num_classes={num_classes} is too small for {_split_key(data)}: largest class id '
    f'{largest} in {where}; ids run 0..num_classes-1 with 0 for background, so set '
    f'task.model.num_classes={largest + 1} (or more)'
  )


def check_max_num_instances(data: cfg.DataConfig) -> None:
  """Raises ConfigDataMismatchError if an image holds more objects than the parser keeps.

  Model Garden's parsers clip every image to its first `max_num_instances` objects without a
  word, so an image beyond the limit would train with objects missing.
  """
  limit = data.parser.max_num_instances
  found = largest_instance_count(data)
  if found is None or found[0] <= limit:
    return
  count, where = found
  key = f'{_split_key(data)}.parser.max_num_instances'
  raise input_errors.ConfigDataMismatchError(
    f'{key}={limit} is too small: an image holds {count} annotated objects in {where}; the '
    f'parser would keep only its first {limit}, so set {key}={count} (or more)'
  )


class InputChecksMixin:
  """Checks every input with `check_num_classes` and `check_max_num_instances` before Model
  Garden's task builds it."""

  def build_inputs(self, params: cfg.DataConfig, input_context=None, **kwargs):
    check_num_classes(self.task_config.model.num_classes, params)
    check_max_num_instances(params)
    return super().build_inputs(params, input_context, **kwargs)


@task_factory.register_task_cls(detection_configs.RetinaNetTask)
class RetinaNetTask(
  evaluation_report.DetectionReportMixin, InputChecksMixin, retinanet.RetinaNetTask
):
  """Model Garden's RetinaNet task with the evaluation report and the input checks."""


@task_factory.register_task_cls(detection_configs.MaskRCNNTask)
class MaskRCNNTask(evaluation_report.DetectionReportMixin, InputChecksMixin, maskrcnn.MaskRCNNTask):
  """Model Garden's Mask R-CNN task with the evaluation report and the input checks."""
