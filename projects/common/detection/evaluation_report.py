"""COCO evaluation report of a detection model: box (and mask) AP by object size and by category.

Each evaluation of a task that uses `DetectionReportMixin` writes
`<model_dir>/eval_report/detection_metrics.json`:

  {"global_step": 1000, "num_images": 500,
   "box":  {"AP": 0.41, "AP50": ..., "AP75": ..., "APs": ..., "APm": ..., "APl": ...,
            "ARmax1": ..., "ARmax10": ..., "ARmax100": ..., "ARs": ..., "ARm": ..., "ARl": ...,
            "per_category": {"person": {"id": 1, "AP": ..., "AP50": ..., "AP75": ...,
                                        "APs": ..., "APm": ..., "APl": ...}, ...}},
   "mask": {...same keys, Mask R-CNN only...}}

Values are pycocotools' (fractions in [0, 1]); null where pycocotools reports -1 (no ground truth
of that size or category). Category names come from the ground truth's `categories`, else from
the dataset's label map (`categories.json` beside the validation TFRecords), else the id.
"""

import contextlib
import copy
import io
import json
import os
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
from absl import logging
from official.vision.evaluation import coco_evaluator
from pycocotools import coco, cocoeval

REPORT_SUBDIR = 'eval_report'
REPORT_FILENAME = 'detection_metrics.json'
LABEL_MAP_FILENAME = 'categories.json'

# `COCOeval.stats` in the order pycocotools' summarize() fills it for boxes and masks; the third
# recall is at `params.maxDets[2]` detections per image (100 unless changed).
_SUMMARY_NAMES = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'ARmax1', 'ARmax10', None)
_SUMMARY_TAIL = ('ARs', 'ARm', 'ARl')
PER_CATEGORY_NAMES = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')
# Model Garden's names for the same per-category figures in evaluation logs (COCOEvaluator).
_LOG_KEYS = (
  'Precision mAP ByCategory',
  'Precision mAP ByCategory@50IoU',
  'Precision mAP ByCategory@75IoU',
  'Precision mAP ByCategory (small)',
  'Precision mAP ByCategory (medium)',
  'Precision mAP ByCategory (large)',
)
_EVAL_KINDS = {'bbox': 'box', 'segm': 'mask'}


def _figure(value: float) -> float | None:
  return None if value < 0 else float(value)


def summary_metrics(coco_eval: cocoeval.COCOeval) -> dict[str, float | None]:
  """AP / AR figures of a summarized COCOeval (box or mask) by their usual names."""
  names = (*_SUMMARY_NAMES[:-1], f'ARmax{coco_eval.params.maxDets[2]}', *_SUMMARY_TAIL)
  return {name: _figure(value) for name, value in zip(names, coco_eval.stats, strict=True)}


def per_category_metrics(coco_eval: cocoeval.COCOeval) -> dict[int, dict[str, float | None]]:
  """AP, AP50, AP75, APs, APm, APl of each category of an accumulated COCOeval.

  Averages `eval['precision']` ([IoU, recall, category, area, max detections]) over the cells
  holding a value, as summarize() does for all categories together, at the largest maxDets.
  """
  params = coco_eval.params
  precision = coco_eval.eval['precision']
  areas = {label: params.areaRngLbl.index(label) for label in ('all', 'small', 'medium', 'large')}
  at_iou = {iou: np.flatnonzero(np.isclose(params.iouThrs, iou)) for iou in (0.5, 0.75)}
  every_iou = np.arange(len(params.iouThrs))
  selections = (
    (every_iou, areas['all']),
    (at_iou[0.5], areas['all']),
    (at_iou[0.75], areas['all']),
    (every_iou, areas['small']),
    (every_iou, areas['medium']),
    (every_iou, areas['large']),
  )
  metrics = {}
  for index, category_id in enumerate(params.catIds):
    values = {}
    for name, (ious, area) in zip(PER_CATEGORY_NAMES, selections, strict=True):
      cells = precision[ious, :, index, area, -1]
      cells = cells[cells > -1]
      values[name] = float(cells.mean()) if cells.size else None
    metrics[int(category_id)] = values
  return metrics


def category_display_names(
  coco_gt: coco.COCO, category_names: Mapping[int, str] | None = None
) -> dict[int, str]:
  """id -> name for every category of `coco_gt`: its own name, else `category_names`, else id."""
  fallback = category_names or {}
  return {
    int(i): str(category.get('name') or fallback.get(int(i), i))
    for i, category in coco_gt.cats.items()
  }


def _kind_report(
  coco_eval: cocoeval.COCOeval, category_names: Mapping[int, str] | None
) -> dict[str, object]:
  names = category_display_names(coco_eval.cocoGt, category_names)
  report: dict[str, object] = summary_metrics(coco_eval)
  per_category = {}
  for category_id, values in per_category_metrics(coco_eval).items():
    name = names.get(category_id, str(category_id))
    if name in per_category:  # Two categories of one name: keep both, told apart by id.
      name = f'{name} (id {category_id})'
    per_category[name] = {'id': category_id, **values}
  report['per_category'] = per_category
  return report


def build_report(
  coco_evals: Mapping[str, cocoeval.COCOeval],
  category_names: Mapping[int, str] | None = None,
  global_step: int | None = None,
) -> dict[str, object]:
  """The report (see the module docstring) of accumulated and summarized COCOevals.

  Args:
    coco_evals: `{'box': ..., 'mask': ...}` (mask optional).
    category_names: id -> name for categories the ground truth names only by id.
    global_step: training step of the evaluated weights.
  """
  if 'box' not in coco_evals:
    raise ValueError(f'coco_evals needs a box evaluation, got kinds {sorted(coco_evals)}')
  report: dict[str, object] = {
    'global_step': global_step,
    'num_images': len(set(coco_evals['box'].params.imgIds)),
  }
  for kind in ('box', 'mask'):
    if kind in coco_evals:
      report[kind] = _kind_report(coco_evals[kind], category_names)
  return report


def evaluate_detections(
  coco_gt: coco.COCO,
  detections: list[dict],
  include_mask: bool = False,
  max_detections: int = 100,
) -> dict[str, cocoeval.COCOeval]:
  """Runs COCO evaluation of results (as `predictions.json` holds them) on every GT image.

  Returns `{'box': ..., 'mask': ...}` ready for `build_report`.
  """
  if not detections:
    raise ValueError('no detections to evaluate (pycocotools cannot load an empty result list)')
  # loadRes adds fields to the results it is given; the caller's list stays as it was.
  coco_dt = coco_gt.loadRes(copy.deepcopy(detections))
  coco_evals = {}
  for iou_type in ('bbox', 'segm') if include_mask else ('bbox',):
    coco_eval = cocoeval.COCOeval(coco_gt, coco_dt, iouType=iou_type)
    coco_eval.params.maxDets = [1, 10, max_detections]
    # pycocotools prints its progress and table; a library call should not.
    with contextlib.redirect_stdout(io.StringIO()):
      coco_eval.evaluate()
      coco_eval.accumulate()
      coco_eval.summarize()
    coco_evals[_EVAL_KINDS[iou_type]] = coco_eval
  return coco_evals


def report_path(model_dir: str) -> str:
  return os.path.join(model_dir, REPORT_SUBDIR, REPORT_FILENAME)


def write_report(report: Mapping[str, object], model_dir: str) -> str:
  """Writes `report` to `<model_dir>/eval_report/detection_metrics.json`; returns the path."""
  path = report_path(model_dir)
  tf.io.gfile.makedirs(os.path.dirname(path))
  # Written whole under another name, then renamed: a reader never sees half a report.
  partial = f'{path}.partial'
  with tf.io.gfile.GFile(partial, 'w') as f:
    f.write(json.dumps(report, indent=2) + '\n')
  tf.io.gfile.rename(partial, path, overwrite=True)
  return path


def load_category_names(path: str) -> dict[int, str]:
  """id -> name from a label map: a COCO `categories` list, a COCO JSON or `{"id": "name"}`."""
  with tf.io.gfile.GFile(path) as f:
    try:
      content = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'label map {path!r} is not valid JSON: {e}') from None
  if isinstance(content, dict) and 'categories' in content:
    content = content['categories']
  try:
    if isinstance(content, list):
      return {int(category['id']): str(category['name']) for category in content}
    if isinstance(content, dict):
      return {int(key): str(name) for key, name in content.items()}
  except (KeyError, TypeError, ValueError):
    pass
  raise ValueError(
    f'label map {path!r}: expected a list of {{"id", "name"}} categories, a COCO JSON with '
    f'"categories", or a mapping of id to name'
  )


def category_names_beside(input_path: str | Sequence[str]) -> dict[int, str]:
  """The label map (`categories.json`) in the folder of the first TFRecord `input_path` names.

  `input_path` is a data config's: comma-separated file patterns or a list of them. Returns {}
  when there is no label map there (or `input_path` matches no file).
  """
  patterns = input_path.split(',') if isinstance(input_path, str) else list(input_path or ())
  for pattern in (p.strip() for p in patterns):
    matches = sorted(tf.io.gfile.glob(pattern)) if pattern else []
    if matches:
      path = os.path.join(os.path.dirname(matches[0]), LABEL_MAP_FILENAME)
      return load_category_names(path) if tf.io.gfile.exists(path) else {}
  return {}


class PerCategoryCOCOEvaluator(coco_evaluator.COCOEvaluator):
  """Model Garden's COCOEvaluator that keeps its COCOevals (`coco_evals`) for the report.

  Model Garden's `per_category_metrics` reads `COCOeval.category_stats`, which only the TF
  object-detection fork of pycocotools sets: with pycocotools from PyPI it adds nothing. Here the
  per-category figures come from `COCOeval.eval['precision']` and reach the evaluation logs (as
  `Precision mAP ByCategory.../<name>`) only when `per_category_metrics` was asked for.

  It also accepts the RetinaNet parser's per-image ground-truth counts, which Model Garden's own
  evaluator rejects under NumPy 2 when the task has no `annotation_file`.
  """

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self._take_over_per_category()

  @classmethod
  def from_evaluator(cls, evaluator: coco_evaluator.COCOEvaluator) -> 'PerCategoryCOCOEvaluator':
    """The same evaluation as `evaluator` (a task's, already holding its ground truth)."""
    adopted = cls.__new__(cls)
    vars(adopted).update(vars(evaluator))
    adopted._take_over_per_category()
    return adopted

  def _take_over_per_category(self) -> None:
    # Model Garden calls `_retrieve_per_category_metrics` only with the option on.
    self._log_per_category = self._per_category_metrics
    self._per_category_metrics = True
    self.coco_evals: dict[str, cocoeval.COCOeval] = {}

  def update_state(self, groundtruths, predictions):
    if groundtruths and 'num_detections' in groundtruths:
      # Model Garden's RetinaNet parser gives each image's count as a [1] vector, which its
      # ground-truth conversion reads with int(): an error since NumPy 2. One number per image.
      counts = tf.nest.map_structure(lambda c: tf.reshape(c, [-1]), groundtruths['num_detections'])
      groundtruths = {**groundtruths, 'num_detections': counts}
    super().update_state(groundtruths, predictions)

  def evaluate(self):
    self.coco_evals = {}
    return super().evaluate()

  def _retrieve_per_category_metrics(self, coco_eval, prefix=''):
    kind = _EVAL_KINDS.get(coco_eval.params.iouType)
    if kind is None or prefix not in ('', 'mask'):
      return {}  # Keypoints: not part of the report.
    self.coco_evals[kind] = coco_eval
    if not self._log_per_category:
      return {}
    names = category_display_names(coco_eval.cocoGt)
    logs = {}
    for category_id, values in per_category_metrics(coco_eval).items():
      for key, name in zip(_LOG_KEYS, PER_CATEGORY_NAMES, strict=True):
        value = values[name]
        logs[f'{prefix} {key}'.strip() + f'/{names[category_id]}'] = np.float32(
          -1.0 if value is None else value
        )
    return logs


class DetectionReportMixin:
  """Adds the JSON report to a Model Garden detection task (RetinaNetTask, MaskRCNNTask).

  Put it first among the bases: `class MyTask(DetectionReportMixin, retinanet.RetinaNetTask)`.
  Every evaluation then also writes `<logging_dir>/eval_report/detection_metrics.json` (train.py
  passes `--model_dir` as the task's logging_dir). The evaluation logs stay the task's own, and a
  RetinaNet task without `annotation_file` evaluates under NumPy 2 (see PerCategoryCOCOEvaluator).
  """

  def build_metrics(self, training: bool = True):
    metrics = super().build_metrics(training)
    evaluator = getattr(self, 'coco_metric', None)
    if (
      not training
      and isinstance(evaluator, coco_evaluator.COCOEvaluator)
      and not isinstance(evaluator, PerCategoryCOCOEvaluator)
    ):
      self.coco_metric = PerCategoryCOCOEvaluator.from_evaluator(evaluator)
    return metrics

  def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
    logs = super().reduce_aggregated_logs(aggregated_logs, global_step)
    evaluator = getattr(self, 'coco_metric', None)
    if not isinstance(evaluator, PerCategoryCOCOEvaluator) or not evaluator.coco_evals:
      return logs
    if not self.logging_dir:
      logging.warning('detection report not written: the task has no logging_dir (model_dir)')
      return logs
    report = build_report(
      evaluator.coco_evals,
      category_names_beside(self.task_config.validation_data.input_path),
      None if global_step is None else int(np.asarray(global_step)),
    )
    logging.info('detection report written to %s', write_report(report, self.logging_dir))
    evaluator.coco_evals = {}
    return logs
