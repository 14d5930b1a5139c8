"""Tests for open_vocab_evaluation.py on tiny ground truth whose group APs are known."""

import json
import os

import pytest
from pycocotools import coco

from projects.common.detection import (
  coco_conversion,
  evaluation_report,
  open_vocab_evaluation,
  tiny_coco,
)

# (image id, category id, [x, y, w, h]) of every ground-truth object; images are tiny_coco's size.
OBJECTS = [
  (1, 1, [2, 2, 10, 10]),
  (1, 2, [20, 4, 12, 16]),
  (2, 3, [5, 10, 20, 15]),
  (2, 2, [28, 2, 10, 12]),
]
LVIS_CATEGORIES = [
  {'id': 1, 'name': 'gondola', 'frequency': 'r'},
  {'id': 2, 'name': 'cup', 'frequency': 'c'},
  {'id': 3, 'name': 'person', 'frequency': 'f'},
]
# Image 1 is known to hold no person; image 2 says nothing about gondolas (LVIS is federated).
LVIS_NEGATIVE_CATEGORY_IDS = {1: [3], 2: []}


def box_rle(box) -> dict:
  x, y, w, h = box
  return coco_conversion.compressed_rle(tiny_coco.block_mask(y, x, y + h, x + w))


def ground_truth_dataset() -> dict:
  return {
    'images': [
      {'id': i, 'height': tiny_coco.IMAGE_HEIGHT, 'width': tiny_coco.IMAGE_WIDTH} for i in (1, 2)
    ],
    'annotations': [
      {
        'id': index + 1,
        'image_id': image_id,
        'category_id': category_id,
        'bbox': box,
        'area': float(box[2] * box[3]),
        'iscrowd': 0,
        'segmentation': box_rle(box),
      }
      for index, (image_id, category_id, box) in enumerate(OBJECTS)
    ],
    'categories': [{'id': c['id'], 'name': c['name']} for c in LVIS_CATEGORIES],
  }


def write_lvis_ground_truth(directory) -> str:
  dataset = ground_truth_dataset()
  for image in dataset['images']:
    image['neg_category_ids'] = LVIS_NEGATIVE_CATEGORY_IDS[image['id']]
    image['not_exhaustive_category_ids'] = []
  for annotation in dataset['annotations']:
    del annotation['iscrowd']  # LVIS has no crowd annotations.
  dataset['categories'] = LVIS_CATEGORIES
  path = os.path.join(directory, 'lvis_val.json')
  with open(path, 'w') as f:
    json.dump(dataset, f)
  return path


def detection(image_id, category_id, box, score=0.9) -> dict:
  return {
    'image_id': image_id,
    'category_id': category_id,
    'bbox': box,
    'score': score,
    'segmentation': box_rle(box),
  }


def exact_detections(category_ids) -> list[dict]:
  return [detection(i, c, box) for i, c, box in OBJECTS if c in category_ids]


def test_lvis_ap_by_frequency(tmp_path):
  annotation_file = write_lvis_ground_truth(str(tmp_path))
  detections = [
    *exact_detections({2, 3}),
    # The rare gondola is missed: a gondola box where there is nothing.
    detection(1, 1, [25, 20, 8, 8]),
    # A false positive scored below both true cups leaves the cup's AP at 1.
    detection(2, 2, [0, 0, 4, 4], score=0.1),
  ]
  report = open_vocab_evaluation.lvis_ap_by_frequency(annotation_file, detections, True)
  for kind in ('box', 'mask'):
    figures = report[kind]
    assert figures['APr'] == pytest.approx(0.0)
    assert figures['APc'] == pytest.approx(1.0)
    assert figures['APf'] == pytest.approx(1.0)
    assert figures['AP'] == pytest.approx(2 / 3)
    assert 'AR@300' in figures


def test_lvis_counts_false_positives_only_where_the_category_was_checked(tmp_path):
  annotation_file = write_lvis_ground_truth(str(tmp_path))
  exact = exact_detections({1, 2, 3})
  # A confident gondola on image 2, which says nothing about gondolas: not held against it.
  unchecked = detection(2, 1, [0, 0, 6, 6], score=0.99)
  report = open_vocab_evaluation.lvis_ap_by_frequency(annotation_file, [*exact, unchecked])
  assert report['box']['APr'] == pytest.approx(1.0)
  # A confident person on image 1, which lists person as absent: a false positive.
  absent = detection(1, 3, [0, 20, 6, 6], score=0.99)
  report = open_vocab_evaluation.lvis_ap_by_frequency(annotation_file, [*exact, absent])
  assert report['box']['APf'] < 1.0
  assert report['box']['APr'] == pytest.approx(1.0)


def test_lvis_rejects_empty_results_and_missing_masks(tmp_path):
  annotation_file = write_lvis_ground_truth(str(tmp_path))
  with pytest.raises(ValueError, match='no detections'):
    open_vocab_evaluation.lvis_ap_by_frequency(annotation_file, [])
  boxes_only = [{k: v for k, v in d.items() if k != 'segmentation'} for d in exact_detections({1})]
  with pytest.raises(ValueError, match='segmentation'):
    open_vocab_evaluation.lvis_ap_by_frequency(annotation_file, boxes_only, include_mask=True)


def test_lvis_rejects_coco_annotations(tmp_path):
  path = os.path.join(str(tmp_path), 'coco.json')
  with open(path, 'w') as f:
    json.dump(ground_truth_dataset(), f)
  with pytest.raises(ValueError, match='have no LVIS `frequency`'):
    open_vocab_evaluation.lvis_ap_by_frequency(path, exact_detections({1}))
  dataset = ground_truth_dataset()
  dataset['categories'] = LVIS_CATEGORIES
  with open(path, 'w') as f:
    json.dump(dataset, f)
  with pytest.raises(ValueError, match=r'images \[1, 2\] lack neg_category_ids'):
    open_vocab_evaluation.lvis_ap_by_frequency(path, exact_detections({1}))


def load_coco_ground_truth() -> coco.COCO:
  ground_truth = coco.COCO()
  ground_truth.dataset = ground_truth_dataset()
  ground_truth.createIndex()
  return ground_truth


def test_base_perfect_novel_missed():
  metrics = open_vocab_evaluation.base_novel_ap(
    load_coco_ground_truth(), exact_detections({1, 2}), novel_ids=[3], include_mask=True
  )
  for kind in ('box', 'mask'):
    assert metrics[kind]['base']['AP'] == pytest.approx(1.0)
    assert metrics[kind]['base']['AP50'] == pytest.approx(1.0)
    assert metrics[kind]['base']['num_categories'] == 2
    assert metrics[kind]['novel']['AP'] == pytest.approx(0.0)
    assert metrics[kind]['novel']['num_categories'] == 1


def test_group_ap_is_the_mean_of_its_categories_ap():
  ground_truth = load_coco_ground_truth()
  # One of the two cups found, at precision 1: cup AP about 0.5.
  detections = [*exact_detections({1, 3}), detection(1, 2, OBJECTS[1][2])]
  metrics = open_vocab_evaluation.base_novel_ap(ground_truth, detections, novel_ids={2, 3})
  per_category = evaluation_report.per_category_metrics(
    evaluation_report.evaluate_detections(ground_truth, detections)['box']
  )
  assert metrics['box']['novel']['AP'] == pytest.approx(
    (per_category[2]['AP'] + per_category[3]['AP']) / 2
  )
  assert metrics['box']['base']['AP'] == pytest.approx(per_category[1]['AP'])
  assert 'mask' not in metrics


def test_novel_ids_must_be_ground_truth_categories():
  with pytest.raises(ValueError, match=r'novel category ids \[7\]'):
    open_vocab_evaluation.base_novel_ap(load_coco_ground_truth(), exact_detections({1}), [3, 7])


def test_novel_category_ids_from_a_base_class_mask():
  assert open_vocab_evaluation.novel_category_ids([True, False, True, False]) == [2, 4]


def test_add_to_report_file_keeps_the_detection_report(tmp_path):
  model_dir = str(tmp_path)
  evaluation_report.write_report({'global_step': 5, 'box': {'AP': 0.5}}, model_dir)
  open_vocab_evaluation.add_to_report_file(model_dir, {'lvis': {'box': {'APr': 0.1}}})
  path = open_vocab_evaluation.add_to_report_file(
    model_dir, {'base_novel': {'box': {'novel': {'AP': 0.2}}}}
  )
  with open(path) as f:
    report = json.load(f)
  assert report['global_step'] == 5
  assert report['box'] == {'AP': 0.5}
  assert report['open_vocabulary'] == {
    'lvis': {'box': {'APr': 0.1}},
    'base_novel': {'box': {'novel': {'AP': 0.2}}},
  }
