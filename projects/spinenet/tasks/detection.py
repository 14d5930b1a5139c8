"""RetinaNet and Mask R-CNN tasks of the SpineNet experiments: Model Garden's, plus the COCO
evaluation report and checks, before any example is parsed, that `num_classes` and the parser's
`max_num_instances` cover the data."""

import functools
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


class InputSample:
  """What the start-up checks read of a detection input: its files, globbed once, and the class
  ids of its first batch, read once on first use."""

  def __init__(self, data: cfg.DataConfig):
    self.data = data
    # File-based inputs only: TFDS or an unset path have none to read.
    if data.tfds_name or not isinstance(data.input_path, str | list | tuple):
      self.files = []
    else:
      self.files = input_errors.input_files(data.input_path)

  def beside_files(self, filename: str) -> str:
    """`filename` in the folder of the first file, where the converter writes its own files."""
    return os.path.join(os.path.dirname(self.files[0]), filename)

  @functools.cached_property
  def first_batch_class_ids(self) -> list[tuple[str, np.ndarray]]:
    """(file, class ids) of each example of the first batch in file order; [] if not readable."""
    data = self.data
    if data.decoder.type != 'simple_decoder' or data.file_type != 'tfrecord':
      return []
    feature = {CLASS_LABEL_KEY: tf.io.VarLenFeature(tf.int64)}
    batch_size = max(1, data.global_batch_size)
    examples = []
    for path in self.files:
      for record in tf.data.TFRecordDataset(path).take(batch_size - len(examples)):
        ids = tf.io.parse_single_example(record, feature)[CLASS_LABEL_KEY].values.numpy()
        examples.append((path, ids))
      if len(examples) == batch_size:
        break
    return examples

  def first_batch_largest(self, value) -> tuple[int, str] | None:
    """(largest `value(ids)` over the first batch, the file it came from, noted as such)."""
    examples = self.first_batch_class_ids
    largest, largest_file = None, ''
    for path, ids in examples:
      found = value(ids)
      if found is not None and (largest is None or found > largest):
        largest, largest_file = found, path
    if largest is None:
      return None
    return largest, f'{largest_file} (read from the first {len(examples)} examples of the input)'


def largest_class_id(sample: InputSample) -> tuple[int, str] | None:
  """(largest class id, the file it was read from) of a detection input, or None if unknown.

  The label map (`categories.json`, which tools/coco_to_tfrecord.py writes beside the shards)
  lists every id; without one, the ids of the first batch of examples in file order are read.
  """
  if not sample.files:
    return None
  label_map = sample.beside_files(evaluation_report.LABEL_MAP_FILENAME)
  if tf.io.gfile.exists(label_map):
    names = evaluation_report.load_category_names(label_map)
    return (max(names), label_map) if names else None
  return sample.first_batch_largest(lambda ids: int(ids.max()) if ids.size else None)


def largest_instance_count(sample: InputSample) -> tuple[int, str] | None:
  """(most objects in one example, where that was read) of a detection input, or None if unknown.

  The converter's `summary.json` beside the shards counts every image's annotations; without
  one, the examples of the first batch in file order are counted.
  """
  if not sample.files:
    return None
  summary_path = sample.beside_files(sharded_conversion.SUMMARY_FILE)
  if tf.io.gfile.exists(summary_path):
    with tf.io.gfile.GFile(summary_path) as f:
      count = json.load(f).get(coco_conversion.MAX_ANNOTATIONS_PER_IMAGE_KEY)
    if count is not None:
      return int(count), summary_path
  return sample.first_batch_largest(lambda ids: int(ids.size))


def _split_key(data: cfg.DataConfig) -> str:
  return 'task.train_data' if data.is_training else 'task.validation_data'


def check_num_classes(num_classes: int, sample: InputSample) -> None:
  """Raises ConfigDataMismatchError if the input holds a class id a `num_classes` detector lacks.

  Model Garden's detectors output ids 0..num_classes-1 and keep 0 for background, so COCO's ids
  1..90 need num_classes=91; a larger id would be trained as a wrong class without any error.
  """
  found = largest_class_id(sample)
  if found is None or found[0] < num_classes:
    return
  largest, where = found
  raise input_errors.ConfigDataMismatchError(
    f'task.model.num_classes={num_classes} is too small for {_split_key(sample.data)}: largest '
    f'class id {largest} in {where}; ids run 0..num_classes-1 with 0 for background, so set '
    f'task.model.num_classes={largest + 1} (or more)'
  )


def check_max_num_instances(sample: InputSample) -> None:
  """Raises ConfigDataMismatchError if an image holds more objects than the parser keeps.

  Model Garden's parsers clip every image to its first `max_num_instances` objects without a
  word, so an image beyond the limit would train with objects missing.
  """
  limit = sample.data.parser.max_num_instances
  found = largest_instance_count(sample)
  if found is None or found[0] <= limit:
    return
  count, where = found
  key = f'{_split_key(sample.data)}.parser.max_num_instances'
  raise input_errors.ConfigDataMismatchError(
    f'{key}={limit} is too small: an image holds {count} annotated objects in {where}; the '
    f'parser would keep only its first {limit}, so set {key}={count} (or more)'
  )


def check_inputs(num_classes: int, data: cfg.DataConfig) -> None:
  """Both checks above on one read of `data`'s files."""
  sample = InputSample(data)
  check_num_classes(num_classes, sample)
  check_max_num_instances(sample)


class InputChecksMixin:
  """Checks every input with `check_inputs` before Model Garden's task builds it."""

  def build_inputs(self, params: cfg.DataConfig, input_context=None, **kwargs):
    check_inputs(self.task_config.model.num_classes, params)
    return super().build_inputs(params, input_context, **kwargs)


@task_factory.register_task_cls(detection_configs.RetinaNetTask)
class RetinaNetTask(
  evaluation_report.DetectionReportMixin, InputChecksMixin, retinanet.RetinaNetTask
):
  """Model Garden's RetinaNet task with the evaluation report and the input checks."""


@task_factory.register_task_cls(detection_configs.MaskRCNNTask)
class MaskRCNNTask(evaluation_report.DetectionReportMixin, InputChecksMixin, maskrcnn.MaskRCNNTask):
  """Model Garden's Mask R-CNN task with the evaluation report and the input checks."""
