"""The input checks of the SpineNet detection tasks: class ids and objects per image, each read from
the converter's files beside the shards first, else from the first batch."""

import json
import os

import tensorflow as tf
from official.core import exp_factory, task_factory

from projects import registry_imports  # noqa: F401
from projects.common import input_errors, sharded_conversion
from projects.common.detection import coco_conversion
from projects.spinenet.configs import detection as detection_configs
from projects.spinenet.tasks import detection


def _write_records(path: str, labels_per_example: list[list[int]]) -> None:
  with tf.io.TFRecordWriter(path) as writer:
    for labels in labels_per_example:
      feature = {
        detection.CLASS_LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=labels))
      }
      example = tf.train.Example(features=tf.train.Features(feature=feature))
      writer.write(example.SerializeToString())


def _data(input_path: str, batch_size: int = 2, is_training: bool = True):
  return detection_configs.RetinaNetDataConfig(
    input_path=input_path, global_batch_size=batch_size, is_training=is_training
  )


def _sample(input_path: str, **data_settings) -> detection.InputSample:
  return detection.InputSample(_data(input_path, **data_settings))


class LargestClassIdTest(tf.test.TestCase):
  def test_label_map_beside_the_shards_wins(self):
    folder = self.get_temp_dir()
    _write_records(os.path.join(folder, 'train-00000-of-00001.tfrecord'), [[1]])
    label_map = os.path.join(folder, 'categories.json')
    with open(label_map, 'w') as f:
      json.dump([{'id': 1, 'name': 'a'}, {'id': 90, 'name': 'z'}], f)
    self.assertEqual(
      detection.largest_class_id(_sample(os.path.join(folder, 'train*'))), (90, label_map)
    )

  def test_without_label_map_the_first_batch_is_read(self):
    folder = self.get_temp_dir()
    path = os.path.join(folder, 'shard.tfrecord')
    # The third example lies beyond the first batch of 2.
    _write_records(path, [[1, 4], [2], [9]])
    largest, where = detection.largest_class_id(_sample(path))
    self.assertEqual(largest, 4)
    self.assertEqual(where, f'{path} (read from the first 2 examples of the input)')

  def test_first_batch_spans_files_and_names_the_file_of_the_largest_id(self):
    folder = self.get_temp_dir()
    first, second = (os.path.join(folder, f'shard-{i}.tfrecord') for i in (0, 1))
    _write_records(first, [[2]])
    _write_records(second, [[7], [30]])
    largest, where = detection.largest_class_id(_sample(os.path.join(folder, 'shard-*')))
    self.assertEqual(largest, 7)
    self.assertTrue(where.startswith(f'{second} '), where)

  def test_unknown_without_files_or_labels(self):
    self.assertIsNone(detection.largest_class_id(_sample('')))
    self.assertIsNone(detection.largest_class_id(_sample(os.path.join(self.get_temp_dir(), 'no*'))))
    path = os.path.join(self.get_temp_dir(), 'empty.tfrecord')
    _write_records(path, [[]])
    self.assertIsNone(detection.largest_class_id(_sample(path)))


class CheckNumClassesTest(tf.test.TestCase):
  def test_too_few_classes_names_both_numbers(self):
    path = os.path.join(self.get_temp_dir(), 'shard.tfrecord')
    _write_records(path, [[3], [10]])
    with self.assertRaisesRegex(
      input_errors.ConfigDataMismatchError,
      r'task.model.num_classes=10 is too small for task.validation_data: largest class id 10 '
      rf'in {path} .*num_classes=11',
    ):
      detection.check_num_classes(10, _sample(path, is_training=False))
    detection.check_num_classes(11, _sample(path))

  def test_task_fails_before_parsing_any_example(self):
    # The records hold no image: the check must fail before Model Garden's decoder reads one.
    path = os.path.join(self.get_temp_dir(), 'shard.tfrecord')
    _write_records(path, [[5]])
    config = exp_factory.get_exp_config('retinanet_spinenet_demo').task
    config.model.num_classes = 4
    config.train_data.builtin_dataset = ''
    config.train_data.input_path = path
    task = task_factory.get_task(config)
    self.assertIsInstance(task, detection.RetinaNetTask)
    with self.assertRaisesRegex(input_errors.ConfigDataMismatchError, r'num_classes=4 .* id 5'):
      task.build_inputs(config.train_data)


class CheckMaxNumInstancesTest(tf.test.TestCase):
  def test_summary_beside_the_shards_counts_every_image(self):
    folder = self.get_temp_dir()
    path = os.path.join(folder, 'train-00000-of-00001.tfrecord')
    _write_records(path, [[1]])
    summary = os.path.join(folder, sharded_conversion.SUMMARY_FILE)
    with open(summary, 'w') as f:
      json.dump({coco_conversion.MAX_ANNOTATIONS_PER_IMAGE_KEY: 240}, f)
    data = _data(os.path.join(folder, 'train*'))
    self.assertEqual(detection.largest_instance_count(detection.InputSample(data)), (240, summary))
    with self.assertRaisesRegex(
      input_errors.ConfigDataMismatchError,
      r'task.train_data.parser.max_num_instances=100 is too small: an image holds 240 annotated '
      rf'objects in {summary}; .*set task.train_data.parser.max_num_instances=240',
    ):
      detection.check_max_num_instances(detection.InputSample(data))
    data.parser.max_num_instances = 240
    detection.check_max_num_instances(detection.InputSample(data))

  def test_without_summary_the_first_batch_is_counted(self):
    path = os.path.join(self.get_temp_dir(), 'shard.tfrecord')
    # The third example (4 objects) lies beyond the first batch of 2.
    _write_records(path, [[1], [2, 2, 3], [1, 1, 1, 1]])
    data = _data(path, is_training=False)
    self.assertEqual(
      detection.largest_instance_count(detection.InputSample(data)),
      (3, f'{path} (read from the first 2 examples of the input)'),
    )
    data.parser.max_num_instances = 2
    with self.assertRaisesRegex(
      input_errors.ConfigDataMismatchError,
      r'task.validation_data.parser.max_num_instances=2 is too small: an image holds 3 ',
    ):
      detection.check_max_num_instances(detection.InputSample(data))

  def test_task_fails_before_parsing_any_example(self):
    path = os.path.join(self.get_temp_dir(), 'shard.tfrecord')
    _write_records(path, [[1, 2, 3]])
    config = exp_factory.get_exp_config('maskrcnn_spinenet_demo').task
    config.train_data.builtin_dataset = ''
    config.train_data.input_path = path
    config.train_data.parser.max_num_instances = 2
    task = task_factory.get_task(config)
    self.assertIsInstance(task, detection.MaskRCNNTask)
    with self.assertRaisesRegex(input_errors.ConfigDataMismatchError, r'max_num_instances=2 '):
      task.build_inputs(config.train_data)


if __name__ == '__main__':
  tf.test.main()
