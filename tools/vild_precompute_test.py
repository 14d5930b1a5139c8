"""End-to-end tests of tools/vild_precompute.py on tiny COCO TFRecords and a tiny teacher."""

import csv
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from projects.common import sharded_conversion
from projects.common.detection import coco_conversion, tiny_coco
from projects.vild.dataloaders import roi_features
from projects.vild.teacher import image_encoder, precompute
from tools import vild_precompute

CROP_SIZE = 8
EMBEDDING_DIM = 6
NUM_PROPOSALS = 4
# Normalised yxyx proposals for the tiny images (ids 11, 12, 13); image 12 gets more than M.
GIVEN = {
  '11': [[0.1, 0.1, 0.6, 0.5], [0.0, 0.5, 1.0, 1.0]],
  '12': [
    [0.2, 0.2, 0.4, 0.4],
    [0.5, 0.1, 0.9, 0.3],
    [0.1, 0.6, 0.3, 0.9],
    [0, 0, 1, 1],
    [0, 0, 0.5, 0.5],
  ],
  '13': [[0.3, 0.3, 0.7, 0.8]],
}


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> dict:
  """Tiny detection TFRecords (2 shards), a tiny random teacher (.keras) and a proposals JSON."""
  root = str(tmp_path_factory.mktemp('vild_precompute'))
  image_dir, json_path = tiny_coco.write_dataset(root, tiny_coco.coco_dict())
  coco_conversion.convert_coco(
    image_dir, json_path, os.path.join(root, 'records'), num_shards=2, num_workers=0
  )
  encoder_path = os.path.join(root, 'teacher.keras')
  tf_keras.utils.set_random_seed(0)
  image_encoder.build_image_encoder(CROP_SIZE, EMBEDDING_DIM, widths=(4,)).save(encoder_path)
  proposals_path = os.path.join(root, 'proposals.json')
  with open(proposals_path, 'w') as f:
    json.dump(GIVEN, f)
  return {
    'root': root,
    'pattern': os.path.join(root, 'records', 'instances-*.tfrecord'),
    'encoder': encoder_path,
    'proposals': proposals_path,
  }


def _run(dataset, output_dir, *extra) -> int:
  return vild_precompute.main(
    [
      f'--input_pattern={dataset["pattern"]}',
      f'--output_dir={output_dir}',
      f'--image_encoder={dataset["encoder"]}',
      f'--num_proposals={NUM_PROPOSALS}',
      *extra,
    ]
  )


def _records(pattern: str) -> dict[str, tf.train.Example]:
  """Examples by image/source_id."""
  examples = {}
  for path in sorted(glob.glob(pattern)):
    for record in tf.data.TFRecordDataset(path):
      example = tf.train.Example.FromString(record.numpy())
      examples[example.features.feature['image/source_id'].bytes_list.value[0].decode()] = example
  return examples


def _rois(example: tf.train.Example) -> tuple[np.ndarray, np.ndarray]:
  parsed = tf.io.parse_single_example(example.SerializeToString(), roi_features.parse_spec())
  boxes, embeddings = roi_features.decode_rois(parsed)
  return boxes.numpy(), embeddings.numpy()


def _teacher_embedding(model, image: np.ndarray, box: list) -> np.ndarray:
  """ViLD's recipe written out: the 1x and the 1.5x (clipped) crop, embeddings averaged."""
  box = np.asarray(box, np.float32)
  centre, size = (box[:2] + box[2:]) / 2, box[2:] - box[:2]
  large = np.clip(np.concatenate([centre - 0.75 * size, centre + 0.75 * size]), 0, 1)
  crops = tf.image.crop_and_resize(
    image[np.newaxis].astype(np.float32), np.stack([box, large]), [0, 0], [CROP_SIZE, CROP_SIZE]
  )
  mean = model(crops).numpy().mean(axis=0)
  return mean / np.linalg.norm(mean)


def test_given_proposals_round_trip(dataset, tmp_path, capsys):
  output_dir = str(tmp_path / 'out')
  assert _run(dataset, output_dir, f'--proposals={dataset["proposals"]}') == 0
  assert '3 images: 3 written, 0 not written' in capsys.readouterr().out
  inputs = _records(dataset['pattern'])
  outputs = _records(os.path.join(output_dir, 'instances_rois-*-of-00002.tfrecord'))
  assert sorted(outputs) == sorted(GIVEN)
  model = tf_keras.models.load_model(dataset['encoder'], compile=False)
  for source_id, example in outputs.items():
    boxes, embeddings = _rois(example)
    given = GIVEN[source_id][:NUM_PROPOSALS]
    assert boxes.shape == (NUM_PROPOSALS, 4)
    assert embeddings.shape == (NUM_PROPOSALS, EMBEDDING_DIM)
    np.testing.assert_allclose(boxes[: len(given)], given, atol=1e-6)
    # Padding rows are all zeros (boxes and embeddings).
    np.testing.assert_array_equal(boxes[len(given) :], 0)
    np.testing.assert_array_equal(embeddings[len(given) :], 0)
    np.testing.assert_allclose(np.linalg.norm(embeddings[: len(given)], axis=1), 1, atol=1e-5)
    image = tf.io.decode_jpeg(example.features.feature['image/encoded'].bytes_list.value[0])
    for box, embedding in zip(given, embeddings, strict=False):
      np.testing.assert_allclose(
        embedding, _teacher_embedding(model, image.numpy(), box), atol=1e-5
      )
    # Every field of the input is kept.
    original = inputs[source_id].features.feature
    for key, feature in original.items():
      assert example.features.feature[key] == feature, key
    assert set(example.features.feature) - set(original) == {
      *roi_features.ROI_BOX_KEYS,
      roi_features.ROI_FEATURE_KEY,
    }


def test_jittered_groundtruth_covers_every_object_then_random_boxes(dataset, tmp_path):
  output_dir = str(tmp_path / 'out')
  assert _run(dataset, output_dir) == 0
  deviations = []
  for example in _records(os.path.join(output_dir, '*.tfrecord')).values():
    boxes, embeddings = _rois(example)
    truth = np.stack(
      [
        example.features.feature[f'image/object/bbox/{c}'].float_list.value
        for c in 'ymin xmin ymax xmax'.split()
      ],
      axis=-1,
    ).reshape(-1, 4)
    assert boxes.shape == (NUM_PROPOSALS, 4)
    # Jittered: near their groundtruth box, never exactly it.
    sizes = truth[:, 2:] - truth[:, :2]
    deviations.append(np.abs(boxes[: len(truth)] - truth) / np.tile(sizes, 2))
    assert np.all(boxes[:, 2:] > boxes[:, :2])  # No padding: random boxes fill up to M.
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)
  deviations = np.concatenate(deviations)
  assert (
    len(deviations) == 5 and np.all(deviations < 0.5) and np.all(np.any(deviations > 0, axis=1))
  )


def test_jittered_groundtruth_never_reads_labels():
  example = tf.train.Example()
  for coordinate, values in zip(
    ('ymin', 'xmin', 'ymax', 'xmax'), ([0.1, 0.5], [0.1, 0.2], [0.4, 0.9], [0.3, 0.6]), strict=True
  ):
    example.features.feature[f'image/object/bbox/{coordinate}'].float_list.value[:] = values
  without_labels = precompute.jittered_groundtruth_proposals(example, 5, np.random.default_rng(1))
  example.features.feature['image/object/class/label'].int64_list.value[:] = [3, 7]
  with_labels = precompute.jittered_groundtruth_proposals(example, 5, np.random.default_rng(1))
  np.testing.assert_array_equal(without_labels, with_labels)
  assert without_labels.shape == (5, 4)


def _error_rows(output_dir: str) -> list[dict]:
  with open(os.path.join(output_dir, sharded_conversion.ERRORS_FILE)) as f:
    return list(csv.DictReader(f))


def test_broken_inputs_are_named_in_errors_csv(dataset, tmp_path, capsys):
  records = str(tmp_path / 'records')
  os.makedirs(records)
  for path in glob.glob(dataset['pattern']):
    with open(path, 'rb') as f, open(os.path.join(records, os.path.basename(path)), 'wb') as g:
      g.write(f.read())
  broken = tf.train.Example()
  broken.features.feature['image/source_id'].bytes_list.value[:] = [b'99']
  broken.features.feature['image/encoded'].bytes_list.value[:] = [b'not a jpeg']
  with tf.io.TFRecordWriter(os.path.join(records, 'broken.tfrecord')) as writer:
    writer.write(b'\xff not an example')
    writer.write(broken.SerializeToString())
  with open(os.path.join(records, 'broken.tfrecord'), 'ab') as f:
    f.write(b'\x10\x00\x00')  # A record cut short.
  output_dir = str(tmp_path / 'out')
  args = [f'--output_dir={output_dir}', '--num_shards=2', f'--image_encoder={dataset["encoder"]}']
  pattern = f'--input_pattern={records}/*.tfrecord'
  assert vild_precompute.main([pattern, *args]) == 1
  rows = {row['input']: row for row in _error_rows(output_dir)}
  assert rows['broken.tfrecord:0']['reason'].startswith(precompute.UNDECODABLE_RECORD)
  assert rows['broken.tfrecord:1']['reason'].startswith(
    precompute.UNDECODABLE_IMAGE + ": image/source_id '99'"
  )
  assert rows['broken.tfrecord:2']['reason'].startswith(precompute.TRUNCATED_RECORD)
  assert {row['kind'] for row in rows.values()} == {'failed'}
  summary = json.load(open(os.path.join(output_dir, sharded_conversion.SUMMARY_FILE)))
  assert (summary['inputs'], summary['written'], summary['failed']) == (6, 3, 3)
  assert 'error: 3 of 6 images were not written' in capsys.readouterr().err
  assert vild_precompute.main([pattern, *args, '--allow_failures']) == 0


def test_missing_and_bad_proposals_are_reported(dataset, tmp_path):
  proposals = str(tmp_path / 'proposals.json')
  with open(proposals, 'w') as f:
    json.dump({'11': [[0.5, 0.5, 0.2, 0.9], [0.1, 0.1, 0.5, 0.5]], '12': [[0, 0, 1, 1]]}, f)
  output_dir = str(tmp_path / 'out')
  assert _run(dataset, output_dir, f'--proposals={proposals}', '--allow_failures') == 0
  rows = _error_rows(output_dir)
  assert [(row['kind'], row['reason'].split(':')[0]) for row in rows] == [
    ('dropped', precompute.BAD_PROPOSAL),
    ('failed', precompute.NO_PROPOSALS),
  ]
  boxes, _ = _rois(_records(os.path.join(output_dir, '*.tfrecord'))['11'])
  np.testing.assert_allclose(boxes[0], [0.1, 0.1, 0.5, 0.5])


def test_rerun_keeps_finished_shards(dataset, tmp_path, capsys):
  output_dir = str(tmp_path / 'out')
  assert _run(dataset, output_dir) == 0
  shards = sorted(glob.glob(os.path.join(output_dir, '*.tfrecord')))
  before = {path: open(path, 'rb').read() for path in shards}
  capsys.readouterr()
  assert _run(dataset, output_dir) == 0
  assert '(2 reused from an earlier run)' in capsys.readouterr().out
  assert {path: open(path, 'rb').read() for path in shards} == before
  # Other settings redo the shards.
  assert _run(dataset, output_dir, '--seed=1') == 0
  assert '(0 reused from an earlier run)' in capsys.readouterr().out


@pytest.mark.parametrize(
  'flags, message',
  [
    (['--input_pattern=/nonexistent/*.tfrecord'], 'no files match'),
    (['--image_encoder=/nonexistent.keras'], 'cannot use the image encoder'),
    (['--proposals=/nonexistent.json'], 'cannot read proposals'),
  ],
)
def test_unusable_inputs_exit_2(dataset, tmp_path, capsys, flags, message):
  defaults = {
    'input_pattern': dataset['pattern'],
    'image_encoder': dataset['encoder'],
    'output_dir': str(tmp_path / 'out'),
  }
  given = {flag.split('=')[0].lstrip('-') for flag in flags}
  argv = [f'--{k}={v}' for k, v in defaults.items() if k not in given] + flags
  assert vild_precompute.main(argv) == 2
  assert message in capsys.readouterr().err


def test_rpn_flags(dataset, tmp_path, capsys):
  common = [
    f'--input_pattern={dataset["pattern"]}',
    f'--output_dir={tmp_path}',
    f'--image_encoder={dataset["encoder"]}',
  ]
  with pytest.raises(SystemExit) as exit_info:
    vild_precompute.main([*common, '--rpn_checkpoint=/x'])
  assert exit_info.value.code == 2
  assert '--rpn_checkpoint and --rpn_experiment go together' in capsys.readouterr().err
  rpn = ['--rpn_checkpoint=/x', '--rpn_experiment=retinanet_resnetfpn_coco']
  assert vild_precompute.main([*common, *rpn]) == 2
  assert 'need a Mask R-CNN experiment' in capsys.readouterr().err
