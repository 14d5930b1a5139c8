"""Tests for evaluation_report.py on hand-made COCO ground truth and detections."""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf
from official.core import exp_factory
from official.vision.tasks import maskrcnn, retinanet
from pycocotools import coco
from pycocotools import mask as mask_api

from projects.common.detection import evaluation_report

CATEGORIES = [{'id': 1, 'name': 'cat'}, {'id': 2, 'name': 'dog'}, {'id': 5, 'name': 'bird'}]
HEIGHT, WIDTH = 64, 80
# (image id, category id, [x, y, w, h]) of every ground-truth object.
OBJECTS = [
  (1, 1, [4, 4, 20, 20]),
  (1, 2, [40, 10, 30, 40]),
  (2, 1, [10, 30, 24, 24]),
  (2, 2, [50, 2, 20, 20]),
  (3, 5, [20, 20, 40, 40]),
]


def box_mask(box) -> np.ndarray:
  x, y, w, h = box
  mask = np.zeros([HEIGHT, WIDTH], dtype=np.uint8)
  mask[y : y + h, x : x + w] = 1
  return mask


def rle(box) -> dict:
  encoded = mask_api.encode(np.asfortranarray(box_mask(box)))
  return {'size': encoded['size'], 'counts': encoded['counts'].decode('ascii')}


def ground_truth_dataset(names: bool = True) -> dict:
  annotations = [
    {
      'id': index + 1,
      'image_id': image_id,
      'category_id': category_id,
      'bbox': box,
      'area': box[2] * box[3],
      'iscrowd': 0,
      'segmentation': rle(box),
    }
    for index, (image_id, category_id, box) in enumerate(OBJECTS)
  ]
  return {
    'images': [{'id': i, 'height': HEIGHT, 'width': WIDTH} for i in (1, 2, 3)],
    'annotations': annotations,
    'categories': CATEGORIES if names else [{'id': c['id']} for c in CATEGORIES],
  }


def load_ground_truth(dataset: dict) -> coco.COCO:
  ground_truth = coco.COCO()
  ground_truth.dataset = dataset
  ground_truth.createIndex()
  return ground_truth


def detections() -> list[dict]:
  """Both cats found exactly, one dog found and one dog missed, the bird missed."""
  found = [OBJECTS[0], OBJECTS[1], OBJECTS[2]]
  results = [
    {'image_id': i, 'category_id': c, 'bbox': box, 'score': 0.9, 'segmentation': rle(box)}
    for i, c, box in found
  ]
  # A dog where there is none on image 3 (a false positive with a low score).
  results.append(
    {
      'image_id': 3,
      'category_id': 2,
      'bbox': [0, 0, 10, 10],
      'score': 0.3,
      'segmentation': rle([0, 0, 10, 10]),
    }
  )
  return results


class ReportTest(tf.test.TestCase):
  def test_report_of_ground_truth_and_detections(self):
    ground_truth = load_ground_truth(ground_truth_dataset())
    coco_evals = evaluation_report.evaluate_detections(ground_truth, detections(), True)
    report = evaluation_report.build_report(coco_evals, global_step=7)
    self.assertEqual(report['global_step'], 7)
    self.assertEqual(report['num_images'], 3)
    for kind in ('box', 'mask'):
      per_category = report[kind]['per_category']
      self.assertEqual(sorted(per_category), ['bird', 'cat', 'dog'])
      self.assertAlmostEqual(per_category['cat']['AP'], 1.0)
      self.assertEqual(per_category['cat']['id'], 1)
      self.assertAlmostEqual(per_category['bird']['AP'], 0.0)
      self.assertAlmostEqual(per_category['dog']['AP50'], 0.5, places=2)
      self.assertIsNone(per_category['cat']['APl'])  # No large cat: pycocotools says -1.
      # COCO's AP is the mean over categories of the per-category AP.
      self.assertAlmostEqual(
        report[kind]['AP'], np.mean([values['AP'] for values in per_category.values()])
      )
      self.assertEqual(
        list(report[kind])[:13],
        [*'AP AP50 AP75 APs APm APl ARmax1 ARmax10 ARmax100 ARs ARm ARl'.split(), 'per_category'],
      )

  def test_names_from_a_label_map_when_the_ground_truth_has_none(self):
    ground_truth = load_ground_truth(ground_truth_dataset(names=False))
    coco_evals = evaluation_report.evaluate_detections(ground_truth, detections())
    unnamed = evaluation_report.build_report(coco_evals)
    self.assertEqual(sorted(unnamed['box']['per_category']), ['1', '2', '5'])
    self.assertNotIn('mask', unnamed)
    named = evaluation_report.build_report(coco_evals, {1: 'cat', 2: 'dog'})
    self.assertEqual(sorted(named['box']['per_category']), ['5', 'cat', 'dog'])

  def test_same_name_twice_keeps_both(self):
    dataset = ground_truth_dataset()
    dataset['categories'] = [dict(c, name='pet') for c in CATEGORIES]
    coco_evals = evaluation_report.evaluate_detections(load_ground_truth(dataset), detections())
    self.assertEqual(
      sorted(evaluation_report.build_report(coco_evals)['box']['per_category']),
      ['pet', 'pet (id 2)', 'pet (id 5)'],
    )

  def test_no_detections_is_an_error(self):
    with self.assertRaisesRegex(ValueError, 'no detections'):
      evaluation_report.evaluate_detections(load_ground_truth(ground_truth_dataset()), [])

  def test_write_report(self):
    coco_evals = evaluation_report.evaluate_detections(
      load_ground_truth(ground_truth_dataset()), detections()
    )
    model_dir = self.get_temp_dir()
    path = evaluation_report.write_report(evaluation_report.build_report(coco_evals), model_dir)
    self.assertEqual(path, os.path.join(model_dir, 'eval_report', 'detection_metrics.json'))
    with open(path) as f:
      self.assertEqual(json.load(f)['box']['per_category']['cat']['AP'], 1.0)
    self.assertFalse(os.path.exists(path + '.partial'))


class LabelMapTest(tf.test.TestCase):
  def write(self, content) -> str:
    path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'categories.json')
    with open(path, 'w') as f:
      f.write(content if isinstance(content, str) else json.dumps(content))
    return path

  def test_formats(self):
    expected = {1: 'cat', 2: 'dog', 5: 'bird'}
    for content in (CATEGORIES, {'categories': CATEGORIES}, {'1': 'cat', '2': 'dog', '5': 'bird'}):
      self.assertEqual(evaluation_report.load_category_names(self.write(content)), expected)

  def test_bad_label_maps_are_named(self):
    for content in ('[{"id": 1}]', '{"a": "cat"}', '7', 'not json'):
      path = self.write(content)
      with self.assertRaisesRegex(ValueError, f'label map {path!r}'):
        evaluation_report.load_category_names(path)

  def test_found_beside_the_first_matching_tfrecord(self):
    folder = os.path.dirname(self.write(CATEGORIES))
    open(os.path.join(folder, 'val-00000-of-00001.tfrecord'), 'w').close()
    pattern = os.path.join(folder, 'val-*.tfrecord')
    self.assertEqual(
      evaluation_report.category_names_beside(f'/nowhere/*.tfrecord,{pattern}'),
      {1: 'cat', 2: 'dog', 5: 'bird'},
    )
    self.assertEqual(
      evaluation_report.category_names_beside([pattern]), {1: 'cat', 2: 'dog', 5: 'bird'}
    )
    os.remove(os.path.join(folder, 'categories.json'))
    self.assertEqual(evaluation_report.category_names_beside(pattern), {})
    self.assertEqual(evaluation_report.category_names_beside(''), {})


def batch_of_ground_truth() -> dict[str, tf.Tensor]:
  """OBJECTS as Model Garden's RetinaNet dataloader's `groundtruths` (a batch of the 3 images).

  That parser gives each image's object count as a [1] vector.
  """
  boxes = np.zeros([3, 2, 4], np.float32)
  classes = np.zeros([3, 2], np.int32)
  counts = np.zeros([3], np.int32)
  for image_id, category_id, (x, y, w, h) in OBJECTS:
    row = image_id - 1
    boxes[row, counts[row]] = [y, x, y + h, x + w]
    classes[row, counts[row]] = category_id
    counts[row] += 1
  return {
    'source_id': tf.constant([1, 2, 3]),
    'height': tf.constant([HEIGHT] * 3),
    'width': tf.constant([WIDTH] * 3),
    'num_detections': tf.constant(counts[:, None]),
    'boxes': tf.constant(boxes),
    'classes': tf.constant(classes),
  }


def batch_of_predictions(with_masks: bool = False) -> dict[str, tf.Tensor]:
  """detections() as a detection model's outputs (boxes in pixels, image scale 1)."""
  boxes = np.zeros([3, 2, 4], np.float32)
  classes = np.zeros([3, 2], np.int32)
  scores = np.zeros([3, 2], np.float32)
  counts = np.zeros([3], np.int32)
  for result in detections():
    row = result['image_id'] - 1
    x, y, w, h = result['bbox']
    boxes[row, counts[row]] = [y, x, y + h, x + w]
    classes[row, counts[row]] = result['category_id']
    scores[row, counts[row]] = result['score']
    counts[row] += 1
  info = np.array([[HEIGHT, WIDTH], [HEIGHT, WIDTH], [1, 1], [0, 0]], np.float32)
  predictions = {
    'source_id': tf.constant([1, 2, 3]),
    'image_info': tf.constant(np.stack([info] * 3)),
    'num_detections': tf.constant(counts),
    'detection_boxes': tf.constant(boxes),
    'detection_classes': tf.constant(classes),
    'detection_scores': tf.constant(scores),
  }
  if with_masks:
    # Box-filling masks: pasted into their boxes they give the ground truth's rectangles.
    predictions['detection_masks'] = tf.ones([3, 2, 28, 28])
  return predictions


class ReportingRetinaNetTask(evaluation_report.DetectionReportMixin, retinanet.RetinaNetTask):
  pass


class ReportingMaskRCNNTask(evaluation_report.DetectionReportMixin, maskrcnn.MaskRCNNTask):
  pass


class MixinTest(tf.test.TestCase):
  """Model Garden's own tasks with the mixin, fed one evaluation batch (no model is built)."""

  def evaluate(self, task, with_masks: bool = False) -> dict:
    task.build_metrics(training=False)
    name = task.coco_metric.name
    step_outputs = {name: (batch_of_ground_truth(), batch_of_predictions(with_masks))}
    state = task.aggregate_logs(None, step_outputs)
    return task.reduce_aggregated_logs(state, global_step=tf.Variable(12, dtype=tf.int64))

  def read_report(self, model_dir: str) -> dict:
    with open(evaluation_report.report_path(model_dir)) as f:
      return json.load(f)

  def retinanet_task(self, per_category_metrics: bool, model_dir: str) -> ReportingRetinaNetTask:
    """A RetinaNet task evaluating against its dataloader's ground truth, label map beside it."""
    data_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    open(os.path.join(data_dir, 'val-00000-of-00001.tfrecord'), 'w').close()
    with open(os.path.join(data_dir, 'categories.json'), 'w') as f:
      json.dump(CATEGORIES, f)
    config = exp_factory.get_exp_config('retinanet_resnetfpn_coco').task
    config.override(
      {
        'annotation_file': '',
        'per_category_metrics': per_category_metrics,
        'validation_data': {'input_path': os.path.join(data_dir, 'val-*.tfrecord')},
      }
    )
    return ReportingRetinaNetTask(config, logging_dir=model_dir)

  def test_retinanet_report_names_categories_from_the_label_map(self):
    model_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    logs = self.evaluate(self.retinanet_task(False, model_dir))
    self.assertFalse([key for key in logs if 'ByCategory' in key])  # Logs as without the mixin.
    self.assertIn('AP50', logs)
    report = self.read_report(model_dir)
    self.assertEqual(report['global_step'], 12)
    self.assertAlmostEqual(report['box']['AP'], float(logs['AP']), places=6)
    self.assertEqual(sorted(report['box']['per_category']), ['bird', 'cat', 'dog'])
    self.assertAlmostEqual(report['box']['per_category']['cat']['AP'], 1.0)

  def test_per_category_metrics_reach_the_logs_when_asked_for(self):
    logs = self.evaluate(self.retinanet_task(True, tempfile.mkdtemp(dir=self.get_temp_dir())))
    self.assertAlmostEqual(float(logs['Precision mAP ByCategory/1']), 1.0)
    self.assertAlmostEqual(float(logs['Precision mAP ByCategory@50IoU/5']), 0.0)
    self.assertEqual(float(logs['Precision mAP ByCategory (large)/1']), -1.0)

  def test_mask_rcnn_report_has_box_and_mask_metrics(self):
    annotation_file = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'instances.json')
    with open(annotation_file, 'w') as f:
      json.dump(ground_truth_dataset(), f)
    config = exp_factory.get_exp_config('maskrcnn_resnetfpn_coco').task
    config.override({'annotation_file': annotation_file, 'use_approx_instance_metrics': False})
    model_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    logs = self.evaluate(ReportingMaskRCNNTask(config, logging_dir=model_dir), with_masks=True)
    report = self.read_report(model_dir)
    self.assertAlmostEqual(report['mask']['AP'], float(logs['mask_AP']), places=6)
    self.assertAlmostEqual(report['mask']['per_category']['cat']['AP'], 1.0)
    self.assertEqual(sorted(report['box']['per_category']), ['bird', 'cat', 'dog'])

  def test_without_logging_dir_nothing_is_written(self):
    task = self.retinanet_task(False, model_dir='')
    with self.assertLogs(level='WARNING') as logged:
      self.evaluate(task)
    self.assertIn('no logging_dir', logged.output[0])


if __name__ == '__main__':
  tf.test.main()
