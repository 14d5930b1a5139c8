"""Tests for tools/predict.py with a tiny RetinaNet of random weights on a few synthetic images."""

import contextlib
import copy
import io
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
from official.core import task_factory
from official.vision.data import tfrecord_lib
from official.vision.serving import detection
from PIL import Image
from pycocotools import coco
from pycocotools import mask as mask_api

from projects.common import experiment_config
from projects.common.detection import drawing, evaluation_report
from projects.vild.modeling import text_encoder
from projects.vild.tasks import tiny_vild_data
from tools import predict
from tools.extract_features_test import assert_user_error, run_cli

# Model Garden's COCO RetinaNet shrunk: 128^2 input, ResNet-18, narrow FPN and head, 3 classes
# (+ background). Random weights score about 0.01 everywhere, so the generator keeps all scores.
TINY_RETINANET = (
  'task.model.input_size=[128,128,3],task.model.backbone.resnet.model_id=18,'
  'task.model.num_classes=4,task.model.decoder.fpn.num_filters=16,'
  'task.model.head.num_filters=16,task.model.head.num_convs=1,'
  'task.model.detection_generator.pre_nms_score_threshold=0.0,'
  'task.model.detection_generator.max_num_detections=8,task.annotation_file=,task.init_checkpoint='
)
CATEGORIES = [{'id': 1, 'name': 'cat'}, {'id': 2, 'name': 'dog'}, {'id': 3, 'name': 'bird'}]
# (source id, height, width) of the synthetic images; '' : a record without a source id.
IMAGES = [('11', 96, 144), ('12', 150, 100), ('', 64, 64)]


def synthetic_image(height: int, width: int, seed: int) -> np.ndarray:
  """A gradient with two coloured rectangles: something to look at in the drawn PNGs."""
  rng = np.random.default_rng(seed)
  image = np.zeros([height, width, 3], np.uint8)
  image[..., 0] = np.linspace(40, 200, width, dtype=np.uint8)[None, :]
  image[..., 2] = np.linspace(200, 40, height, dtype=np.uint8)[:, None]
  for _ in range(2):
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    image[top : top + height // 3, left : left + width // 3] = rng.integers(0, 255, 3)
  return image


def jpeg(image: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='JPEG', quality=95)
  return buffer.getvalue()


def write_inputs(root: str) -> tuple[str, str, list[bytes]]:
  """A TFRecord of IMAGES (categories.json beside it) and a folder of the numbered ones."""
  encoded = [jpeg(synthetic_image(h, w, seed)) for seed, (_, h, w) in enumerate(IMAGES)]
  record_dir = os.path.join(root, 'records')
  folder = os.path.join(root, 'photos', 'nested')
  os.makedirs(record_dir)
  os.makedirs(folder)
  record_path = os.path.join(record_dir, 'val-00000-of-00001.tfrecord')
  with tf.io.TFRecordWriter(record_path) as writer:
    for (source_id, height, width), image_bytes in zip(IMAGES, encoded, strict=True):
      features = tfrecord_lib.image_info_to_feature_dict(
        height, width, f'{source_id or "unnamed"}.jpg', source_id, image_bytes, 'jpeg'
      )
      example = tf.train.Example(features=tf.train.Features(feature=features))
      writer.write(example.SerializeToString())
  with open(os.path.join(record_dir, 'categories.json'), 'w') as f:
    json.dump(CATEGORIES, f)
  for (source_id, _, _), image_bytes in zip(IMAGES[:2], encoded[:2], strict=True):
    with open(os.path.join(folder, f'{source_id}.jpg'), 'wb') as f:
      f.write(image_bytes)
  return os.path.join(record_dir, 'val-*.tfrecord'), os.path.dirname(folder), encoded


def ground_truth(image_ids_and_sizes) -> coco.COCO:
  """A small COCO ground truth over the given images (one cat each)."""
  dataset = {
    'images': [{'id': i, 'height': h, 'width': w} for i, h, w in image_ids_and_sizes],
    'annotations': [
      {
        'id': n + 1,
        'image_id': i,
        'category_id': 1,
        'bbox': [2, 2, 20, 20],
        'area': 400,
        'iscrowd': 0,
      }
      for n, (i, _, _) in enumerate(image_ids_and_sizes)
    ],
    'categories': CATEGORIES,
  }
  ground = coco.COCO()
  ground.dataset = dataset
  ground.createIndex()
  return ground


def read_json(path: str):
  with open(path) as f:
    return json.load(f)


class FakeDetector(tf.Module):
  """A SavedModel-able stand-in for a detection export: two boxes relative to the image size.

  It resizes as the real export does (longer side to 128) and reports that in `image_info`.
  """

  @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name='inputs')])
  def serve(self, images):
    size = tf.cast(tf.shape(images)[1:3], tf.float32)
    scale = 128.0 / tf.reduce_max(size)
    height, width = size[0] * scale, size[1] * scale
    boxes = [
      [height / 4, width / 4, 3 * height / 4, 3 * width / 4],
      [0.0, 0.0, height / 2, width / 2],
    ]
    return {
      'detection_boxes': tf.stack(boxes)[None],
      'detection_scores': tf.constant([[0.8, 0.1]]),
      'detection_classes': tf.constant([[2, 1]]),
      'num_detections': tf.constant([2]),
      'image_info': tf.stack([size, [128.0, 128.0], [scale, scale], [0.0, 0.0]])[None],
    }


class PredictTest(tf.test.TestCase):
  """A tiny RetinaNet's checkpoints in a run folder, and a fake detection SavedModel."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.record_pattern, cls.folder, cls.encoded = write_inputs(cls.root)
    cls.override = f'{TINY_RETINANET},task.validation_data.input_path={cls.record_pattern}'
    params = experiment_config.build_experiment_config('retinanet_resnetfpn_coco', (), cls.override)
    model = task_factory.get_task(params.task).build_model()
    module = detection.DetectionModule(
      params, model=model, batch_size=1, input_image_size=[128, 128]
    )
    # One eager call creates every variable, several times faster than tracing the model.
    module.serve(tf.zeros([1, 64, 64, 3], tf.uint8))
    cls.run_dir = os.path.join(cls.root, 'run')
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), cls.run_dir, 2)
    rng = np.random.RandomState(0)
    for _ in range(2):  # The second save differs from the first: the tool must take the newest.
      for variable in model.variables:
        variable.assign(variable * rng.uniform(0.8, 1.2, variable.shape).astype(np.float32))
      manager.save()
    cls.export_dir = os.path.join(cls.root, 'export')
    fake = FakeDetector()
    tf.saved_model.save(fake, cls.export_dir, signatures={'serving_default': fake.serve})

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root)
    super().tearDownClass()

  def predict(self, *args: str) -> tuple[str, list[dict], list[dict]]:
    output_dir = tempfile.mkdtemp(dir=self.root)
    code, stdout, stderr = run_cli(
      predict.main,
      '--experiment=retinanet_resnetfpn_coco',
      f'--params_override={self.override}',
      f'--output_dir={output_dir}',
      *args,
    )
    self.assertEqual(code, 0, stderr)
    self.output_dir = output_dir
    return (
      stdout,
      read_json(os.path.join(output_dir, 'predictions.json')),
      read_json(os.path.join(output_dir, 'images.json')),
    )

  def read_drawn(self, *path: str) -> np.ndarray:
    return np.asarray(Image.open(os.path.join(self.output_dir, 'drawn', *path)))

  def test_checkpoint_run_folder_over_tfrecords(self):
    stdout, results, images = self.predict(
      f'--checkpoint={self.run_dir}',
      f'--input={self.record_pattern}',
      '--score_threshold=0',
      '--draw_score_threshold=0',
    )
    self.assertIn(f'checkpoint: {os.path.join(self.run_dir, "ckpt-2")}', stdout)
    self.assertIn('class names: categories.json beside', stdout)
    hashed_id = int(tf.strings.to_hash_bucket_fast(self.encoded[2], 2**22 - 1))
    expected_images = [(11, 96, 144), (12, 150, 100), (hashed_id, 64, 64)]
    self.assertEqual([(i['id'], i['height'], i['width']) for i in images], expected_images)
    self.assertEqual(images[0]['file_name'], '11.jpg')
    # 8 detections per image (the generator's maximum), every score kept with threshold 0.
    self.assertLen(results, 24)
    sizes = {image_id: (height, width) for image_id, height, width in expected_images}
    for result in results:
      x, y, w, h = result['bbox']
      height, width = sizes[result['image_id']]
      self.assertTrue(0 <= x <= x + w <= width and 0 <= y <= y + h <= height, result)
      self.assertNotIn('segmentation', result)
    loaded = ground_truth(expected_images).loadRes(copy.deepcopy(results))
    self.assertLen(loaded.getAnnIds(), 24)
    for image_id, height, width in expected_images:
      self.assertEqual(self.read_drawn(f'{image_id}.png').shape, (height, width, 3))
    # The report's evaluation reads them too (the random model's AP is near 0).
    coco_evals = evaluation_report.evaluate_detections(ground_truth(expected_images), results)
    self.assertIn('cat', evaluation_report.build_report(coco_evals)['box']['per_category'])

  def test_saved_model_over_a_folder(self):
    stdout, results, images = self.predict(
      f'--saved_model={self.export_dir}', f'--input={self.folder}'
    )
    # Numbered file names are the image ids; subfolders are searched.
    self.assertEqual(
      images,
      [
        {'id': 11, 'file_name': 'nested/11.jpg', 'height': 96, 'width': 144},
        {'id': 12, 'file_name': 'nested/12.jpg', 'height': 150, 'width': 100},
      ],
    )
    self.assertIn('2 images, 4 detections >= 0.05', stdout)
    # Boxes in original pixels: the middle half of the image, and its top-left quarter.
    self.assertEqual(
      [(r['image_id'], r['category_id'], r['score']) for r in results],
      [(11, 2, 0.8), (11, 1, 0.1), (12, 2, 0.8), (12, 1, 0.1)],
    )
    self.assertAllClose(results[0]['bbox'], [36, 24, 72, 48], atol=0.02)
    self.assertAllClose(results[3]['bbox'], [0, 0, 50, 75], atol=0.02)
    ground_truth([(11, 96, 144), (12, 150, 100)]).loadRes(results)
    # Only the detection above --draw_score_threshold (0.3) is drawn.
    drawn = self.read_drawn('nested', '11.png')
    self.assertEqual(drawn.shape, (96, 144, 3))
    self.assertEqual(tuple(drawn[48, 36]), drawing.category_color(2))
    self.assertNotEqual(tuple(drawn[40, 0]), drawing.category_color(1))

  def test_draw_scale_enlarges_the_pngs_not_the_predictions(self):
    _, results, _ = self.predict(
      f'--saved_model={self.export_dir}', f'--input={self.folder}', '--draw_scale=2'
    )
    self.assertAllClose(results[0]['bbox'], [36, 24, 72, 48], atol=0.02)
    drawn = self.read_drawn('nested', '11.png')
    self.assertEqual(drawn.shape, (192, 288, 3))
    self.assertEqual(tuple(drawn[96, 72]), drawing.category_color(2))
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), self.assertRaises(SystemExit):
      predict.main(
        [
          '--experiment=retinanet_resnetfpn_coco',
          f'--saved_model={self.export_dir}',
          f'--input={self.folder}',
          f'--output_dir={self.get_temp_dir()}',
          '--draw_scale=0',
        ]
      )
    self.assertIn('--draw_scale must be at least 1, got 0', stderr.getvalue())

  def test_max_images(self):
    _, results, images = self.predict(
      f'--saved_model={self.export_dir}', f'--input={self.record_pattern}', '--max_images=1'
    )
    self.assertEqual([i['id'] for i in images], [11])
    self.assertEqual({r['image_id'] for r in results}, {11})

  def test_unusable_saved_models_are_named(self):
    assert_user_error(
      self,
      run_cli(
        predict.main,
        '--experiment=retinanet_resnetfpn_coco',
        f'--params_override={self.override}',
        f'--saved_model={self.folder}',
        f'--input={self.folder}',
        f'--output_dir={self.root}',
      ),
      'holds no SavedModel',
    )


class InputsTest(tf.test.TestCase):
  """Reading inputs and converting outputs, without a model."""

  def test_folder_ids_are_numbers_only_when_every_name_is_one(self):
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    for name in ('b.gif', '7.jpg', 'notes.txt'):
      open(os.path.join(folder, name), 'wb').close()
    images = list(predict.folder_images(folder))
    self.assertEqual(
      [(i.image_id, i.name, i.drawn_name) for i in images],
      [(1, '7.jpg', '7.png'), (2, 'b.gif', 'b.png')],
    )
    os.remove(os.path.join(folder, 'b.gif'))
    self.assertEqual([i.image_id for i in predict.folder_images(folder)], [7])

  def test_drawings_of_same_named_images_stay_apart(self):
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    for name in ('a.jpg', 'a.png'):
      open(os.path.join(folder, name), 'wb').close()
    self.assertEqual(
      [i.drawn_name for i in predict.folder_images(folder)], ['a.jpg.png', 'a.png.png']
    )

  def test_empty_folder_and_unmatched_pattern_are_named(self):
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    with self.assertRaisesRegex(predict.InputError, 'no image file'):
      predict.folder_images(folder)
    with self.assertRaisesRegex(predict.InputError, "'/nowhere/x-\\*' is not a folder"):
      predict.tfrecord_files('/nowhere/x-*')

  def test_coco_results_map_boxes_and_masks_back_to_the_original_image(self):
    # A 200x100 image resized by 0.64 to fit 128^2: boxes come back divided by the scale.
    outputs = {
      'num_detections': np.array([3]),
      'detection_scores': np.array([[0.9, 0.5, 0.2, 0.0]], np.float32),
      'detection_classes': np.array([[2, 1, 3, 0]]),
      'detection_boxes': np.array(
        [[[12.8, 6.4, 64, 32], [0, 0, 128, 70], [1, 1, 2, 2], [0, 0, 0, 0]]], np.float32
      ),
      'image_info': np.array([[[200, 100], [128, 128], [0.64, 0.64], [0, 0]]], np.float32),
      'detection_masks': np.ones([1, 4, 28, 28], np.float32),
    }
    results = predict.coco_results(outputs, 5, score_threshold=0.3)
    self.assertEqual([r['category_id'] for r in results], [2, 1])
    self.assertEqual([r['score'] for r in results], [0.9, 0.5])
    self.assertAllClose(results[0]['bbox'], [10, 20, 40, 80])
    self.assertAllClose(results[1]['bbox'], [0, 0, 100, 200])  # Clipped to the image.
    mask = mask_api.decode(
      dict(results[0]['segmentation'], counts=results[0]['segmentation']['counts'].encode())
    )
    self.assertEqual(mask.shape, (200, 100))
    self.assertAllClose(mask_api.area(mask_api.encode(mask)), 40 * 80, rtol=0.1)
    json.dumps(results)  # Plain JSON types only.
    self.assertEqual(predict.coco_results(outputs, 5, score_threshold=0.95), [])

  def test_user_errors(self):
    root = tempfile.mkdtemp(dir=self.get_temp_dir())
    common = [f'--output_dir={root}', f'--checkpoint={root}']
    assert_user_error(
      self,
      run_cli(predict.main, '--experiment=video_classification_demo', f'--input={root}', *common),
      'predict.py runs RetinaNet and Mask R-CNN',
    )

    def retinanet_on(input_pattern: str):
      return run_cli(
        predict.main,
        '--experiment=retinanet_resnetfpn_coco',
        f'--params_override={TINY_RETINANET}',
        f'--input={input_pattern}',
        *common,
      )

    assert_user_error(
      self, retinanet_on('/nowhere/*.tfrecord'), "--input '/nowhere/*.tfrecord' is not a folder"
    )
    label_map = os.path.join(root, 'label_map.json')
    with open(label_map, 'w') as f:
      json.dump({'1': 'one'}, f)
    assert_user_error(
      self, retinanet_on(f'{root}/*.json'), f'--input: {label_map} is not a TFRecord file'
    )
    os.mkdir(os.path.join(root, 'validation'))
    assert_user_error(
      self,
      retinanet_on(f'{root}/valid*'),
      f'--input: {root}/validation is a folder; give the folder itself for its images, or a '
      f'pattern of its TFRecord files (e.g. {root}/validation/*)',
    )


class PredictViLDTest(tf.test.TestCase):
  """A tiny ViLD model of random weights whose training categories are the ten digit names
  (MiniLM embeddings), asked for categories named at inference time."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    record_pattern, cls.folder, _ = write_inputs(cls.root)
    digits = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']
    embeddings_file = os.path.join(cls.root, 'digits.npy')
    encoder = text_encoder.load_text_encoder(text_encoder.MINILM)
    np.save(
      embeddings_file,
      text_encoder.embed_categories(encoder, digits, text_encoder.SIMPLE_TEMPLATES),
    )
    with open(os.path.join(cls.root, 'digits.names.json'), 'w') as f:
      json.dump(digits, f)
    model = {
      **tiny_vild_data.TINY_MODEL,
      # Temperature 1: random weights then score below 1, so two name orders compare without ties.
      'vild': {'text_embeddings_file': embeddings_file, 'temperature': 1.0},
      'detection_generator': {'pre_nms_score_threshold': 0.0},
    }
    data = {'input_path': record_pattern}
    cls.override = json.dumps(
      {'task': {'model': model, 'train_data': data, 'validation_data': data}}
    )
    params = experiment_config.build_experiment_config('vild_demo', (), cls.override)
    vild_model = task_factory.get_task(params.task).build_model()
    cls.run_dir = os.path.join(cls.root, 'run')
    tf.train.CheckpointManager(tf.train.Checkpoint(model=vild_model), cls.run_dir, 1).save()

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root)
    super().tearDownClass()

  def predict(self, *args: str) -> tuple[str, list[dict]]:
    output_dir = tempfile.mkdtemp(dir=self.root)
    code, stdout, stderr = run_cli(
      predict.main,
      '--experiment=vild_demo',
      f'--params_override={self.override}',
      f'--checkpoint={self.run_dir}',
      f'--input={self.folder}',
      f'--output_dir={output_dir}',
      '--templates=simple',
      *args,
    )
    self.assertEqual(code, 0, stderr)
    return stdout, read_json(os.path.join(output_dir, 'predictions.json'))

  def test_detections_follow_the_named_categories(self):
    stdout, seven_nine = self.predict('--categories=seven,nine')
    self.assertIn('class names: --categories (2 named)', stdout)
    self.assertNotEmpty(seven_nine)
    self.assertEqual({r['category_id'] for r in seven_nine}, {1, 2})
    _, nine_seven = self.predict('--categories=nine,seven')

    def detections(results, swap):
      return sorted(
        (r['image_id'], round(r['score'], 4), 3 - r['category_id'] if swap else r['category_id'])
        for r in results
      )

    self.assertEqual(detections(nine_seven, swap=True), detections(seven_nine, swap=False))
    names_file = os.path.join(self.root, 'names.txt')
    with open(names_file, 'w') as f:
      f.write('apple\n')
    _, apples = self.predict(f'--categories={names_file}')
    self.assertEqual({r['category_id'] for r in apples}, {1})

  def test_without_categories_the_training_names_are_drawn(self):
    stdout, results = self.predict()
    self.assertIn('class names: ', stdout)
    self.assertIn('digits.names.json', stdout)
    self.assertLessEqual({r['category_id'] for r in results}, set(range(1, 11)))

  def test_categories_need_a_vild_checkpoint(self):
    root = tempfile.mkdtemp(dir=self.get_temp_dir())
    assert_user_error(
      self,
      run_cli(
        predict.main,
        '--experiment=retinanet_resnetfpn_coco',
        f'--params_override={TINY_RETINANET}',
        f'--input={self.folder}',
        f'--output_dir={root}',
        f'--checkpoint={root}',
        '--categories=seven',
      ),
      '--categories needs a ViLD experiment',
    )


if __name__ == '__main__':
  tf.test.main()
