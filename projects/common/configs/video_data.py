"""Video input config shared by every video project, and the standard datasets' sizes."""

import dataclasses

from official.vision.configs import video_classification as mg_video


@dataclasses.dataclass
class VideoDataConfig(mg_video.DataConfig):
  """Model Garden's video `DataConfig` plus a built-in dataset that fills `input_path`.

  `builtin_dataset` names a generated dataset (see `projects.common.datasets.BUILTIN_DATASETS`);
  when it is set and `input_path` is empty, `train.py` generates the data once into the cache
  and writes the resulting file pattern into `input_path` before the config is locked.
  """

  builtin_dataset: str = ''
  # Off for classes that depend on handedness (Something-Something, digits, text).
  aug_random_flip: bool = True


# The built-in moving digits (`projects.common.datasets.builtin`, 'moving_mnist'): 16 frames of
# 48^2 per video, one digit each, with `build_moving_mnist`'s default split sizes.
DEMO_DATASET = 'moving_mnist'
DEMO_NUM_CLASSES = 10
DEMO_NUM_TRAIN, DEMO_NUM_VALIDATION = 2000, 500
# Crops of 32^2 keep a digit (about 14 px after resizing) legible while making a CPU step cheap.
DEMO_CROP_SIZE = 32

# name: (num_classes, train videos, validation videos). Kinetics counts are those of the
# Model Garden/DeepMind TFRecord releases; UCF101 and HMDB51 are split 1.
DATASET_SIZES = {
  'kinetics400': (400, 215570, 17706),
  'kinetics600': (600, 366016, 27780),
  'kinetics700': (700, 522883, 33441),
  'ucf101': (101, 9537, 3783),
  'hmdb51': (51, 3570, 1530),
  DEMO_DATASET: (DEMO_NUM_CLASSES, DEMO_NUM_TRAIN, DEMO_NUM_VALIDATION),
}


def standard_video_data(
  dataset: str,
  is_training: bool,
  num_frames: int,
  temporal_stride: int,
  crop_size: int,
  global_batch_size: int,
  data_class: type[VideoDataConfig] = VideoDataConfig,
  **overrides,
) -> VideoDataConfig:
  """A `data_class` config (`VideoDataConfig` or a project's subclass) for a known dataset.

  `input_path` is left for the user to set.
  """
  if dataset not in DATASET_SIZES:
    raise ValueError(f'unknown video dataset {dataset!r}; known: {sorted(DATASET_SIZES)}')
  num_classes, num_train, num_validation = DATASET_SIZES[dataset]
  return data_class(
    name=dataset,
    num_classes=num_classes,
    num_examples=num_train if is_training else num_validation,
    is_training=is_training,
    split='train' if is_training else 'validation',
    drop_remainder=is_training,
    feature_shape=(num_frames, crop_size, crop_size, 3),
    temporal_stride=temporal_stride,
    global_batch_size=global_batch_size,
    **overrides,
  )


def demo_video_data(
  is_training: bool,
  num_frames: int,
  global_batch_size: int,
  data_class: type[VideoDataConfig] = VideoDataConfig,
  **overrides,
) -> VideoDataConfig:
  """One split of the built-in moving digits as every CPU demo reads it: clips at 32^2, stride 1.

  Training generates the data on first use (`builtin_dataset`).
  """
  return standard_video_data(
    DEMO_DATASET,
    is_training,
    num_frames,
    temporal_stride=1,
    crop_size=DEMO_CROP_SIZE,
    global_batch_size=global_batch_size,
    data_class=data_class,
    builtin_dataset=DEMO_DATASET,
    min_image_size=DEMO_CROP_SIZE,
    shuffle_buffer_size=256,
    # A mirrored digit is a different digit, or none.
    aug_random_flip=False,
    **overrides,
  )
