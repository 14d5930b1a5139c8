"""CVRL sampling-based temporal augmentation: frame indices of the two clips of a positive pair."""

import tensorflow as tf

from projects.common import video_ops

# CVRL Sec. 3.2: the gap t between the two clips' start frames is drawn from a monotonically
# decreasing distribution, linear P(t) ∝ -t + c by default; its Fig. 3 ablates uniform and other
# decreasing shapes, which `uniform` and the decreasing polynomial `power` reproduce.
DISTRIBUTIONS = ('linear', 'uniform', 'power')
SHORT_VIDEO_POLICIES = ('loop', 'pad')


def _check_distribution(distribution: str, power_exponent: float) -> None:
  if distribution not in DISTRIBUTIONS:
    raise ValueError(f'distribution must be one of {DISTRIBUTIONS}, got {distribution!r}')
  if distribution == 'power' and power_exponent <= 0:
    raise ValueError(f'power_exponent must be > 0, got {power_exponent}')


def gap_cdf(
  gap: tf.Tensor,
  max_gap: tf.Tensor,
  distribution: str = 'linear',
  power_exponent: float = 2.0,
) -> tf.Tensor:
  """P(G <= gap) for the integer gap G in [0, max_gap] that `sample_temporal_gap` draws.

  G is the floor of a continuous draw x on [0, L), L = max_gap + 1, with density
    linear:  p(x) ∝ L - x            (c = L: the mass falls to 0 just past the largest gap)
    uniform: p(x) ∝ 1
    power:   p(x) ∝ L^a - x^a        (a = power_exponent; a = 1 is `linear`, a → ∞ `uniform`)
  so every gap in [0, max_gap] keeps a non-zero probability. Returns float32 in [0, 1].
  """
  _check_distribution(distribution, power_exponent)
  length = tf.cast(max_gap, tf.float32) + 1.0
  s = tf.clip_by_value((tf.cast(gap, tf.float32) + 1.0) / length, 0.0, 1.0)
  if distribution == 'linear':
    return 1.0 - tf.square(1.0 - s)
  if distribution == 'uniform':
    return s
  a = power_exponent
  return ((a + 1.0) * s - tf.pow(s, a + 1.0)) / a


def sample_temporal_gap(
  max_gap: tf.Tensor,
  distribution: str = 'linear',
  power_exponent: float = 2.0,
  seed: video_ops.SeedLike = None,
) -> tf.Tensor:
  """Draws the gap in frames between the two clips' start frames, an int32 in [0, max_gap]."""
  max_gap = tf.cast(max_gap, tf.int32)
  # Inverting the tabulated CDF is exact for the discrete gap and costs O(max_gap), a few hundred
  # entries for a Kinetics video, negligible next to JPEG decoding.
  cdf = gap_cdf(tf.range(max_gap + 1), max_gap, distribution, power_exponent)
  u = tf.random.stateless_uniform([1], seed=video_ops.resolve_seed(seed))
  gap = tf.searchsorted(cdf, u, side='right', out_type=tf.int32)[0]
  return tf.minimum(gap, max_gap)


def sample_clip_pair_indices(
  num_video_frames: tf.Tensor,
  num_frames: int,
  stride_frames: int,
  distribution: str = 'linear',
  short_video: str = 'loop',
  seed: video_ops.SeedLike = None,
  power_exponent: float = 2.0,
) -> tuple[tf.Tensor, tf.Tensor]:
  """Frame indices `([num_frames], [num_frames])` int32 of the two clips of a CVRL positive pair.

  A clip covers `(num_frames - 1) * stride_frames + 1` frames. The gap between the start frames is
  drawn by `sample_temporal_gap` over every gap that keeps both clips inside the video; the first
  clip starts uniformly where the second still fits, and the second starts `gap` frames later
  (CVRL Sec. 3.2; the NT-Xent loss is symmetric, so the order carries nothing to randomise).
  A video shorter than one clip leaves no room for a gap: both clips start at frame 0 and their
  indices past the end follow `short_video`, `loop` (wrap to the start) or `pad` (repeat the last
  frame). Gather the encoded frames with the indices, then decode only those.
  """
  if num_frames < 1 or stride_frames < 1:
    raise ValueError(
      f'num_frames and stride_frames must be >= 1, got {num_frames} and {stride_frames}'
    )
  if short_video not in SHORT_VIDEO_POLICIES:
    raise ValueError(f'short_video must be one of {SHORT_VIDEO_POLICIES}, got {short_video!r}')
  _check_distribution(distribution, power_exponent)
  num_video_frames = tf.cast(num_video_frames, tf.int32)
  tf.debugging.assert_positive(num_video_frames, message='a video needs at least one frame')
  gap_seed, start_seed = video_ops.split_seed(seed, 2)

  clip_span = (num_frames - 1) * stride_frames + 1
  max_gap = tf.maximum(num_video_frames - clip_span, 0)
  gap = sample_temporal_gap(max_gap, distribution, power_exponent, gap_seed)
  start_a = tf.random.stateless_uniform(
    [], start_seed, minval=0, maxval=max_gap - gap + 1, dtype=tf.int32
  )
  offsets = tf.range(num_frames, dtype=tf.int32) * stride_frames

  def clip_indices(start: tf.Tensor) -> tf.Tensor:
    indices = start + offsets
    if short_video == 'loop':
      return tf.math.floormod(indices, num_video_frames)
    return tf.minimum(indices, num_video_frames - 1)

  return clip_indices(start_a), clip_indices(start_a + gap)
