"""Tests for tools/extract_features.py on tiny moving digits and tiny mp4 files."""

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from official.core import task_factory

from projects.common import (
  experiment_config,
  tfrecords,
  video_decode,
  video_features,
  video_listing,
)
from projects.common.testing import tiny_data
from tools import extract_features

TINY_WIDTH = 'task.model.backbone.slim_r3d.width_multiplier=0.125'


def tiny_override(info) -> str:
  return (
    f'{TINY_WIDTH},task.train_data.input_path={info.train_pattern},'
    f'task.validation_data.input_path={info.validation_pattern}'
  )


def build_and_save(experiment: str, override: str, prefix: str, **extra_items):
  """Builds the experiment's model, moves its weights off their initial values, saves it.

  Scaling keeps activations in range; batch-norm gammas and variances then differ from 1 too.
  """
  params = experiment_config.build_experiment_config(experiment, (), override)
  model = task_factory.get_task(params.task).build_model()
  rng = np.random.RandomState(0)
  for variable in model.variables:
    variable.assign(variable * rng.uniform(0.8, 1.2, variable.shape).astype(np.float32))
  items = {name: getattr(model, name) for name in extra_items}
  return params, model, tf.train.Checkpoint(model=model, **items).write(prefix)


def run_cli(main: Callable[[list[str]], int], *args: str) -> tuple[int, str, str]:
  """Runs a tool's `main` in process: (exit code, stdout, stderr)."""
  stdout, stderr = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
    code = main(list(args))
  return code, stdout.getvalue(), stderr.getvalue()


def run_main(*args: str) -> tuple[int, str, str]:
  return run_cli(extract_features.main, *args)


def assert_user_error(test: tf.test.TestCase, result: tuple[int, str, str], expected: str):
  """The tool exited 2 with one line on stderr holding `expected`."""
  code, _, stderr = result
  test.assertEqual(code, 2, stderr)
  test.assertLen(stderr.strip().splitlines(), 1, stderr)
  test.assertIn(expected, stderr)


def read_records(pattern: str) -> list[dict]:
  files = sorted(tf.io.gfile.glob(pattern))
  return [tfrecords.parse_video_example(r) for r in tf.data.TFRecordDataset(files)]


class TinyDemoCheckpointMixin:
  """Tiny moving digits and a saved `video_classification_demo` model at 1/8 width.

  A mixin, not a TestCase, so that test runners do not collect it wherever it is imported.
  """

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.info = tiny_data.tiny_moving_mnist(os.path.join(cls.root, 'data'))
    cls.override = tiny_override(cls.info)
    cls.params, cls.model, cls.checkpoint = build_and_save(
      'video_classification_demo', cls.override, os.path.join(cls.root, 'ckpt', 'ckpt-1')
    )

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()


class ExtractFeaturesTest(TinyDemoCheckpointMixin, tf.test.TestCase):
  def extract(
    self, *args: str, input_path: str | None = None, expected_stderr: str = ''
  ) -> dict[str, np.ndarray]:
    output = os.path.join(tempfile.mkdtemp(dir=self.root), 'features.npz')
    code, stdout, stderr = run_main(
      '--experiment=video_classification_demo',
      f'--params_override={self.override}',
      f'--input={input_path or self.info.validation_pattern}',
      f'--output={output}',
      *(args or (f'--checkpoint={self.checkpoint}',)),
    )
    self.assertEqual(code, 0, stderr)
    self.assertIn('written to', stdout)
    self.assertIn(expected_stderr, stderr)
    with np.load(output) as arrays:
      return dict(arrays)

  def test_tfrecords_give_one_feature_per_video_deterministically(self):
    arrays = self.extract()
    records = read_records(self.info.validation_pattern)
    self.assertEqual(arrays['features'].dtype, np.float32)
    self.assertEqual(arrays['features'].shape, (len(records), 64))  # 512 channels x 0.125.
    self.assertEqual(
      arrays['video_ids'].tolist(), [r[tfrecords.VIDEO_ID_KEY].numpy().decode() for r in records]
    )
    self.assertEqual(
      arrays['labels'].tolist(), [int(r[tfrecords.LABEL_INDEX_KEY][0]) for r in records]
    )
    again = self.extract()
    for key, values in arrays.items():
      np.testing.assert_array_equal(again[key], values, err_msg=key)

  def test_multi_view_feature_is_mean_of_single_views(self):
    arrays = self.extract(
      f'--checkpoint={self.checkpoint}', '--num_clips=2', '--num_crops=3', '--batch_size=4'
    )
    sampling = video_features.ViewSampling.from_data_config(
      self.params.task.validation_data, num_clips=2, num_crops=3
    )
    for record, feature in zip(
      read_records(self.info.validation_pattern), arrays['features'], strict=True
    ):
      views = video_features.sample_views(record[tfrecords.IMAGE_KEY], sampling)
      self.assertLen(views, 6)
      single_views = [
        video_features.clip_features(self.model.backbone, views[i : i + 1], False)[0]
        for i in range(len(views))
      ]
      self.assertAllClose(feature, np.mean(single_views, axis=0), rtol=1e-5, atol=1e-5)

  def test_raw_videos_match_tfrecords_of_the_same_frames(self):
    folder = os.path.join(self.root, 'videos')
    os.makedirs(os.path.join(folder, 'a'))
    yy, xx = np.mgrid[0:48, 0:64]
    video_ids = ['a/one.mp4', 'two.mp4']
    for i, video_id in enumerate(video_ids):
      frames = [
        np.stack([(3 * xx + 9 * t + 60 * i) % 256, 4 * yy, np.full_like(xx, 100 + 10 * t)], -1)
        for t in range(12)
      ]
      video_decode.write_video(os.path.join(folder, video_id), [f.astype(np.uint8) for f in frames])
    open(os.path.join(folder, 'broken.mp4'), 'w').close()
    csv_path = os.path.join(folder, 'videos.csv')
    with open(csv_path, 'w') as f:
      f.write('a/one.mp4,3\nbroken.mp4,1\ntwo.mp4,7\n')
    # The same frames, as video_to_tfrecord --short_side=32 would store them (near-lossless JPEG).
    examples = []
    for video_id, label in zip(video_ids, [3, 7], strict=True):
      frames = np.stack(
        [f for f, _ in video_decode.iter_frames(os.path.join(folder, video_id), short_side=32)]
      )
      encoded = tfrecords.encode_jpeg_frames(frames, quality=100)
      examples.append(tfrecords.make_video_example(encoded, [label], video_id=video_id))
    (tfrecord,) = tfrecords.write_sharded(examples, os.path.join(self.root, 'raw'), 1)

    # A video that cannot be decoded is reported and skipped; --allow_failures exits 0.
    from_csv = self.extract(
      f'--checkpoint={self.checkpoint}',
      '--allow_failures',
      input_path=csv_path,
      expected_stderr='failed: broken.mp4: empty file',
    )
    from_tfrecord = self.extract(input_path=tfrecord)
    self.assertEqual(from_csv['video_ids'].tolist(), video_ids)
    self.assertEqual(from_csv['labels'].tolist(), [3, 7])
    # A folder gives the same videos (ids relative to it, sorted), without labels.
    listed = video_listing.list_videos(folder, folder_labels=False).videos
    self.assertEqual([video.video_id for video in listed], ['a/one.mp4', 'broken.mp4', 'two.mp4'])
    self.assertEqual([video.label for video in listed], ['', '', ''])
    # Only JPEG's loss (4:2:0 chroma, even at quality 100) separates the two routes: about 1% of
    # the feature's norm here, against 8% between the two videos.
    raw, stored = from_csv['features'], from_tfrecord['features']
    distances = np.linalg.norm(raw[:, np.newaxis] - stored[np.newaxis], axis=-1)
    relative_errors = np.diag(distances) / np.linalg.norm(stored, axis=1)
    self.assertAllLess(relative_errors, 0.03)
    self.assertAllEqual(np.argmin(distances, axis=1), [0, 1])

  def test_cvrl_linear_eval_model_reads_pretraining_backbone(self):
    # A CVRL pretraining checkpoint as train.py writes it (with the top-level `backbone`), read
    # through the linear-evaluation classifier's `.backbone`: the features must be the
    # pretraining model's own pooled `features` output.
    params, pretrain_model, checkpoint = build_and_save(
      'cvrl_demo', self.override, os.path.join(self.root, 'cvrl', 'ckpt-1'), backbone=True
    )
    output = os.path.join(self.root, 'cvrl_linear_eval.npz')
    code, _, stderr = run_main(
      '--experiment=cvrl_linear_eval_demo',
      f'--params_override={self.override}',
      f'--checkpoint={checkpoint}',
      f'--input={self.info.validation_pattern}',
      f'--output={output}',
      '--num_clips=1',
    )
    self.assertEqual(code, 0, stderr)
    sampling = video_features.ViewSampling.from_data_config(params.task.validation_data)
    views = tf.concat(
      [
        video_features.sample_views(r[tfrecords.IMAGE_KEY], sampling)
        for r in read_records(self.info.validation_pattern)
      ],
      axis=0,
    )
    expected = pretrain_model(tf.cast(views, tf.float32) / 255.0, training=False)['features']
    with np.load(output) as arrays:
      self.assertAllClose(arrays['features'], expected, rtol=1e-5, atol=1e-5)

  def test_user_errors_are_one_line(self):
    other = tf.train.Checkpoint(model=tf.train.Checkpoint(v=tf.Variable(1.0))).write(
      os.path.join(self.root, 'other', 'ckpt-1')
    )
    bad_csv = os.path.join(self.root, 'bad.csv')
    with open(bad_csv, 'w') as f:
      f.write('path,label,speed\nx.mp4,1,2\n')
    cases = {
      'checkpoint of another model': (
        [f'--checkpoint={other}', f'--input={self.info.validation_pattern}'],
        f"checkpoint '{other}' does not hold the weights of this experiment's backbone",
      ),
      'missing checkpoint': (
        [f'--checkpoint={self.root}/nothing', f'--input={self.info.validation_pattern}'],
        f"checkpoint '{self.root}/nothing' not found",
      ),
      'input matching nothing': (
        [f'--checkpoint={self.checkpoint}', '--input=/nonexistent/*.tfrecord'],
        "--input '/nonexistent/*.tfrecord' is not a folder, a .csv file or a TFRecord pattern",
      ),
      'bad csv header': (
        [f'--checkpoint={self.checkpoint}', f'--input={bad_csv}'],
        'header is path,label,speed',
      ),
      'not a SavedModel': (
        [f'--saved_model={self.root}', f'--input={self.info.validation_pattern}'],
        'holds no SavedModel',
      ),
    }
    for name, (args, expected) in cases.items():
      with self.subTest(name):
        output = os.path.join(self.root, 'never.npz')
        result = run_main(
          '--experiment=video_classification_demo',
          f'--params_override={self.override}',
          f'--output={output}',
          *args,
        )
        assert_user_error(self, result, expected)
        self.assertFalse(os.path.exists(output))


if __name__ == '__main__':
  tf.test.main()
