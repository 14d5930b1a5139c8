"""RetinaNet and Mask R-CNN tasks of the SpineNet experiments: Model Garden's, plus the COCO
evaluation report and a check, before any example is parsed, that `num_classes` covers the data."""

import os

import tensorflow as tf
from official.core import config_definitions as cfg
from official.core import task_factory
from official.vision.tasks import maskrcnn, retinanet

from projects.common import input_errors
from projects.common.detection import evaluation_report
from projects.spinenet.configs import detection as detection_configs
from projects.spinenet.modeling import spinenet_scaled  # noqa: F401  (registers the backbone)

# Model Garden's simple decoder reads the class ids from this key.
CLASS_LABEL_KEY = 'image/object/class/label'


def largest_class_id(data: cfg.DataConfig) -> tuple[int, str] | None:
  """(largest class id, the file it was read from) of a detection input, or None if unknown.

  The label map (`categories.json`, which tools/coco_to_tfrecord.py writes beside the shards)
  lists every id; without one, the ids of the first batch of examples in file order are read.
  """
  if data.tfds_name or not isinstance(data.input_path, str | list | tuple):
    return None
  files = input_errors.input_files(data.input_path)
  if not files:
    return None
  label_map = os.path.join(os.path.dirname(files[0]), evaluation_report.LABEL_MAP_FILENAME)
  if tf.io.gfile.exists(label_map):
    names = evaluation_report.load_category_names(label_map)
    return (max(names), label_map) if names else None
  if data.decoder.type != 'simple_decoder' or data.file_type != 'tfrecord':
    return None
  feature = {CLASS_LABEL_KEY: tf.io.VarLenFeature(tf.int64)}
  batch_size = max(1, data.global_batch_size)
  largest, largest_file, num_read = None, '', 0
  for path in files:
    for record in tf.data.TFRecordDataset(path).take(batch_size - num_read):
      num_read += 1
      ids = tf.io.parse_single_example(record, feature)[CLASS_LABEL_KEY].values.numpy()
      if ids.size and (largest is None or ids.max() > largest):
        largest, largest_file = int(ids.max()), path
    if num_read == batch_size:
      break
  if largest is None:
    return None
  return largest, f'{largest_file} (read from the first {num_read} examples of the input)'


def check_num_classes(num_classes: int, data: cfg.DataConfig) -> None:
  """Raises ConfigDataMismatchError if `data` holds a class id a `num_classes` detector lacks.

  Model Garden's detectors output ids 0..num_classes-1 and keep 0 for background, so COCO's ids
  1..90 need num_classes=91; a larger id would be trained as a wrong class without any error.
  """
  found = largest_class_id(data)
  if found is None or found[0] < num_classes:
    return
  largest, where = found
  split = 'task.train_data' if data.is_training else 'task.validation_data'
  raise input_errors.ConfigDataMismatchError(
    f'task.model.num_classes={num_classes} is too small for {split}: largest class id '
    f'{largest} in {where}; ids run 0..num_classes-1 with 0 for background, so set '
    f'task.model.num_classes={largest + 1} (or more)'
  )


class NumClassesCheckMixin:
  """Checks every input with `check_num_classes` before Model Garden's task builds it."""

  def build_inputs(self, params: cfg.DataConfig, input_context=None, **kwargs):
    check_num_classes(self.task_config.model.num_classes, params)
    return super().build_inputs(params, input_context, **kwargs)


@task_factory.register_task_cls(detection_configs.RetinaNetTask)
class RetinaNetTask(
  evaluation_report.DetectionReportMixin, NumClassesCheckMixin, retinanet.RetinaNetTask
):
  """Model Garden's RetinaNet task with the evaluation report and the class-id check."""


@task_factory.register_task_cls(detection_configs.MaskRCNNTask)
class MaskRCNNTask(
  evaluation_report.DetectionReportMixin, NumClassesCheckMixin, maskrcnn.MaskRCNNTask
):
  """Model Garden's Mask R-CNN task with the evaluation report and the class-id check."""
