"""Tests for coco_conversion: JSON checks, per-image round trips through Model Garden's decoder,
and the reason given for each kind of bad input."""

import csv
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from official.vision.dataloaders import maskrcnn_input, tf_example_decoder
from pycocotools import mask as coco_mask

from projects.common import sharded_conversion
from projects.common.detection import coco_conversion, tiny_coco

H, W = tiny_coco.IMAGE_HEIGHT, tiny_coco.IMAGE_WIDTH


def _tasks(tmp_path, annotations, include_masks=True, image_subdir=''):
  image_dir, json_path = tiny_coco.write_dataset(str(tmp_path), annotations, image_subdir)
  dataset = coco_conversion.load_annotations(json_path)
  return {
    t.file_name: t for t in coco_conversion.image_tasks(dataset, image_dir, include_masks)
  }, image_dir


def _decode(result, include_masks=True):
  assert len(result.records) == 1
  decoder = tf_example_decoder.TfExampleDecoder(include_mask=include_masks)
  return {k: v.numpy() for k, v in decoder.decode(tf.constant(result.records[0])).items()}


def _expected_mask(segmentation):
  if isinstance(segmentation, list):
    return coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(segmentation, H, W)))
  rle = dict(segmentation)
  if isinstance(rle['counts'], list):
    return coco_mask.decode(coco_mask.frPyObjects(rle, H, W))
  return coco_mask.decode(rle)


@pytest.mark.parametrize('seed', range(4))
def test_compressed_rle_counts_inverts_pycocotools_encode(seed):
  rng = np.random.default_rng(seed)
  mask = (rng.random((H, W)) < [0.02, 0.5, 0.98, 0.3][seed]).astype(np.uint8)
  mask[0, 0] = seed % 2  # Masks that start with a 1 begin with an empty run of 0s.
  counts = coco_conversion.compressed_rle_counts(coco_conversion.compressed_rle(mask)['counts'])
  assert counts == tiny_coco.uncompressed_rle(mask)['counts']


def test_compressed_rle_counts_rejects_truncated_and_foreign_characters():
  with pytest.raises(ValueError, match='ends inside a run'):
    coco_conversion.compressed_rle_counts('5a')  # 'a' has the "more" bit and nothing follows.
  with pytest.raises(ValueError, match='not in the RLE alphabet'):
    coco_conversion.compressed_rle_counts('5 2')


def test_round_trip_boxes_classes_and_masks_match_the_json(tmp_path):
  annotations = tiny_coco.coco_dict()
  tasks, image_dir = _tasks(tmp_path, annotations)
  by_image = {}
  for a in annotations['annotations']:
    by_image.setdefault(a['image_id'], []).append(a)
  for image in annotations['images']:
    result = coco_conversion.convert_image(tasks[image['file_name']])
    assert result.dropped == []
    decoded = _decode(result)
    expected = by_image.get(image['id'], [])
    assert decoded['source_id'] == str(image['id']).encode()
    assert (decoded['height'], decoded['width']) == (H, W)
    with open(os.path.join(image_dir, image['file_name']), 'rb') as f:
      file_pixels = tf.io.decode_jpeg(f.read()).numpy()
    np.testing.assert_array_equal(decoded['image'], file_pixels)
    np.testing.assert_array_equal(
      decoded['groundtruth_classes'], [a['category_id'] for a in expected]
    )
    np.testing.assert_array_equal(decoded['groundtruth_is_crowd'], [a['iscrowd'] for a in expected])
    np.testing.assert_allclose(decoded['groundtruth_area'], [a['area'] for a in expected])
    boxes = [
      [y / H, x / W, (y + h) / H, (x + w) / W] for x, y, w, h in (a['bbox'] for a in expected)
    ]
    np.testing.assert_allclose(
      decoded['groundtruth_boxes'].reshape(-1, 4), np.reshape(boxes, (-1, 4)), atol=1e-6
    )
    masks = decoded['groundtruth_instance_masks']
    assert masks.shape == (len(expected), H, W)
    for got, annotation in zip(masks, expected, strict=True):
      np.testing.assert_array_equal(got, _expected_mask(annotation['segmentation']))


def test_rle_masks_decode_to_the_exact_pixels(tmp_path):
  tasks, _ = _tasks(tmp_path, tiny_coco.coco_dict())
  crowd = _decode(coco_conversion.convert_image(tasks['a.jpg']))['groundtruth_instance_masks'][2]
  compressed = _decode(coco_conversion.convert_image(tasks['b.jpg']))
  np.testing.assert_array_equal(crowd, tiny_coco.block_mask(20, 0, 30, 8))
  np.testing.assert_array_equal(
    compressed['groundtruth_instance_masks'][0], tiny_coco.block_mask(5, 5, 15, 25)
  )


def test_polygon_mask_covers_its_rectangle(tmp_path):
  tasks, _ = _tasks(tmp_path, tiny_coco.coco_dict())
  mask = _decode(coco_conversion.convert_image(tasks['a.jpg']))['groundtruth_instance_masks'][0]
  # Polygon (2, 3)-(12, 11): inside pixels are set, pixels away from it are not.
  assert mask[4:10, 3:11].all()
  assert not mask[13:, :].any() and not mask[:, 14:].any()


def test_without_masks_writes_no_mask_feature(tmp_path):
  tasks, _ = _tasks(tmp_path, tiny_coco.coco_dict(), include_masks=False)
  result = coco_conversion.convert_image(tasks['a.jpg'])
  example = tf.train.Example.FromString(result.records[0])
  assert 'image/object/mask' not in example.features.feature
  decoded = _decode(result, include_masks=False)
  np.testing.assert_array_equal(decoded['groundtruth_classes'], [1, 3, 1])


def test_image_without_annotations_has_zero_objects(tmp_path):
  tasks, _ = _tasks(tmp_path, tiny_coco.coco_dict())
  decoded = _decode(coco_conversion.convert_image(tasks['c.jpg']))
  assert decoded['groundtruth_boxes'].shape == (0, 4)
  assert decoded['groundtruth_instance_masks'].shape == (0, H, W)


@pytest.mark.parametrize('image_subdir', ['train2017', ''])
def test_lvis_images_found_from_coco_url_and_carry_federated_lists(tmp_path, image_subdir):
  tasks, _ = _tasks(tmp_path, tiny_coco.lvis_dict(), image_subdir=image_subdir)
  assert sorted(tasks) == ['train2017/a.jpg', 'train2017/b.jpg', 'train2017/c.jpg']
  results = {name: coco_conversion.convert_image(task) for name, task in tasks.items()}
  example = tf.train.Example.FromString(results['train2017/b.jpg'].records[0]).features.feature
  assert example[coco_conversion.LVIS_NOT_EXHAUSTIVE_CATEGORY_IDS_KEY].int64_list.value == [1]
  assert example[coco_conversion.LVIS_NEG_CATEGORY_IDS_KEY].int64_list.value == []
  assert example['image/filename'].bytes_list.value == [b'train2017/b.jpg']
  decoded = _decode(results['train2017/a.jpg'])
  np.testing.assert_array_equal(decoded['groundtruth_classes'], [1, 3])
  np.testing.assert_array_equal(decoded['groundtruth_is_crowd'], [False, False])


def test_lvis_category_frequency_is_written_to_categories_json(tmp_path):
  _, json_path = tiny_coco.write_dataset(str(tmp_path), tiny_coco.lvis_dict())
  dataset = coco_conversion.load_annotations(json_path)
  coco_conversion.write_category_files(dataset, str(tmp_path / 'out'))
  with open(tmp_path / 'out' / coco_conversion.CATEGORIES_FILE) as f:
    categories = json.load(f)
  assert [(c['id'], c['frequency']) for c in categories] == [(1, 'f'), (3, 'r')]
  with open(tmp_path / 'out' / coco_conversion.LABEL_MAP_FILE) as f:
    assert json.load(f) == {'1': 'digit', '3': 'letter'}


def _write_json(path, value) -> str:
  with open(path, 'w') as f:
    f.write(value if isinstance(value, str) else json.dumps(value))
  return str(path)


@pytest.mark.parametrize(
  'content,message',
  [
    ('{"images": [', 'is not valid JSON'),
    ({'images': [], 'categories': tiny_coco.CATEGORIES}, "no top-level key 'annotations'"),
    ([], 'expected a JSON object'),
    ({'images': [], 'annotations': {}, 'categories': []}, "'annotations' must be a list"),
    (
      {'images': [], 'annotations': [{'id': 9, 'image_id': 1}], 'categories': tiny_coco.CATEGORIES},
      'image_id that no image has, e.g. annotation id.s. 9',
    ),
    ({'images': [], 'annotations': [], 'categories': [{'id': 0, 'name': 'bg'}]}, 'at least 1'),
    (
      {
        'images': [{'id': 'x', 'file_name': 'x.jpg'}],
        'annotations': [],
        'categories': tiny_coco.CATEGORIES,
      },
      "images.0. needs an integer id, got 'x'",
    ),
    (
      {
        'images': [{'id': 1, 'file_name': 'x.jpg'}, {'id': 1, 'file_name': 'y.jpg'}],
        'annotations': [],
        'categories': tiny_coco.CATEGORIES,
      },
      'image id 1 appears twice',
    ),
  ],
)
def test_unusable_json_names_the_file_and_what_is_wrong(tmp_path, content, message):
  path = _write_json(tmp_path / 'broken.json', content)
  with pytest.raises(coco_conversion.InputError, match=message) as error:
    coco_conversion.load_annotations(path)
  assert path in str(error.value)


def _broken_dataset() -> dict:
  """One image per image-level fault, and one image holding one annotation per annotation fault."""
  annotations = tiny_coco.coco_dict()
  annotations['images'] += [
    {'id': 21, 'file_name': 'missing.jpg', 'height': H, 'width': W},
    {'id': 22, 'file_name': 'corrupt.jpg', 'height': H, 'width': W},
    {'id': 23, 'file_name': 'wrong_size.jpg', 'height': H + 2, 'width': W},
  ]
  good = {'image_id': 12, 'area': 4.0, 'iscrowd': 0}
  annotations['annotations'] += [
    {**good, 'id': 201, 'category_id': 1, 'bbox': [1, 1, 2, 2], 'segmentation': [[1, 1, 3, 3]]},
    {**good, 'id': 202, 'category_id': 1, 'bbox': [35, 25, 10, 10], 'segmentation': [[1] * 6]},
    {**good, 'id': 203, 'category_id': 99, 'bbox': [1, 1, 2, 2], 'segmentation': [[1] * 6]},
    {**good, 'id': 204, 'category_id': 1, 'bbox': [1, 1, 0, 2], 'segmentation': [[1] * 6]},
    {
      **good,
      'id': 205,
      'category_id': 1,
      'bbox': [1, 1, 2, 2],
      'segmentation': {'size': [H, W], 'counts': [5, 2]},
    },
    {**good, 'id': 206, 'category_id': 1, 'bbox': [1, 1, 2], 'segmentation': [[1] * 6]},
  ]
  return annotations


def _failure(task) -> str:
  with pytest.raises(sharded_conversion.ItemFailed) as error:
    coco_conversion.convert_image(task)
  return str(error.value)


def test_each_bad_input_is_named_with_its_reason(tmp_path):
  annotations = _broken_dataset()
  image_dir, json_path = tiny_coco.write_dataset(str(tmp_path), annotations)
  os.remove(os.path.join(image_dir, 'missing.jpg'))
  with open(os.path.join(image_dir, 'corrupt.jpg'), 'r+b') as f:
    f.truncate(200)
  dataset = coco_conversion.load_annotations(json_path)
  tasks = {t.file_name: t for t in coco_conversion.image_tasks(dataset, image_dir, True)}

  assert _failure(tasks['missing.jpg']).startswith('missing file: no file ')
  assert _failure(tasks['corrupt.jpg']).startswith('undecodable image: ')
  assert _failure(tasks['wrong_size.jpg']).startswith('image size mismatch: the file is 40x30')

  result = coco_conversion.convert_image(tasks['b.jpg'])
  reasons = {int(r.split(': ')[1].split()[1]): r.split(':')[0] for r in result.dropped}
  assert reasons == {
    201: 'degenerate polygon',
    202: 'annotation outside the image',
    203: 'unknown category id',
    204: 'degenerate box',
    205: 'bad segmentation',
    206: 'bad annotation',
  }
  # The image is still written, with its two good annotations.
  np.testing.assert_array_equal(_decode(result)['groundtruth_classes'], [3, 1])


def test_bad_image_entry_fails_that_image(tmp_path):
  annotations = tiny_coco.coco_dict()
  del annotations['images'][0]['height']
  tasks, _ = _tasks(tmp_path, annotations)
  assert _failure(tasks['a.jpg']).startswith('bad image entry: height None')


def test_box_overshooting_by_under_a_pixel_is_clipped(tmp_path):
  annotations = tiny_coco.coco_dict()
  annotations['annotations'][0]['bbox'] = [-0.4, 3, W + 0.6, 8]
  tasks, _ = _tasks(tmp_path, annotations)
  result = coco_conversion.convert_image(tasks['a.jpg'])
  assert result.dropped == []
  np.testing.assert_allclose(_decode(result)['groundtruth_boxes'][0], [3 / H, 0, 11 / H, 1])


def test_polygons_are_checked_only_when_masks_are_written(tmp_path):
  annotations = tiny_coco.coco_dict()
  annotations['annotations'][0]['segmentation'] = [[2, 3, 12, 3]]
  tasks, _ = _tasks(tmp_path, annotations, include_masks=False)
  assert coco_conversion.convert_image(tasks['a.jpg']).dropped == []
  tasks, _ = _tasks(tmp_path, annotations, include_masks=True)
  (reason,) = coco_conversion.convert_image(tasks['a.jpg']).dropped
  assert reason.startswith('degenerate polygon: annotation 101: polygon 0 has 4 coordinates')


def _read_records(summary) -> dict[bytes, dict]:
  """Decoded examples of all shards, by source id."""
  decoder = tf_example_decoder.TfExampleDecoder(include_mask=True)
  records = {}
  for serialized in tf.data.TFRecordDataset(summary.shard_paths):
    decoded = decoder.decode(serialized)
    records[decoded['source_id'].numpy()] = decoded
  return records


def _errors_csv(output_dir) -> list[tuple[str, str, str]]:
  with open(os.path.join(output_dir, sharded_conversion.ERRORS_FILE), newline='') as f:
    rows = list(csv.reader(f))
  assert rows[0] == ['input', 'kind', 'reason']
  return [tuple(row) for row in rows[1:]]


def test_convert_coco_writes_every_image_and_the_category_files(tmp_path):
  image_dir, json_path = tiny_coco.write_dataset(str(tmp_path), tiny_coco.coco_dict())
  out = tmp_path / 'out'
  summary = coco_conversion.convert_coco(
    image_dir, json_path, str(out), num_shards=2, include_masks=True, num_workers=0
  )
  assert (summary.inputs, summary.written, summary.ok) == (3, 3, True)
  assert [os.path.basename(p) for p in summary.shard_paths] == [
    'instances-00000-of-00002.tfrecord',
    'instances-00001-of-00002.tfrecord',
  ]
  records = _read_records(summary)
  assert sorted(records) == [b'11', b'12', b'13']
  assert records[b'11']['groundtruth_instance_masks'].shape == (3, H, W)
  assert _errors_csv(out) == []
  with open(out / sharded_conversion.SUMMARY_FILE) as f:
    summary_json = json.load(f)
  # Image 11 holds 3 of the 5.
  assert summary_json['annotations'] == 5
  assert summary_json[coco_conversion.MAX_ANNOTATIONS_PER_IMAGE_KEY] == 3
  with open(out / coco_conversion.LABEL_MAP_FILE) as f:
    assert json.load(f) == {'1': 'digit', '3': 'letter'}


def test_convert_coco_lists_each_bad_input_in_errors_csv(tmp_path):
  image_dir, json_path = tiny_coco.write_dataset(str(tmp_path), _broken_dataset())
  os.remove(os.path.join(image_dir, 'missing.jpg'))
  with open(os.path.join(image_dir, 'corrupt.jpg'), 'r+b') as f:
    f.truncate(200)
  out = str(tmp_path / 'out')
  with pytest.raises(sharded_conversion.ConversionFailed, match='3 of 6 images were not written'):
    coco_conversion.convert_coco(image_dir, json_path, out, include_masks=True, num_workers=0)
  summary = coco_conversion.convert_coco(
    image_dir, json_path, out, include_masks=True, num_workers=0, allow_failures=True
  )
  assert (summary.written, summary.failed, summary.dropped) == (3, 3, 6)
  rows = {(name, kind, reason.split(':')[0]) for name, kind, reason in _errors_csv(out)}
  assert rows == {
    ('missing.jpg', 'failed', 'missing file'),
    ('corrupt.jpg', 'failed', 'undecodable image'),
    ('wrong_size.jpg', 'failed', 'image size mismatch'),
    ('b.jpg', 'dropped', 'degenerate polygon'),
    ('b.jpg', 'dropped', 'annotation outside the image'),
    ('b.jpg', 'dropped', 'unknown category id'),
    ('b.jpg', 'dropped', 'degenerate box'),
    ('b.jpg', 'dropped', 'bad segmentation'),
    ('b.jpg', 'dropped', 'bad annotation'),
  }
  assert sorted(_read_records(summary)) == [b'11', b'12', b'13']


def test_rerun_redoes_only_the_shard_whose_annotations_changed(tmp_path):
  annotations = tiny_coco.coco_dict()
  image_dir, json_path = tiny_coco.write_dataset(str(tmp_path), annotations)
  out = str(tmp_path / 'out')
  first = coco_conversion.convert_coco(image_dir, json_path, out, num_shards=3, num_workers=0)
  shard_bytes = [open(p, 'rb').read() for p in first.shard_paths]
  again = coco_conversion.convert_coco(image_dir, json_path, out, num_shards=3, num_workers=0)
  assert again.shards_reused == 3
  annotations['annotations'][3]['category_id'] = 1  # An annotation of b.jpg.
  with open(json_path, 'w') as f:
    json.dump(annotations, f)
  changed = coco_conversion.convert_coco(image_dir, json_path, out, num_shards=3, num_workers=0)
  assert changed.shards_reused == 2
  b_shard = sharded_conversion.shard_index('b.jpg', 3)
  for i, path in enumerate(changed.shard_paths):
    assert (open(path, 'rb').read() == shard_bytes[i]) == (i != b_shard)
  np.testing.assert_array_equal(_read_records(changed)[b'12']['groundtruth_classes'], [1, 1])


def test_rerun_converts_an_image_that_was_missing_before(tmp_path):
  image_dir, json_path = tiny_coco.write_dataset(str(tmp_path), tiny_coco.coco_dict())
  os.rename(os.path.join(image_dir, 'c.jpg'), tmp_path / 'c.jpg')
  out = str(tmp_path / 'out')
  run = dict(num_shards=3, num_workers=0, allow_failures=True)
  assert coco_conversion.convert_coco(image_dir, json_path, out, **run).failed == 1
  os.rename(tmp_path / 'c.jpg', os.path.join(image_dir, 'c.jpg'))
  summary = coco_conversion.convert_coco(image_dir, json_path, out, **run)
  assert (summary.written, summary.failed, summary.shards_reused) == (3, 0, 2)
  assert _errors_csv(out) == []


def test_a_worker_process_writes_the_same_shards(tmp_path):
  # One worker is enough to check that tasks pickle and convert_image runs in a spawned process.
  image_dir, json_path = tiny_coco.write_dataset(str(tmp_path), tiny_coco.lvis_dict())
  shards = []
  for num_workers in (0, 1):
    summary = coco_conversion.convert_coco(
      image_dir,
      json_path,
      str(tmp_path / f'out{num_workers}'),
      num_shards=2,
      include_masks=True,
      num_workers=num_workers,
    )
    assert summary.written == 3
    shards.append([open(p, 'rb').read() for p in summary.shard_paths])
  assert shards[0] == shards[1]


def test_convert_coco_refuses_a_missing_image_folder(tmp_path):
  _, json_path = tiny_coco.write_dataset(str(tmp_path), tiny_coco.coco_dict())
  with pytest.raises(coco_conversion.InputError, match='image folder .*nowhere does not exist'):
    coco_conversion.convert_coco(str(tmp_path / 'nowhere'), json_path, str(tmp_path / 'out'))


@pytest.mark.parametrize('is_training', [True, False])
def test_model_gardens_mask_rcnn_parser_reads_the_shards(tmp_path, is_training):
  image_dir, json_path = tiny_coco.write_dataset(str(tmp_path), tiny_coco.coco_dict())
  summary = coco_conversion.convert_coco(
    image_dir, json_path, str(tmp_path / 'out'), include_masks=True, num_workers=0
  )
  decoder = tf_example_decoder.TfExampleDecoder(include_mask=True)
  parser = maskrcnn_input.Parser(
    output_size=[64, 64],
    min_level=3,
    max_level=5,
    num_scales=1,
    aspect_ratios=[1.0],
    anchor_size=2,
    include_mask=True,
    mask_crop_size=14,
    max_num_instances=4,
  )
  dataset = tf.data.TFRecordDataset(summary.shard_paths).map(decoder.decode)
  parsed = list(dataset.map(parser.parse_fn(is_training)))
  assert len(parsed) == 3
  for image, labels in parsed:
    assert image.shape == (64, 64, 3)
    if is_training:
      assert labels['gt_masks'].shape == (4, 14, 14)
    else:
      assert int(labels['groundtruths']['source_id']) in (11, 12, 13)
