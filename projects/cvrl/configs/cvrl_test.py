"""The pretraining data config: its checks, and the release's crops in the Kinetics recipe."""

import pytest
from official.core import exp_factory
from official.vision.configs import common

from projects.common import video_ops
from projects.cvrl.configs import (
  cvrl,
  experiments,  # noqa: F401  (registers the experiments)
)

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


def test_kinetics_pretraining_crops_as_released():
  # Release: random resized crops of 30-100 % of the frame, aspect 1/2-2 (video_ops's ranges).
  data = exp_factory.get_exp_config('cvrl_kinetics600').task.train_data
  assert (data.aug_min_area_ratio, data.aug_max_area_ratio) == video_ops.CROP_AREA_RANGE
  assert (data.aug_min_aspect_ratio, data.aug_max_aspect_ratio) == video_ops.CROP_ASPECT_RATIO_RANGE
