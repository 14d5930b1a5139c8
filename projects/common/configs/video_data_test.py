"""The demos' split of the built-in moving digits matches what the dataset builder writes."""

import inspect

from projects.common.configs import video_data
from projects.common.datasets import builtin, moving_mnist


def test_demo_sizes_are_the_builders():
  defaults = inspect.signature(moving_mnist.build_moving_mnist).parameters
  assert video_data.DEMO_NUM_TRAIN == defaults['num_train'].default
  assert video_data.DEMO_NUM_VALIDATION == defaults['num_validation'].default
  assert video_data.DEMO_NUM_CLASSES == moving_mnist.NUM_DIGIT_CLASSES
  assert video_data.DEMO_DATASET in builtin.BUILTIN_DATASETS


def test_demo_split_of_a_subclass():
  class ProjectData(video_data.VideoDataConfig):
    pass

  train = video_data.demo_video_data(True, 4, 32, data_class=ProjectData, aug_min_area_ratio=0.5)
  validation = video_data.demo_video_data(False, 4, 100)
  assert isinstance(train, ProjectData)
  assert (train.num_examples, validation.num_examples) == (2000, 500)
  assert (train.split, validation.split) == ('train', 'validation')
  assert (train.drop_remainder, validation.drop_remainder) == (True, False)
  assert train.feature_shape == (4, 32, 32, 3)
  assert train.aug_min_area_ratio == 0.5
  assert not train.aug_random_flip
