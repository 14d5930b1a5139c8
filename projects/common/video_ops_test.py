"""Tests for video_ops: every op eagerly and inside tf.data, as big_vision's pp tests do."""

import functools

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from projects.common import video_ops

_OUTPUT_SIZE = (16, 20)

# Each op with its random transform forced on (probability 1), so only its parameters vary.
_OPS = {
  'crop': functools.partial(video_ops.random_resized_crop, output_size=_OUTPUT_SIZE),
  'flip': functools.partial(video_ops.random_flip_left_right, prob=1.0),
  'color_jitter': functools.partial(video_ops.random_color_jitter, prob=1.0),
  'grayscale': functools.partial(video_ops.random_grayscale, prob=1.0),
  'blur': functools.partial(video_ops.random_gaussian_blur, prob=1.0),
  'augment_clip': functools.partial(
    video_ops.augment_clip,
    output_size=_OUTPUT_SIZE,
    flip_prob=1.0,
    color_jitter_prob=1.0,
    grayscale_prob=1.0,
    blur_prob=1.0,
  ),
}
_PARAMETER_DRAWING_OPS = ('crop', 'color_jitter', 'blur', 'augment_clip')
_GATED_OPS = {
  'flip': video_ops.random_flip_left_right,
  'color_jitter': video_ops.random_color_jitter,
  'grayscale': video_ops.random_grayscale,
  'blur': video_ops.random_gaussian_blur,
}


def _random_clip(num_frames=4, height=32, width=40, seed=0) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (num_frames, height, width, 3), np.uint8)


def _still_clip(num_frames=4) -> np.ndarray:
  return np.repeat(_random_clip(num_frames=1), num_frames, axis=0)


def _run(op, clip, seed, mode: str) -> np.ndarray:
  if mode == 'eager':
    return op(tf.constant(clip), seed=seed).numpy()
  dataset = tf.data.Dataset.from_tensors(clip).map(lambda x: op(x, seed=seed))
  return dataset.get_single_element().numpy()


_OPS_BY_MODE = [
  {'testcase_name': f'{name}_{mode}', 'name': name, 'mode': mode}
  for name in _OPS
  for mode in ('eager', 'tf_data')
]


class VideoOpsTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.named_parameters(*_OPS_BY_MODE)
  def test_still_clip_stays_still_with_valid_values(self, name, mode):
    output = _run(_OPS[name], _still_clip(), [1, 2], mode)
    expected_size = _OUTPUT_SIZE if name in ('crop', 'augment_clip') else (32, 40)
    self.assertEqual(output.shape, (4, *expected_size, 3))
    self.assertEqual(output.dtype, np.float32)
    self.assertAllInRange(output, 0.0, 1.0)
    for frame in output[1:]:
      self.assertAllClose(frame, output[0], atol=1e-6)

  @parameterized.named_parameters(*_OPS_BY_MODE)
  def test_same_seed_same_output_in_eager_and_tf_data(self, name, mode):
    clip = _random_clip()
    self.assertAllClose(
      _run(_OPS[name], clip, [5, 6], mode), _run(_OPS[name], clip, [5, 6], 'eager')
    )

  @parameterized.parameters(*_PARAMETER_DRAWING_OPS)
  def test_clips_of_a_pair_differ(self, name):
    clip = _random_clip()
    view_a = _run(_OPS[name], clip, [1, 2], 'tf_data')
    view_b = _run(_OPS[name], clip, [3, 4], 'tf_data')
    self.assertGreater(np.abs(view_a - view_b).mean(), 1e-3)

  @parameterized.parameters(*_GATED_OPS)
  def test_probability_gates_the_whole_clip(self, name):
    clip = _random_clip()
    as_float = clip.astype(np.float32) / 255.0
    changed = [
      not np.allclose(_GATED_OPS[name](clip, prob=0.5, seed=[seed, 0]).numpy(), as_float)
      for seed in range(16)
    ]
    self.assertTrue(any(changed) and not all(changed), msg=f'{name} applied: {changed}')
    self.assertAllClose(_GATED_OPS[name](clip, prob=0.0, seed=[0, 0]), as_float)

  @parameterized.parameters('eager', 'tf_data')
  def test_geometry_is_shared_by_changing_frames(self, mode):
    # Frames differ by a constant offset; one crop box and one flip for all keeps it constant.
    base = np.random.default_rng(0).uniform(0.0, 0.5, (1, 32, 40, 3)).astype(np.float32)
    clip = base + np.linspace(0.0, 0.3, 4, dtype=np.float32)[:, None, None, None]

    def crop_and_flip(x, seed):
      crop_seed, flip_seed = video_ops.split_seed(seed, 2)
      x = video_ops.random_resized_crop(x, _OUTPUT_SIZE, seed=crop_seed)
      return video_ops.random_flip_left_right(x, prob=1.0, seed=flip_seed)

    output = _run(crop_and_flip, clip, [7, 8], mode)
    for t in range(1, 4):
      self.assertAllClose(
        output[t] - output[0],
        np.full_like(output[0], clip[t, 0, 0, 0] - base[0, 0, 0, 0]),
        atol=1e-5,
      )

  def test_uint8_and_float_inputs_agree(self):
    clip = _random_clip()
    from_uint8 = _OPS['augment_clip'](clip, seed=[9, 9])
    from_float = _OPS['augment_clip'](clip.astype(np.float32) / 255.0, seed=[9, 9])
    self.assertAllClose(from_uint8, from_float, atol=1e-5)

  @parameterized.parameters('eager', 'tf_data')
  def test_grayscale_has_equal_channels(self, mode):
    output = _run(_OPS['grayscale'], _random_clip(), [1, 1], mode)
    self.assertAllClose(output[..., 0], output[..., 1])
    self.assertAllClose(output[..., 0], output[..., 2])

  @parameterized.parameters('eager', 'tf_data')
  def test_blur_with_tiny_sigma_is_identity(self, mode):
    clip = _random_clip(height=64, width=64)
    blur = functools.partial(video_ops.random_gaussian_blur, prob=1.0, sigma_range=(1e-3, 1e-3))
    self.assertAllClose(_run(blur, clip, [1, 2], mode), clip / 255.0, atol=1e-6)

  def test_blur_smooths(self):
    clip = _random_clip(height=64, width=64).astype(np.float32) / 255.0
    blurred = video_ops.gaussian_blur(clip, sigma=2.0).numpy()
    self.assertLess(blurred.std(), 0.5 * clip.std())
    self.assertAllClose(blurred.mean(), clip.mean(), atol=0.01)

  @parameterized.parameters('eager', 'tf_data')
  def test_decode_jpeg_frames(self, mode):
    colours = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200]], np.uint8)
    frames = np.broadcast_to(colours[:, None, None, :], (3, 24, 32, 3))
    encoded = [tf.io.encode_jpeg(frame).numpy() for frame in frames]
    if mode == 'eager':
      decoded = video_ops.decode_jpeg_frames(tf.constant(encoded)).numpy()
    else:
      dataset = tf.data.Dataset.from_tensors(encoded).map(video_ops.decode_jpeg_frames)
      self.assertEqual(dataset.element_spec.shape.as_list(), [3, None, None, 3])
      decoded = dataset.get_single_element().numpy()
    self.assertEqual(decoded.shape, (3, 24, 32, 3))
    self.assertEqual(decoded.dtype, np.uint8)
    self.assertAllClose(decoded.astype(np.float32), frames.astype(np.float32), atol=4.0)


if __name__ == '__main__':
  tf.test.main()
