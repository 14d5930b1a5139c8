"""ViLD task on tiny digit scenes with a tiny ResNet: gradients, targets, distillation padding,
category swaps and the base / novel evaluation report."""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf
import tf_keras
from official.core import task_factory

from projects.common import input_errors
from projects.common.datasets import builtin
from projects.common.detection import evaluation_report
from projects.vild.configs import vild as vild_configs
from projects.vild.dataloaders import vild_input
from projects.vild.tasks import tiny_vild_data
from projects.vild.tasks import vild as vild_task

# 'two', 'five', 'eight' are ids 3, 6, 9.
NOVEL_IDS = {3, 6, 9}


def _tiny_task_config(data, **model_overrides) -> vild_configs.ViLDTask:
  """`vild_demo` with the tiny model, batches of 2, on `data`."""
  config = vild_configs.vild_demo().task
  model = {
    **tiny_vild_data.TINY_MODEL,
    'vild': {'text_embeddings_file': data.text_embeddings_file},
  }
  model.update(model_overrides)
  config.override(
    {
      'model': model,
      'train_data': {'input_path': data.train_pattern, 'global_batch_size': 2},
      'validation_data': {'input_path': data.validation_pattern, 'global_batch_size': 2},
      'annotation_file': data.validation_annotation_file,
    }
  )
  return config


class ViLDTaskTest(tf.test.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.directory = tempfile.mkdtemp()
    cls.data = tiny_vild_data.tiny_vild_digit_scenes(os.path.join(cls.directory, 'data'))
    # Temperature 1, not the paper's 0.01: an untrained model then scores detections below 1, so
    # the detections of two category orders can be compared without ties.
    vild = {'text_embeddings_file': cls.data.text_embeddings_file, 'temperature': 1.0}
    cls.task = task_factory.get_task(
      _tiny_task_config(cls.data, vild=vild), logging_dir=os.path.join(cls.directory, 'run')
    )
    cls.model = cls.task.build_model()
    cls.batch = next(iter(cls.task.build_inputs(cls.task.task_config.train_data)))

  def _outputs(self, labels):
    images, _ = self.batch
    return self.model(
      images,
      image_shape=labels['image_info'][:, 1, :],
      anchor_boxes=labels['anchor_boxes'],
      gt_boxes=labels['gt_boxes'],
      gt_classes=labels['gt_classes'],
      gt_masks=labels['gt_masks'],
      distill_rois=labels[vild_input.DISTILL_ROIS],
      training=True,
    )

  def test_only_the_background_embedding_of_the_classifier_trains(self):
    classifier = self.model.vild_head.text_classifier
    self.assertEqual(
      [v.name for v in classifier.trainable_weights], [classifier.background_embedding.name]
    )
    text_embeddings = np.load(self.data.text_embeddings_file)
    before = classifier.background_embedding.numpy()
    metrics = self.task.build_metrics(training=True)
    self.task.train_step(self.batch, self.model, tf_keras.optimizers.SGD(0.1), metrics)
    self.assertNotAllClose(classifier.background_embedding.numpy(), before)
    self.assertAllClose(
      classifier.category_embeddings,
      text_embeddings / np.linalg.norm(text_embeddings, axis=1, keepdims=True),
    )
    logged = {m.name: float(m.result()) for m in metrics}
    self.assertGreater(logged[vild_task.IMAGE_LOSS], 0.0)
    self.assertAllClose(
      logged['model_loss'],
      sum(
        logged[name]
        for name in (
          'rpn_score_loss',
          'rpn_box_loss',
          'frcnn_cls_loss',
          'frcnn_box_loss',
          'mask_loss',
          vild_task.IMAGE_LOSS,
        )
      ),
      rtol=1e-5,
    )

  def test_input_drops_novel_instances(self):
    raw = tf.data.TFRecordDataset(self.data.train_pattern)
    raw_ids = set()
    for record in raw:
      example = tf.train.Example.FromString(record.numpy())
      raw_ids |= set(example.features.feature['image/object/class/label'].int64_list.value)
    self.assertTrue(raw_ids & NOVEL_IDS, 'the tiny data should hold novel digits')
    dataset = self.task.build_inputs(self.task.task_config.train_data)
    for _, labels in dataset.take(2):
      classes = set(labels['gt_classes'].numpy().ravel().tolist()) - {-1}
      self.assertTrue(classes)
      self.assertFalse(classes & NOVEL_IDS)

  def test_model_never_targets_novel_groundtruth(self):
    _, labels = self.batch
    # The first instance of every image relabelled as a novel digit.
    gt_classes = labels['gt_classes'].numpy()
    gt_classes[:, 0] = 3
    outputs = self._outputs({**labels, 'gt_classes': tf.constant(gt_classes)})
    for key in ('class_targets', 'mask_class_targets'):
      self.assertFalse(set(outputs[key].numpy().ravel().tolist()) & NOVEL_IDS, key)

  def test_distillation_ignores_padded_proposals(self):
    _, labels = self.batch
    rois = labels[vild_input.DISTILL_ROIS].numpy()
    padded = np.all(rois == -1, axis=-1)
    self.assertTrue(padded.any() and (~padded).any())
    outputs = self._outputs(labels)
    teacher = labels[vild_input.DISTILL_TEACHER_EMBEDDINGS].numpy()
    noisy = teacher.copy()
    noisy[padded] = 1e6

    def image_loss(teacher_embeddings):
      labels_with = {
        **labels,
        vild_input.DISTILL_TEACHER_EMBEDDINGS: tf.constant(teacher_embeddings),
      }
      return float(self.task.build_losses(outputs, labels_with)[vild_task.IMAGE_LOSS])

    losses = [image_loss(teacher), image_loss(noisy)]
    self.assertGreater(losses[0], 0.0)
    self.assertAllClose(losses[0], losses[1])

  def test_swapping_the_category_list_changes_the_output_classes(self):
    images, labels = next(iter(self.task.build_inputs(self.task.task_config.validation_data)))
    embeddings = self.task.categories.embeddings
    num_categories = len(embeddings)

    def detections():
      outputs = self.model(
        images,
        image_shape=labels['image_info'][:, 1, :],
        anchor_boxes=labels['anchor_boxes'],
        training=False,
      )
      count = int(outputs['num_detections'][0])
      scores = np.round(outputs['detection_scores'][0, :count].numpy(), 4)
      classes = outputs['detection_classes'][0, :count].numpy()
      return sorted(zip(scores.tolist(), classes.tolist(), strict=True))

    try:
      original = detections()
      self.assertNotEmpty(original)
      self.model.set_categories(embeddings[::-1], self.task.categories.base_class_mask[::-1])
      reversed_list = detections()
      self.model.set_categories(embeddings[4:5], [True])
      single = detections()
    finally:
      self.model.set_categories(embeddings, self.task.categories.base_class_mask)
    self.assertEqual(
      reversed_list, sorted((score, num_categories + 1 - c) for score, c in original)
    )
    self.assertEqual({c for _, c in single}, {1})

  def test_evaluation_reports_base_and_novel_ap(self):
    metrics = self.task.build_metrics(training=False)
    state = None
    for batch in self.task.build_inputs(self.task.task_config.validation_data):
      state = self.task.aggregate_logs(state, self.task.validation_step(batch, self.model, metrics))
    logs = self.task.reduce_aggregated_logs(state, global_step=7)
    self.assertIn('box_AP_novel', logs)
    with open(evaluation_report.report_path(self.task.logging_dir)) as f:
      report = json.load(f)
    self.assertEqual(report['global_step'], 7)
    groups = report['open_vocabulary']['base_novel']['mask']
    self.assertEqual(groups['base']['num_categories'], 7)
    self.assertEqual(groups['novel']['num_categories'], 3)

  def test_evaluation_on_lvis_ground_truth_reports_ap_by_frequency(self):
    with open(self.data.validation_annotation_file) as f:
      ground_truth = json.load(f)
    # The digit scenes as LVIS would have them: frequencies, federated image lists, no iscrowd.
    for category in ground_truth['categories']:
      category['frequency'] = 'r' if category['id'] in NOVEL_IDS else 'f'
    for image in ground_truth['images']:
      image.update(neg_category_ids=[], not_exhaustive_category_ids=[])
    for annotation in ground_truth['annotations']:
      annotation.pop('iscrowd', None)
    lvis_file = os.path.join(self.get_temp_dir(), 'lvis_val.json')
    with open(lvis_file, 'w') as f:
      json.dump(ground_truth, f)
    config = _tiny_task_config(self.data)
    config.annotation_file = lvis_file
    task = task_factory.get_task(config, logging_dir=os.path.join(self.get_temp_dir(), 'run'))
    metrics = task.build_metrics(training=False)
    state = None
    for batch in task.build_inputs(config.validation_data):
      state = task.aggregate_logs(state, task.validation_step(batch, self.model, metrics))
    logs = task.reduce_aggregated_logs(state, global_step=1)
    self.assertIn('AP', logs)
    with open(evaluation_report.report_path(task.logging_dir)) as f:
      lvis = json.load(f)['open_vocabulary']['lvis']
    self.assertContainsSubset(['APr', 'APc', 'APf'], lvis['mask'])
    self.assertIsNone(lvis['box']['APc'])  # No category of the scenes is 'common'.


class ViLDEnsembleTaskTest(tf.test.TestCase):
  def test_ensemble_trains_and_detects(self):
    data = tiny_vild_data.tiny_vild_digit_scenes(self.get_temp_dir())
    task = task_factory.get_task(
      _tiny_task_config(
        data, vild={'text_embeddings_file': data.text_embeddings_file, 'ensemble': True}
      )
    )
    model = task.build_model()
    self.assertTrue(any('image-branch' in v.name for v in model.trainable_variables))
    batch = next(iter(task.build_inputs(task.task_config.train_data)))
    logs = task.train_step(batch, model, tf_keras.optimizers.SGD(0.01), [])
    self.assertTrue(np.isfinite(logs['loss']))
    images, labels = next(iter(task.build_inputs(task.task_config.validation_data)))
    outputs = model(
      images,
      image_shape=labels['image_info'][:, 1, :],
      anchor_boxes=labels['anchor_boxes'],
      training=False,
    )
    self.assertAllInRange(outputs['detection_scores'], 0.0, 1.0)


class CategoryListTest(tf.test.TestCase):
  def setUp(self):
    super().setUp()
    self.data = tiny_vild_data.tiny_vild_digit_scenes(self.get_temp_dir())

  def test_novel_names_from_config(self):
    categories = vild_task.load_categories(_tiny_task_config(self.data))
    self.assertEqual(categories.novel_names, ['two', 'five', 'eight'])
    self.assertEqual(categories.embeddings.shape, (10, tiny_vild_data.EMBEDDING_DIM))

  def test_unknown_novel_name_is_named(self):
    config = _tiny_task_config(self.data)
    config.model.vild.novel_category_names = ['two', 'twelve']
    with self.assertRaisesRegex(ValueError, r"\['twelve'\] are not categories of .*digits"):
      vild_task.load_categories(config)

  def test_num_classes_must_cover_the_categories(self):
    config = _tiny_task_config(self.data)
    config.model.num_classes = 5
    with self.assertRaisesRegex(ValueError, r'num_classes=5 .* expected num_classes=11'):
      task_factory.get_task(config).build_model()

  def test_input_with_more_objects_than_the_parser_keeps_fails_before_parsing(self):
    config = _tiny_task_config(self.data)
    config.train_data.parser.max_num_instances = 1
    with self.assertRaisesRegex(
      input_errors.ConfigDataMismatchError,
      r'task.train_data.parser.max_num_instances=1 is too small',
    ):
      task_factory.get_task(config).build_inputs(config.train_data)

  def test_lvis_split_needs_the_lvis_category_list(self):
    config = _tiny_task_config(self.data)
    config.model.vild.novel_lvis_frequencies = 'r'
    with self.assertRaisesRegex(ValueError, 'needs the LVIS v1 category list'):
      vild_task.load_categories(config)

  def test_empty_embeddings_file_comes_from_the_builtin_dataset(self):
    builtin.register_builtin_dataset('vild_task_test_scenes', lambda: self.data)
    config = _tiny_task_config(self.data)
    config.model.vild.text_embeddings_file = ''
    config.train_data.builtin_dataset = 'vild_task_test_scenes'
    self.assertEqual(vild_task.text_embeddings_file(config), self.data.text_embeddings_file)
    config.train_data.builtin_dataset = ''
    with self.assertRaisesRegex(ValueError, 'text_embeddings_file is empty'):
      vild_task.load_categories(config)


if __name__ == '__main__':
  tf.test.main()
