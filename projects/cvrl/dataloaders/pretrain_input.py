"""CVRL pretraining input: two independently augmented clips of each video in the video contract."""

import tensorflow as tf
from official.vision.dataloaders import parser

from projects.common import tfrecords, video_features, video_ops
from projects.cvrl.configs import cvrl as exp_cfg
from projects.cvrl.ops import temporal_sampling

# Features key of the clip pairs, `[2, time, height, width, 3]` per video.
IMAGE_KEY = 'image'
# Features key of a validation video's un-augmented centre clip, `[time, height, width, 3]`.
CENTRE_CLIP_KEY = 'centre_clip'
# Label of a video without a label index (unlabelled pretraining data).
NO_LABEL = -1


def first_label(label_indices: tf.Tensor) -> tf.Tensor:
  """The first `clip/label/index` of a video as an int32 scalar, or `NO_LABEL` if it has none."""
  padded = tf.concat([tf.cast(label_indices, tf.int32), [NO_LABEL]], axis=0)
  return padded[0]


def decode_frames(encoded: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
  """Decodes only the frames `indices` points at, each once: `[len(indices), H, W, 3]` uint8."""
  # The two clips of a pair overlap whenever the gap is shorter than a clip, which the paper's
  # decreasing gap distribution makes common: decoding shared frames once saves that work.
  unique_indices, positions = tf.unique(indices)
  frames = video_ops.decode_jpeg_frames(tf.gather(encoded, unique_indices))
  return tf.gather(frames, positions)


class Parser(parser.Parser):
  """Parses a decoded video (`tfrecords.parse_video_example`) into a pair of augmented clips.

  Returns `({'image': [2, T, H, W, 3]}, label)`: float clips in [0, 1] of `params.dtype` and
  the video's first label index (`NO_LABEL` when it has none). Training draws fresh randomness
  for every video; evaluation seeds it from the video's content, so each evaluation sees the
  same pairs. With `centre_clip`, evaluation adds `'centre_clip'`: `[T, H, W, 3]`, the video's
  un-augmented centre clip sampled as Model Garden's evaluation samples one view (short side
  resized to `min_image_size`, centre crop), for probes that should not see augmentation.
  """

  def __init__(self, params: exp_cfg.PretrainDataConfig, centre_clip: bool = False):
    self._num_frames, height, width, _ = params.feature_shape
    self._crop_size = (height, width)
    self._stride = params.temporal_stride
    self._distribution = params.gap_distribution
    self._power_exponent = params.gap_power_exponent
    self._short_video = params.short_video
    self._dtype = tf.dtypes.as_dtype(params.dtype)
    self._centre_clip_sampling = (
      video_features.ViewSampling.from_data_config(params, num_clips=1, num_crops=1)
      if centre_clip
      else None
    )
    self._augment_kwargs = {
      'area_range': (params.aug_min_area_ratio, params.aug_max_area_ratio),
      'aspect_ratio_range': (params.aug_min_aspect_ratio, params.aug_max_aspect_ratio),
      'flip_prob': params.aug_flip_prob,
      'color_jitter_strength': params.aug_color_jitter_strength,
      'color_jitter_prob': params.aug_color_jitter_prob,
      'grayscale_prob': params.aug_grayscale_prob,
      'blur_prob': params.aug_blur_prob,
    }

  def clip_pair(self, encoded_frames: tf.Tensor, seed: video_ops.SeedLike = None) -> tf.Tensor:
    """Samples, decodes and augments the two clips of one video: `[2, T, H, W, 3]`."""
    pair_seed, seed_a, seed_b = video_ops.split_seed(seed, 3)
    indices_a, indices_b = temporal_sampling.sample_clip_pair_indices(
      tf.shape(encoded_frames)[0],
      self._num_frames,
      self._stride,
      distribution=self._distribution,
      short_video=self._short_video,
      seed=pair_seed,
      power_exponent=self._power_exponent,
    )
    frames = decode_frames(encoded_frames, tf.concat([indices_a, indices_b], axis=0))
    clip_a, clip_b = tf.split(frames, 2, axis=0)
    clips = [
      video_ops.augment_clip(clip, self._crop_size, seed=clip_seed, **self._augment_kwargs)
      for clip, clip_seed in ((clip_a, seed_a), (clip_b, seed_b))
    ]
    clips = tf.ensure_shape(tf.stack(clips), [2, self._num_frames, *self._crop_size, 3])
    return tf.cast(clips, self._dtype)

  def _parse(
    self, decoded: dict[str, tf.Tensor], seed: video_ops.SeedLike
  ) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    clips = self.clip_pair(decoded[tfrecords.IMAGE_KEY], seed)
    return {IMAGE_KEY: clips}, first_label(decoded[tfrecords.LABEL_INDEX_KEY])

  def _parse_train_data(self, decoded_tensors):
    return self._parse(decoded_tensors, seed=None)

  def _parse_eval_data(self, decoded_tensors):
    encoded_frames = decoded_tensors[tfrecords.IMAGE_KEY]
    content_hash = tf.strings.to_hash_bucket_fast(encoded_frames[0], tf.int32.max)
    features, label = self._parse(
      decoded_tensors, seed=tf.stack([content_hash, tf.constant(0, tf.int64)])
    )
    if self._centre_clip_sampling:
      views = video_features.sample_views(encoded_frames, self._centre_clip_sampling)
      clip = video_features.normalize_frames(views[0], zero_centering_image=False)
      features[CENTRE_CLIP_KEY] = tf.cast(clip, self._dtype)
    return features, label
