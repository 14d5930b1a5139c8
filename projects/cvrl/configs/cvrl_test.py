"""The pretraining data config rejects the fields its parser would silently ignore."""

import pytest
from official.vision.configs import common

from projects.cvrl.configs import cvrl

UNREAD_VALUES = {
  'random_stride_range': 2,
  'zero_centering_image': True,
  'aug_type': common.Augmentation(type='randaug'),
  'aug_random_rotation': True,
  'mixup_and_cutmix': common.MixupAndCutmix(),
  'num_test_clips': 2,
  'num_test_crops': 3,
  'output_audio': True,
  'image_field_key': 'frames',
  'label_field_key': 'label',
}


def test_every_unread_field_has_a_case():
  assert set(UNREAD_VALUES) == set(cvrl.UNREAD_PRETRAIN_FIELDS)


@pytest.mark.parametrize('name', cvrl.UNREAD_PRETRAIN_FIELDS)
def test_a_value_the_parser_would_ignore_is_named(name):
  config = cvrl.PretrainDataConfig()
  setattr(config, name, UNREAD_VALUES[name])
  with pytest.raises(ValueError, match=rf'^{name}=.* is not read by CVRL pretraining'):
    config.validate()


def test_defaults_validate():
  cvrl.PretrainDataConfig().validate()


def test_no_flip_needs_no_flip_probability():
  config = cvrl.PretrainDataConfig(aug_random_flip=False)
  with pytest.raises(ValueError, match='aug_random_flip=False but aug_flip_prob=0.5'):
    config.validate()
  config.aug_flip_prob = 0.0
  config.validate()


@pytest.mark.parametrize('field, value', [('gap_distribution', 'cubic'), ('short_video', 'repeat')])
def test_choices_are_checked(field, value):
  config = cvrl.PretrainDataConfig()
  setattr(config, field, value)
  with pytest.raises(ValueError, match=rf"^{field} must be one of \[.*\], got '{value}'"):
    config.validate()
