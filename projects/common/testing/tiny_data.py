"""Tiny built-in datasets for tests, in a temporary folder: a few clips of moving digits, a few
digit scenes."""

from projects.common.datasets import digit_scenes, moving_mnist


def tiny_moving_mnist(cache_dir: str, **overrides) -> moving_mnist.MovingMnistInfo:
  """8 training and 4 validation clips of 8 frames at 32^2, two shards per split."""
  params = {
    'num_train': 8,
    'num_validation': 4,
    'num_frames': 8,
    'frame_size': 32,
    'num_shards': 2,
  }
  params.update(overrides)
  return moving_mnist.build_moving_mnist(cache_dir=cache_dir, **params)


def tiny_digit_scenes(cache_dir: str) -> digit_scenes.DigitScenesInfo:
  """4 training and 2 validation scenes of 64^2 (class ids 1..10, `categories.json` beside)."""
  return digit_scenes.build_digit_scenes(
    cache_dir=cache_dir, num_train=4, num_validation=2, image_size=64, digit_size_range_px=(16, 32)
  )
