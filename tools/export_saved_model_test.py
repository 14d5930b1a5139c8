"""Tests for tools/export_saved_model.py: the reloaded SavedModel matches the in-process model."""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf
from official.core import task_factory, train_utils
from official.vision.serving import detection

from projects.common import experiment_config
from projects.common.detection import tiny_coco
from tools import export_saved_model, predict
from tools.extract_features_test import (
  TinyDemoCheckpointMixin,
  assert_user_error,
  run_cli,
  run_main,
  tiny_override,
)


def run_export(*args: str) -> tuple[int, str, str]:
  return run_cli(export_saved_model.main, *args)


class ExportSavedModelTest(TinyDemoCheckpointMixin, tf.test.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.export_dir = os.path.join(cls.root, 'export')
    code, cls.stdout, stderr = run_export(
      '--experiment=video_classification_demo',
      f'--params_override={cls.override}',
      f'--checkpoint={cls.checkpoint}',
      f'--export_dir={cls.export_dir}',
    )
    assert code == 0, stderr
    cls.frames = np.random.RandomState(0).randint(0, 256, [2, 8, 32, 32, 3]).astype(np.uint8)

  def test_reloaded_signatures_match_the_model(self):
    loaded = tf.saved_model.load(self.export_dir)
    self.assertIn('serving_default: frames uint8 [None, 8, 32, 32, 3]', self.stdout)
    self.assertTrue(os.path.exists(os.path.join(self.export_dir, 'params.yaml')))

    # In process, the training pipeline's normalisation (zero_centering_image=False: [0, 1]).
    images = tf.constant(self.frames, tf.float32) / 255.0
    logits = self.model({'image': images}, training=False)
    served = loaded.signatures['serving_default'](frames=tf.constant(self.frames))
    self.assertCountEqual(served, ['logits', 'probabilities'])
    self.assertEqual(served['logits'].shape, (2, 10))
    self.assertAllClose(served['logits'], logits, rtol=1e-5, atol=1e-5)
    self.assertAllClose(served['probabilities'], tf.nn.softmax(logits), rtol=1e-5, atol=1e-6)

    features = loaded.signatures['features'](frames=tf.constant(self.frames))['features']
    expected = tf.reduce_mean(self.model.backbone(images, training=False)['5'], axis=[1, 2, 3])
    self.assertEqual(features.shape, (2, 64))
    self.assertAllClose(features, expected, rtol=1e-5, atol=1e-5)

  def test_saved_model_features_equal_checkpoint_features(self):
    outputs = {}
    for source in (f'--checkpoint={self.checkpoint}', f'--saved_model={self.export_dir}'):
      outputs[source] = os.path.join(tempfile.mkdtemp(dir=self.root), 'features.npz')
      code, _, stderr = run_main(
        '--experiment=video_classification_demo',
        f'--params_override={self.override}',
        f'--input={self.info.validation_pattern}',
        f'--output={outputs[source]}',
        source,
      )
      self.assertEqual(code, 0, stderr)
    from_checkpoint, from_saved_model = (np.load(path) for path in outputs.values())
    np.testing.assert_array_equal(from_checkpoint['video_ids'], from_saved_model['video_ids'])
    self.assertAllClose(from_checkpoint['features'], from_saved_model['features'], rtol=1e-5)

  def test_clip_shape_overrides_and_zero_centering(self):
    params = experiment_config.build_experiment_config(
      'video_classification_demo',
      (),
      f'{self.override},task.validation_data.zero_centering_image=true',
    )
    params = export_saved_model.with_clip_shape(params, (4, 24, None))
    self.assertEqual(params.task.train_data.feature_shape, [4, 24, 32, 3])
    module, _ = export_saved_model.build_serving_module(params, self.checkpoint)
    self.assertEqual(module.frames_spec.shape.as_list(), [None, 4, 24, 32, 3])
    for function in module.signatures().values():
      (spec,) = tf.nest.flatten(function.structured_input_signature)
      self.assertEqual(spec.shape.as_list(), [None, 4, 24, 32, 3])
    # A model built for 4x24x32 clips (Model Garden's fixes its input shape) with the weights.
    model = task_factory.get_task(params.task).build_model()
    tf.train.Checkpoint(model=model).read(self.checkpoint).assert_existing_objects_matched()
    frames = self.frames[:, :4, :24]
    images = tf.constant(frames, tf.float32) * (2.0 / 255.0) - 1.0
    expected = tf.reduce_mean(model.backbone(images, training=False)['5'], axis=[1, 2, 3])
    self.assertAllClose(module.features(frames)['features'], expected, rtol=1e-5, atol=1e-5)
    self.assertAllClose(
      module.serve(frames)['logits'],
      model({'image': images}, training=False),
      rtol=1e-5,
      atol=1e-5,
    )

  def test_user_errors(self):
    backbone_only = tf.train.Checkpoint(backbone=self.model.backbone).write(
      os.path.join(self.root, 'backbone_only', 'ckpt-1')
    )
    cases = {
      'checkpoint without the head': (
        'video_classification_demo',
        backbone_only,
        f"checkpoint '{backbone_only}' does not hold this experiment's whole model",
      ),
      'unknown experiment': (
        'video_classification_dmeo',
        self.checkpoint,
        "unknown experiment 'video_classification_dmeo'",
      ),
    }
    for name, (experiment, checkpoint, expected) in cases.items():
      with self.subTest(name):
        export_dir = os.path.join(self.root, 'never')
        result = run_export(
          f'--experiment={experiment}',
          f'--params_override={self.override}',
          f'--checkpoint={checkpoint}',
          f'--export_dir={export_dir}',
        )
        assert_user_error(self, result, expected)
        self.assertFalse(os.path.exists(export_dir))


class MovingAverageExportTest(TinyDemoCheckpointMixin, tf.test.TestCase):
  """A run trained as train.py trains it, with weight averaging and a kept best checkpoint."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.ema_override = (
      f'{tiny_override(cls.info)},task.train_data.global_batch_size=2,'
      'trainer.optimizer_config.ema.average_decay=0.5,'
      'trainer.optimizer_config.ema.trainable_weights_only=false,'
      'trainer.best_checkpoint_export_subdir=best_ckpt,'
      'trainer.best_checkpoint_eval_metric=top_1_accuracy'
    )
    params = experiment_config.build_experiment_config(
      'video_classification_demo', (), cls.ema_override
    )
    cls.model_dir = os.path.join(cls.root, 'ema_run')
    strategy = tf.distribute.OneDeviceStrategy('/cpu:0')
    with strategy.scope():
      task = task_factory.get_task(params.task, logging_dir=cls.model_dir)
      trainer = train_utils.create_trainer(
        params,
        task,
        train=True,
        evaluate=True,
        checkpoint_exporter=train_utils.maybe_create_best_ckpt_exporter(params, cls.model_dir),
      )
    manager = tf.train.CheckpointManager(trainer.checkpoint, cls.model_dir, max_to_keep=3)
    cls.frames = np.random.RandomState(0).randint(0, 256, [2, 8, 32, 32, 3]).astype(np.uint8)
    images = tf.constant(cls.frames, tf.float32) / 255.0

    def train_and_evaluate(num_steps: int) -> tuple[str, np.ndarray]:
      """Trains, saves, then returns the model's outputs as evaluation computes them."""
      trainer.train(tf.constant(num_steps))
      prefix = manager.save(checkpoint_number=trainer.global_step)
      with strategy.scope():
        trainer.eval_begin()  # Swaps the moving averages in.
        logits = trainer.model({'image': images}, training=False).numpy()
        trainer.eval_end()  # Keeps the first evaluation as best (no later one scores higher).
      return prefix, logits

    cls.best_logits = train_and_evaluate(3)[1]
    cls.latest, cls.latest_logits = train_and_evaluate(2)
    cls.trained_logits = trainer.model({'image': images}, training=False).numpy()

  def _export(self, checkpoint: str) -> tuple[np.ndarray, str, str]:
    """(served logits, stdout, export dir) of the run exported from `checkpoint`."""
    export_dir = tempfile.mkdtemp(dir=self.root)
    code, stdout, stderr = run_export(
      '--experiment=video_classification_demo',
      f'--params_override={self.ema_override}',
      f'--checkpoint={checkpoint}',
      f'--export_dir={export_dir}',
    )
    self.assertEqual(code, 0, stderr)
    served = tf.saved_model.load(export_dir).signatures['serving_default']
    return served(frames=tf.constant(self.frames))['logits'].numpy(), stdout, export_dir

  def test_run_folder_exports_the_best_checkpoint_as_evaluated(self):
    self.assertNotAllClose(self.best_logits, self.latest_logits)
    logits, stdout, export_dir = self._export(self.model_dir)
    best = tf.train.latest_checkpoint(os.path.join(self.model_dir, 'best_ckpt'))
    self.assertIn(f'checkpoint: {best} (best checkpoint (top_1_accuracy 0.0000 at step 3)', stdout)
    self.assertAllClose(logits, self.best_logits, rtol=1e-5, atol=1e-5)

    self._assert_features_match_export(self.model_dir, export_dir, f'checkpoint: {best} (best')

  def _assert_features_match_export(self, checkpoint: str, export_dir: str, expected_stdout: str):
    """extract_features from `checkpoint` takes the weights exported from it to `export_dir`."""
    outputs, stdouts = {}, {}
    for source in (f'--checkpoint={checkpoint}', f'--saved_model={export_dir}'):
      outputs[source] = os.path.join(tempfile.mkdtemp(dir=self.root), 'features.npz')
      code, stdouts[source], stderr = run_main(
        '--experiment=video_classification_demo',
        f'--params_override={self.ema_override}',
        f'--input={self.info.validation_pattern}',
        f'--output={outputs[source]}',
        source,
      )
      self.assertEqual(code, 0, stderr)
    self.assertIn(expected_stdout, stdouts[f'--checkpoint={checkpoint}'])
    from_checkpoint, from_saved_model = (np.load(path)['features'] for path in outputs.values())
    self.assertAllClose(from_checkpoint, from_saved_model, rtol=1e-5, atol=1e-6)

  def test_training_checkpoint_exports_its_moving_averages(self):
    logits, stdout, export_dir = self._export(self.latest)
    expected = f'checkpoint: {self.latest} (checkpoint given; moving-average weights)'
    self.assertIn(expected, stdout)
    self.assertNotAllClose(self.latest_logits, self.trained_logits)
    self.assertAllClose(logits, self.latest_logits, rtol=1e-5, atol=1e-5)
    # The backbone alone, as extract_features restores it, gets the averages too.
    self._assert_features_match_export(self.latest, export_dir, expected)


# The detection demos without their built-in data (export needs none), with 2 classes (the
# per-class NMS dominates tracing), keeping every detection (a freshly initialised detector
# scores below the default 0.05).
DETECTION_OVERRIDE = (
  "{task: {train_data: {builtin_dataset: ''}, validation_data: {builtin_dataset: ''}, "
  'model: {num_classes: 3, detection_generator: {pre_nms_score_threshold: 0.0}}}}'
)
DETECTION_OUTPUTS = (
  'detection_boxes',
  'detection_classes',
  'detection_scores',
  'image_info',
  'num_detections',
)


class DetectionExportTest(tf.test.TestCase):
  """Freshly initialised detection demos (128^2, their smallest input) exported and served."""

  def _export_and_serve(self, experiment: str) -> dict[str, np.ndarray]:
    """Exports `experiment`'s model, checks the reloaded signature against the model in process
    and tools/predict.py on the SavedModel; returns the served outputs of one image."""
    root = self.get_temp_dir()
    params = experiment_config.build_experiment_config(experiment, (), DETECTION_OVERRIDE)
    model = task_factory.get_task(params.task).build_model()
    reference = detection.DetectionModule(
      params, model=model, batch_size=None, input_image_size=[128, 128]
    )
    image = np.random.RandomState(0).randint(0, 256, [1, 48, 80, 3]).astype(np.uint8)
    # One eager call creates every variable, several times faster than tracing the model.
    expected = reference.serve(tf.constant(image))
    checkpoint = tf.train.Checkpoint(model=model).write(os.path.join(root, 'ckpt', 'ckpt-1'))

    export_dir = os.path.join(root, 'export')
    code, stdout, stderr = run_export(
      f'--experiment={experiment}',
      f'--params_override={DETECTION_OVERRIDE}',
      f'--checkpoint={checkpoint}',
      f'--export_dir={export_dir}',
    )
    self.assertEqual(code, 0, stderr)
    self.assertIn(f'checkpoint: {checkpoint} (checkpoint given)', stdout)
    self.assertIn('serving_default: inputs uint8 [None, None, None, 3] -> detection_boxes', stdout)
    self.assertTrue(os.path.exists(os.path.join(export_dir, 'params.yaml')))

    loaded = tf.saved_model.load(export_dir)
    served = loaded.signatures['serving_default'](inputs=tf.constant(image))
    for key in DETECTION_OUTPUTS:
      self.assertIn(key, served)
    self.assertCountEqual(served, expected)
    max_detections = params.task.model.detection_generator.max_num_detections
    self.assertEqual(served['detection_boxes'].shape, (1, max_detections, 4))
    self.assertAllEqual(served['num_detections'], expected['num_detections'])
    for key in ('detection_scores', 'detection_boxes', 'image_info'):
      self.assertAllClose(served[key], expected[key], rtol=1e-4, atol=1e-4, msg=key)

    # tools/predict.py reads the export; detections come back in the original image's pixels.
    images_dir = os.path.join(root, 'images')
    tiny_coco.write_jpeg(os.path.join(images_dir, '7.jpg'), height=48, width=80)
    output_dir = os.path.join(root, 'predictions')
    code, stdout, stderr = run_cli(
      predict.main,
      f'--experiment={experiment}',
      f'--params_override={DETECTION_OVERRIDE}',
      f'--saved_model={export_dir}',
      f'--input={images_dir}',
      f'--output_dir={output_dir}',
      '--score_threshold=0',
    )
    self.assertEqual(code, 0, stderr)
    with open(os.path.join(output_dir, 'predictions.json')) as f:
      results = json.load(f)
    self.assertNotEmpty(results)
    for result in results:
      x, y, w, h = result['bbox']
      self.assertTrue(0 <= x <= x + w <= 80 and 0 <= y <= y + h <= 48, result)
    self.predictions = results
    return {key: value.numpy() for key, value in served.items()}

  def test_retinanet_demo(self):
    served = self._export_and_serve('retinanet_spinenet_demo')
    self.assertNotIn('detection_masks', served)
    self.assertNotIn('segmentation', self.predictions[0])

  def test_maskrcnn_demo_serves_masks(self):
    served = self._export_and_serve('maskrcnn_spinenet_demo')
    masks = served['detection_masks']
    self.assertEqual(masks.shape[:2], served['detection_boxes'].shape[:2])
    self.assertTrue(np.all((masks >= 0) & (masks <= 1)))
    self.assertIn('segmentation', self.predictions[0])

  def test_clip_size_flags_are_refused(self):
    result = run_export(
      '--experiment=retinanet_spinenet_demo',
      f'--params_override={DETECTION_OVERRIDE}',
      '--checkpoint=/nonexistent',
      f'--export_dir={self.get_temp_dir()}/never',
      '--height=64',
    )
    assert_user_error(self, result, 'serves images of any size, resized to task.model.input_size')


if __name__ == '__main__':
  tf.test.main()
