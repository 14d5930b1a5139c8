"""Tests for the ViLD demo data (tiny scenes, a few teacher steps)."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from projects.common.datasets import builtin
from projects.vild.data import demo_data
from projects.vild.dataloaders import roi_features
from projects.vild.teacher import image_encoder

TINY = dict(
  num_train=6,
  num_validation=4,
  image_size=64,
  digit_size_range_px=(12, 32),
  teacher_steps=2,
  teacher_crop_size=16,
  num_proposals=7,
)


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  cache_dir = str(tmp_path_factory.mktemp('cache'))
  return cache_dir, demo_data.build_vild_digit_scenes(cache_dir, **TINY)


def test_train_records_carry_normalised_teacher_embeddings_of_proposals(built):
  _, info = built
  paths = sorted(glob.glob(info.train_pattern))
  assert len(paths) == 2
  spec = {
    **roi_features.parse_spec(),
    'image/object/bbox/ymin': tf.io.VarLenFeature(tf.float32),
  }
  num_images = 0
  for record in tf.data.TFRecordDataset(paths):
    parsed = tf.io.parse_single_example(record, spec)
    boxes, embeddings = roi_features.decode_rois(parsed)
    num_objects = int(tf.shape(parsed['image/object/bbox/ymin'].values)[0])
    assert boxes.shape == (TINY['num_proposals'], 4)
    assert embeddings.shape == (TINY['num_proposals'], info.embedding_dim)
    # One proposal per object, then random boxes up to M: no padding rows.
    assert num_objects <= TINY['num_proposals']
    assert np.all(boxes[:, 2:] > boxes[:, :2])
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)
    num_images += 1
  assert num_images == TINY['num_train']


def test_text_embeddings_are_minilm_prompt_ensembles_in_category_order(built):
  _, info = built
  assert info.category_names == (
    'zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'
  )  # fmt: skip
  embeddings = np.load(info.text_embeddings_file)
  assert embeddings.shape == (10, image_encoder.EMBEDDING_DIM)
  np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)
  # The name tools/text_embeddings.py gives the names file beside its embeddings.
  with open(
    os.path.join(os.path.dirname(info.text_embeddings_file), 'text_embeddings.names.json')
  ) as f:
    assert json.load(f) == list(info.category_names)
  with open(info.validation_annotation_file) as f:
    categories = json.load(f)['categories']
  assert [c['name'] for c in sorted(categories, key=lambda c: c['id'])] == list(info.category_names)
  assert 0 <= info.teacher_zero_shot_accuracy <= 1
  assert glob.glob(info.validation_pattern)


def test_second_build_reuses_the_cache(built):
  cache_dir, info = built
  folders = sorted(os.listdir(cache_dir))
  assert demo_data.build_vild_digit_scenes(cache_dir, **TINY) == info
  assert sorted(os.listdir(cache_dir)) == folders


def test_registered_as_a_builtin_dataset():
  assert builtin.BUILTIN_DATASETS[demo_data.DATASET_NAME] is demo_data.build_vild_digit_scenes
