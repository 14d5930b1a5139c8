"""Tiny built-in datasets for tests: a few clips of moving digits in a temporary folder."""

from projects.common.datasets import moving_mnist


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
