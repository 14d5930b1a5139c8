"""Tests for temporal_sampling: gap distributions against their CDFs, indices, short videos."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from scipy import stats

from projects.cvrl.ops import temporal_sampling

_MAX_GAP = 24
_NUM_DRAWS = 12000


def _expected_pmf(distribution: str, max_gap: int, power_exponent: float = 2.0) -> np.ndarray:
  """P(G = k) written from the densities directly, independently of `gap_cdf`."""
  length = max_gap + 1
  lower = np.arange(length, dtype=np.float64)
  upper = lower + 1
  if distribution == 'uniform':
    return np.full(length, 1.0 / length)
  if distribution == 'linear':
    # ∫ (L - x) dx over [k, k + 1], normalised by L^2 / 2.
    return ((length - lower) ** 2 - (length - upper) ** 2) / length**2
  a = power_exponent
  integral = length**a * (upper - lower) - (upper ** (a + 1) - lower ** (a + 1)) / (a + 1)
  return integral / (length ** (a + 1) * a / (a + 1))


def _draw_gaps(distribution: str, power_exponent: float = 2.0) -> np.ndarray:
  # tf.data runs the sampler in graph mode; one stateless seed per draw keeps the test exact.
  dataset = tf.data.Dataset.range(_NUM_DRAWS).map(
    lambda i: temporal_sampling.sample_temporal_gap(
      _MAX_GAP, distribution, power_exponent, seed=tf.stack([tf.constant(2021, tf.int64), i])
    )
  )
  return dataset.batch(_NUM_DRAWS).get_single_element().numpy()


class GapDistributionTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.parameters(('linear', 2.0), ('uniform', 2.0), ('power', 0.5), ('power', 3.0))
  def test_cdf_matches_density(self, distribution, power_exponent):
    cdf = temporal_sampling.gap_cdf(
      tf.range(-1, _MAX_GAP + 2), _MAX_GAP, distribution, power_exponent
    ).numpy()
    self.assertAllClose(cdf[0], 0.0)
    self.assertAllClose(cdf[-2:], [1.0, 1.0])
    self.assertAllClose(np.diff(cdf[:-1]), _expected_pmf(distribution, _MAX_GAP, power_exponent))

  @parameterized.parameters('linear', 'power')
  def test_decreasing_distributions_decrease(self, distribution):
    pmf = np.diff(temporal_sampling.gap_cdf(tf.range(-1, _MAX_GAP + 1), _MAX_GAP, distribution))
    self.assertTrue(np.all(np.diff(pmf) < 0), msg=pmf)
    self.assertGreater(pmf[-1], 0.0)

  @parameterized.parameters(('linear', 2.0), ('uniform', 2.0), ('power', 0.5), ('power', 3.0))
  def test_draws_follow_cdf(self, distribution, power_exponent):
    gaps = _draw_gaps(distribution, power_exponent)
    self.assertAllInRange(gaps, 0, _MAX_GAP)
    observed = np.bincount(gaps, minlength=_MAX_GAP + 1)
    expected = _NUM_DRAWS * _expected_pmf(distribution, _MAX_GAP, power_exponent)
    _, p_value = stats.chisquare(observed, expected)
    self.assertGreater(p_value, 1e-3)

  def test_zero_max_gap(self):
    self.assertEqual(temporal_sampling.sample_temporal_gap(0, seed=[1, 2]).numpy(), 0)

  def test_unknown_distribution_is_rejected(self):
    with self.assertRaisesRegex(ValueError, 'distribution must be one of'):
      temporal_sampling.sample_temporal_gap(10, 'exponential')


class ClipPairIndicesTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.product(
    num_video_frames=[15, 16, 40, 300],
    distribution=['linear', 'uniform', 'power'],
  )
  def test_indices_in_range_with_stride(self, num_video_frames, distribution):
    num_frames, stride = 8, 2
    for seed in range(4):
      indices_a, indices_b = temporal_sampling.sample_clip_pair_indices(
        num_video_frames, num_frames, stride, distribution, seed=[seed, 1]
      )
      for indices in (indices_a.numpy(), indices_b.numpy()):
        self.assertEqual(indices.shape, (num_frames,))
        self.assertAllInRange(indices, 0, num_video_frames - 1)
        self.assertAllEqual(np.diff(indices), np.full(num_frames - 1, stride))
      self.assertGreaterEqual(indices_b[0], indices_a[0])

  def test_pair_placement_follows_paper(self):
    # CVRL Sec. 3.2: gap t ~ P(t), first start uniform on [0, max_gap - t], second t frames later.
    num_video_frames, num_frames, stride, num_draws = 20, 4, 2, 8000
    max_gap = num_video_frames - (num_frames - 1) * stride - 1
    dataset = tf.data.Dataset.range(num_draws).map(
      lambda i: temporal_sampling.sample_clip_pair_indices(
        num_video_frames, num_frames, stride, seed=tf.stack([tf.constant(7, tf.int64), i])
      )
    )
    indices_a, indices_b = dataset.batch(num_draws).get_single_element()
    starts, gaps = indices_a[:, 0].numpy(), (indices_b[:, 0] - indices_a[:, 0]).numpy()
    pmf = _expected_pmf('linear', max_gap)
    cells = [(start, gap) for gap in range(max_gap + 1) for start in range(max_gap - gap + 1)]
    observed = [np.sum((starts == start) & (gaps == gap)) for start, gap in cells]
    expected = [num_draws * pmf[gap] / (max_gap - gap + 1) for _, gap in cells]
    self.assertEqual(sum(observed), num_draws)
    _, p_value = stats.chisquare(observed, expected)
    self.assertGreater(p_value, 1e-3)

  @parameterized.named_parameters(
    ('loop_one_frame', 'loop', 1, [0, 0, 0, 0]),
    ('pad_one_frame', 'pad', 1, [0, 0, 0, 0]),
    ('loop', 'loop', 5, [0, 3, 1, 4]),
    ('pad', 'pad', 5, [0, 3, 4, 4]),
    ('exact_fit', 'loop', 10, [0, 3, 6, 9]),
  )
  def test_short_video(self, short_video, num_video_frames, expected):
    for seed in range(3):
      indices_a, indices_b = temporal_sampling.sample_clip_pair_indices(
        num_video_frames, 4, 3, short_video=short_video, seed=[seed, 2]
      )
      self.assertAllEqual(indices_a, expected)
      self.assertAllEqual(indices_b, expected)

  @parameterized.parameters('loop', 'pad')
  def test_inside_dataset_map_gathers_encoded_frames(self, short_video):
    def sample_pair(num_video_frames, seed):
      encoded = tf.strings.as_string(tf.range(num_video_frames))
      indices_a, indices_b = temporal_sampling.sample_clip_pair_indices(
        tf.shape(encoded)[0], 4, 2, short_video=short_video, seed=seed
      )
      gathered = [tf.gather(encoded, indices) for indices in (indices_a, indices_b)]
      return [tf.strings.to_number(frames, tf.int32) for frames in gathered], indices_a, indices_b

    lengths = tf.constant([1, 3, 7, 8, 50])
    seeds = tf.constant([[i, 7] for i in range(5)])
    dataset = tf.data.Dataset.from_tensor_slices((lengths, seeds)).map(sample_pair)
    for ((frames_a, frames_b), indices_a, indices_b), length in zip(
      dataset.as_numpy_iterator(), lengths.numpy(), strict=True
    ):
      self.assertAllEqual(frames_a, indices_a)
      self.assertAllEqual(frames_b, indices_b)
      self.assertAllInRange(np.concatenate([indices_a, indices_b]), 0, length - 1)

  def test_graph_and_eager_agree_and_seed_decides(self):
    sample = tf.function(temporal_sampling.sample_clip_pair_indices, autograph=False)
    eager = temporal_sampling.sample_clip_pair_indices(200, 8, 2, seed=[3, 4])
    self.assertAllEqual(sample(tf.constant(200), 8, 2, seed=tf.constant([3, 4])), eager)
    others = [temporal_sampling.sample_clip_pair_indices(200, 8, 2, seed=[s, 4]) for s in range(5)]
    self.assertTrue(any(not np.array_equal(pair[0], eager[0]) for pair in others))

  def test_unseeded_calls_vary(self):
    starts = {int(temporal_sampling.sample_clip_pair_indices(500, 8, 2)[0][0]) for _ in range(8)}
    self.assertGreater(len(starts), 1)

  def test_invalid_arguments(self):
    with self.assertRaisesRegex(ValueError, 'short_video must be one of'):
      temporal_sampling.sample_clip_pair_indices(10, 4, 2, short_video='crash')
    with self.assertRaisesRegex(ValueError, 'num_frames and stride_frames must be >= 1'):
      temporal_sampling.sample_clip_pair_indices(10, 0, 2)
    with self.assertRaisesRegex(ValueError, 'power_exponent must be > 0'):
      temporal_sampling.sample_clip_pair_indices(10, 4, 2, 'power', power_exponent=0.0)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, 'at least one frame'):
      temporal_sampling.sample_clip_pair_indices(0, 4, 2)


if __name__ == '__main__':
  tf.test.main()
