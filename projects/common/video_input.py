"""Supervised video inputs: Model Garden's parser with the training flip made optional.

Used by every supervised video task (video classification, CVRL linear evaluation/fine-tuning).

Model Garden always flips training clips left-right. That is wrong for data whose classes depend
on handedness (Something-Something's "pushing left/right", digits and text), so the flip follows
`VideoDataConfig.aug_random_flip`. Evaluation (N clips x M crops) is Model Garden's.

Model Garden one-hot encodes labels with `tf.one_hot`, which turns a label outside
`num_classes` into an all-zero target and trains on it silently; here such a label stops the
input pipeline with an error (`input_errors.explain` then names its file).
"""

import tensorflow as tf
from official.vision.dataloaders import input_reader_factory, video_input
from official.vision.ops import preprocess_ops_3d

from projects.common import input_errors
from projects.common.configs import video_data


class Parser(video_input.Parser):
  """Train: random temporal crop, random resized crop, optional flip; eval: Model Garden's."""

  def __init__(self, input_params: video_data.VideoDataConfig, image_key: str, label_key: str):
    super().__init__(input_params, image_key=image_key, label_key=label_key)
    self._random_flip = input_params.aug_random_flip

  def parse_fn(self, is_training: bool):
    parse = super().parse_fn(is_training)

    def parse_checked_label(decoded_tensors):
      labels = decoded_tensors[self._label_key]
      in_range = tf.debugging.assert_less(
        labels,
        tf.cast(self._num_classes, labels.dtype),
        message=f'{input_errors.LABEL_OUT_OF_RANGE}={self._num_classes}',
      )
      with tf.control_dependencies([in_range, tf.debugging.assert_non_negative(labels)]):
        return parse({**decoded_tensors, self._label_key: tf.identity(labels)})

    return parse_checked_label

  def _parse_train_data(self, decoded_tensors):
    if self._random_flip:
      return super()._parse_train_data(decoded_tensors)
    if self._output_audio:
      raise ValueError('aug_random_flip=False does not support output_audio inputs')
    stride = self._stride
    if self._random_stride_range > 0:
      stride = tf.random.uniform(
        [],
        tf.maximum(stride - self._random_stride_range, 1),
        stride + self._random_stride_range,
        dtype=tf.int32,
      )
    frames = preprocess_ops_3d.sample_sequence(
      decoded_tensors[self._image_key], self._num_frames, True, stride
    )
    if frames.dtype == tf.string:
      frames = preprocess_ops_3d.decode_image(frames, self._num_channels)
    crop_height, crop_width = (
      self._crop_size if isinstance(self._crop_size, tuple) else (self._crop_size,) * 2
    )
    frames = preprocess_ops_3d.random_crop_resize(
      frames,
      crop_height,
      crop_width,
      self._num_frames,
      self._num_channels,
      (self._min_aspect_ratio, self._max_aspect_ratio),
      (self._min_area_ratio, self._max_area_ratio),
    )
    if self._random_rotation:
      frames = preprocess_ops_3d.random_rotation(frames)
    if self._augmenter is not None:
      frames = self._augmenter.distort(frames)
    frames = preprocess_ops_3d.normalize_image(frames, self._zero_centering_image)
    label = video_input.process_label(
      decoded_tensors[self._label_key], self._one_hot_label, self._num_classes, self._label_dtype
    )
    return {'image': tf.cast(frames, self._dtype)}, label


def build_video_inputs(
  task,
  params: video_data.VideoDataConfig,
  input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
  """`build_inputs` of a Model Garden video classification task, with the parser above."""
  if params.mixup_and_cutmix is not None:
    raise ValueError(
      "mixup_and_cutmix is only supported by Model Garden's own video input path; "
      'use it through official.vision.tasks.video_classification'
    )
  parser = Parser(params, params.image_field_key, params.label_field_key)
  reader = input_reader_factory.input_reader_generator(
    params,
    dataset_fn=task._get_dataset_fn(params),  # noqa: SLF001
    decoder_fn=task._get_decoder_fn(params),  # noqa: SLF001
    parser_fn=parser.parse_fn(params.is_training),
    postprocess_fn=video_input.PostBatchProcessor(params),
  )
  return reader.read(input_context=input_context)
