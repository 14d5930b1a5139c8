"""Open-vocabulary detection AP by category group: LVIS rare / common / frequent, and base / novel.

Two ways ViLD-style papers report how a detector does on categories it never trained on:
- LVIS: `lvis_ap_by_frequency` runs the LVIS API's federated evaluation, whose AP_r, AP_c, AP_f
  average the per-category AP over the rare, common and frequent groups (rare are ViLD's novel).
- COCO-style splits (e.g. 48 base / 17 novel COCO categories): `base_novel_ap` takes pycocotools'
  per-category AP (`evaluation_report.per_category_metrics`) and averages it over each group.

Both return plain dicts; `add_to_report_file` puts them under `"open_vocabulary"` in the
detection report (`evaluation_report.report_path`):

  {"lvis": {"box": {"AP": ..., "APr": ..., "APc": ..., "APf": ..., ...}, "mask": {...}},
   "base_novel": {"box": {"base": {"AP": ..., "AP50": ..., ..., "num_categories": 48},
                          "novel": {...}}, "mask": {...}}}

Values are fractions in [0, 1]; null where no category of the group has ground truth.
"""

import contextlib
import copy
import json
import types
from collections.abc import Collection, Iterator, Mapping, Sequence

import lvis
import numpy as np
import tensorflow as tf
from lvis import eval as lvis_eval_module
from pycocotools import coco

from projects.common.detection import evaluation_report

REPORT_KEY = 'open_vocabulary'
# The LVIS paper's limit (Sec. 4): 300 detections per image, not COCO's 100.
LVIS_MAX_DETECTIONS = 300
_IOU_TYPES = {'box': 'bbox', 'mask': 'segm'}


class _GfileLVIS(lvis.LVIS):
  """LVIS ground truth read through tf.io.gfile, so the annotation file may sit on GCS."""

  def _load_json(self, path):
    with tf.io.gfile.GFile(path) as f:
      return json.load(f)


class _NumpyWithFloatAlias(types.ModuleType):
  """NumPy as lvis 0.5.3 expects it: `LVISEval.accumulate` casts with `np.float`, which NumPy 2
  no longer has (an alias of the builtin float)."""

  float = float

  def __getattr__(self, name):
    return getattr(np, name)


@contextlib.contextmanager
def _numpy_float_alias_for_lvis() -> Iterator[None]:
  # Only the lvis.eval module sees the alias, and only while it evaluates.
  original = lvis_eval_module.np
  lvis_eval_module.np = _NumpyWithFloatAlias('numpy')
  try:
    yield
  finally:
    lvis_eval_module.np = original


def _figure(value) -> float | None:
  return None if value < 0 else float(value)


def _check_lvis_fields(annotation_file: str, ground_truth: lvis.LVIS) -> None:
  """Fails early, naming what is missing, on a COCO JSON given where LVIS is expected."""
  ungrouped = [i for i, c in ground_truth.cats.items() if c.get('frequency') not in ('r', 'c', 'f')]
  if ungrouped:
    raise ValueError(
      f'{annotation_file}: categories {sorted(ungrouped)[:10]} have no LVIS `frequency` '
      "('r', 'c' or 'f'); expected LVIS annotations (e.g. lvis_v1_val.json)"
    )
  federated_keys = ('neg_category_ids', 'not_exhaustive_category_ids')
  unlisted = [
    i for i, image in ground_truth.imgs.items() if not all(k in image for k in federated_keys)
  ]
  if unlisted:
    raise ValueError(
      f'{annotation_file}: images {sorted(unlisted)[:10]} lack {" / ".join(federated_keys)}; '
      'expected LVIS annotations (e.g. lvis_v1_val.json)'
    )


def lvis_ap_by_frequency(
  annotation_file: str,
  detections: Sequence[dict],
  include_mask: bool = False,
  max_detections: int = LVIS_MAX_DETECTIONS,
) -> dict[str, dict[str, float | None]]:
  """LVIS AP, AP_r, AP_c, AP_f (and the rest of LVISEval's summary) of COCO-format results.

  Args:
    annotation_file: LVIS ground truth JSON (e.g. lvis_v1_val.json): images with
      `neg_category_ids` / `not_exhaustive_category_ids`, categories with `frequency`.
    detections: results as `predictions.json` holds them: `image_id`, `category_id`, `bbox`
      [x, y, w, h], `score`, and with `include_mask` a compressed-RLE `segmentation`.
    include_mask: also evaluate masks.
    max_detections: detections kept per image (highest scores first).

  Returns:
    `{'box': {'AP': ..., 'AP50': ..., 'AP75': ..., 'APs': ..., 'APm': ..., 'APl': ...,
    'APr': ..., 'APc': ..., 'APf': ..., 'AR@300': ..., ...}, 'mask': {...}}`.
  """
  if not detections:
    raise ValueError('no detections to evaluate (the LVIS API cannot load an empty result list)')
  if include_mask:
    missing = sum('segmentation' not in detection for detection in detections)
    if missing:
      raise ValueError(
        f'include_mask needs a `segmentation` (compressed RLE) in every detection; '
        f'{missing} of {len(detections)} have none'
      )
  ground_truth = _GfileLVIS(annotation_file)
  _check_lvis_fields(annotation_file, ground_truth)
  report = {}
  for kind in ('box', 'mask') if include_mask else ('box',):
    # LVISResults adds fields (area, id, polygons from boxes) to the results it is given.
    results = lvis.LVISResults(ground_truth, copy.deepcopy(list(detections)), max_detections)
    evaluation = lvis.LVISEval(ground_truth, results, iou_type=_IOU_TYPES[kind])
    evaluation.params.max_dets = max_detections
    with _numpy_float_alias_for_lvis():
      evaluation.run()
    report[kind] = {name: _figure(value) for name, value in evaluation.get_results().items()}
  return report


def novel_category_ids(base_class_mask: Sequence[bool]) -> list[int]:
  """Ids (1..C) of the categories a per-category base flag list (as ViLD configs hold) marks
  novel."""
  return [index + 1 for index, is_base in enumerate(base_class_mask) if not is_base]


def average_by_group(
  per_category: Mapping[int, Mapping[str, float | None]],
  groups: Mapping[str, Collection[int]],
) -> dict[str, dict[str, float | None]]:
  """Mean of each per-category figure over each group's categories (those with a value).

  A category without ground truth (null AP) leaves its group's mean, as in COCO's overall AP.
  """
  averages = {}
  for group, category_ids in groups.items():
    figures = {}
    for name in evaluation_report.PER_CATEGORY_NAMES:
      values = [
        per_category[i][name]
        for i in category_ids
        if i in per_category and per_category[i][name] is not None
      ]
      figures[name] = float(np.mean(values)) if values else None
    averages[group] = {**figures, 'num_categories': len(category_ids)}
  return averages


def base_novel_ap(
  coco_gt: coco.COCO,
  detections: list[dict],
  novel_ids: Collection[int],
  include_mask: bool = False,
  max_detections: int = 100,
) -> dict[str, dict[str, dict[str, float | None]]]:
  """AP of the base and of the novel categories of a COCO-style split, from per-category AP.

  Args:
    coco_gt: the ground truth (every category of it is base unless in `novel_ids`).
    detections: COCO results (see `evaluation_report.evaluate_detections`).
    novel_ids: category ids held out of training.
    include_mask: also evaluate masks.
    max_detections: detections per image (COCO: 100).

  Returns:
    `{'box': {'base': {'AP': ..., 'AP50': ..., 'AP75': ..., 'APs': ..., 'APm': ..., 'APl': ...,
    'num_categories': n}, 'novel': {...}}, 'mask': {...}}`.
  """
  category_ids = {int(i) for i in coco_gt.getCatIds()}
  novel = {int(i) for i in novel_ids}
  unknown = sorted(novel - category_ids)
  if unknown:
    raise ValueError(
      f'novel category ids {unknown} are not categories of the ground truth '
      f'(ids {sorted(category_ids)})'
    )
  groups = {'base': sorted(category_ids - novel), 'novel': sorted(novel)}
  coco_evals = evaluation_report.evaluate_detections(
    coco_gt, detections, include_mask, max_detections
  )
  return {
    kind: average_by_group(evaluation_report.per_category_metrics(coco_eval), groups)
    for kind, coco_eval in coco_evals.items()
  }


def add_to_report_file(model_dir: str, open_vocab_metrics: Mapping[str, object]) -> str:
  """Merges `{'lvis': ..., 'base_novel': ...}` into the model's detection report under
  `"open_vocabulary"` (creating the report if there is none yet); returns its path."""
  path = evaluation_report.report_path(model_dir)
  report = {}
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path) as f:
      try:
        report = json.load(f)
      except json.JSONDecodeError as e:
        raise ValueError(f'detection report {path!r} is not valid JSON: {e}') from None
  report[REPORT_KEY] = {**report.get(REPORT_KEY, {}), **open_vocab_metrics}
  return evaluation_report.write_report(report, model_dir)
