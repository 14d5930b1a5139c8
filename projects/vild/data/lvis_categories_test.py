"""Tests for lvis_categories.py: the shipped LVIS v1 list is whole and grouped as LVIS v1 has it."""

import json

import pytest

from projects.vild.data import lvis_categories


def test_lvis_v1_has_1203_categories_with_ids_1_to_1203():
  categories = lvis_categories.lvis_v1_categories()
  assert len(categories) == 1203
  assert [category.id for category in categories] == list(range(1, 1204))
  assert len(set(lvis_categories.lvis_v1_category_names())) == 1203


def test_frequency_groups_have_lvis_v1_sizes():
  groups = lvis_categories.lvis_v1_ids_by_frequency()
  assert {frequency: len(ids) for frequency, ids in groups.items()} == {
    'r': 337,
    'c': 461,
    'f': 405,
  }


def test_known_categories():
  categories = {category.name: category for category in lvis_categories.lvis_v1_categories()}
  assert categories['aerosol_can'].id == 1
  assert categories['aerosol_can'].synonyms == ('aerosol_can', 'spray_can')
  assert categories['zebra'].frequency == 'f'
  assert categories['zucchini'].id == 1203


def test_base_class_mask_holds_rare_out():
  mask = lvis_categories.lvis_v1_base_class_mask()
  assert len(mask) == 1203
  assert mask.count(False) == 337
  assert mask.count(True) == 461 + 405
  assert lvis_categories.lvis_v1_base_class_mask('rc').count(False) == 337 + 461
  with pytest.raises(ValueError, match='unknown groups'):
    lvis_categories.lvis_v1_base_class_mask('x')


def test_data_file_credits_its_source():
  with open(lvis_categories.LVIS_V1_CATEGORIES_PATH) as f:
    content = json.load(f)
  assert content['source']['repository'] == 'https://github.com/facebookresearch/detectron2'
  assert 'CC BY 4.0' in content['license']
