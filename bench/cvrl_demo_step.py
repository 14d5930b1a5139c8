r"""Seconds per `cvrl_demo` pretraining step by clip length, temporal kernels, stem and batch.

Usage (from the repo root; `python -m bench.cvrl_demo_step` works the same):
  python bench/cvrl_demo_step.py [--warmup_steps=3] [--timed_steps=15]

Why the demo uses 4-frame clips, CVRL's temporal kernels (1, 1, 3, 3), a 1x7x7 stem and batches
of 64 videos: on a CPU the demo is compute-bound, so a cheaper step buys more pretraining within
`make demo`'s ~10 minutes. The stem is the largest convolution at the stride-1 demo's 32^2 (3
input channels; the weight gradient of a 3x7x7 kernel ran 3.7x its forward pass under oneDNN on
an AMD EPYC). Batch 64 is for the contrastive loss (twice the negatives per step); the bench shows
what it costs per video.
Each layout is timed on the built-in moving digits through the task's own train step, after
warm-up; the figure printed beside each is its speed per video relative to the demo's layout.
"""

import argparse
import os
import sys
import time

if __package__ in (None, ''):
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Must precede TensorFlow's import (see train.py).
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# (frames per clip, temporal kernel per stage, stem temporal kernel, videos per batch)
LAYOUTS = (
  (8, (3, 3, 3, 3), 3, 32),
  (8, (1, 1, 3, 3), 3, 32),
  (4, (3, 3, 3, 3), 3, 32),
  (4, (1, 1, 3, 3), 3, 32),
  (4, (1, 1, 3, 3), 1, 32),
  (4, (1, 1, 3, 3), 1, 64),
)


def seconds_per_step(num_frames, temporal_kernel_sizes, stem_temporal_kernel_size, batch, args):
  import tensorflow as tf
  from official.core import exp_factory, task_factory

  from projects import registry_imports  # noqa: F401  (registers the experiments)
  from projects.common.datasets import builtin

  config = exp_factory.get_exp_config('cvrl_demo')
  for data in (config.task.train_data, config.task.validation_data):
    data.feature_shape = (num_frames, *data.feature_shape[1:])
  config.task.model.backbone.slim_r3d.temporal_kernel_sizes = temporal_kernel_sizes
  config.task.model.backbone.slim_r3d.stem_temporal_kernel_size = stem_temporal_kernel_size
  config.task.train_data.global_batch_size = batch
  builtin.materialize_builtin_datasets(config.task)
  task = task_factory.get_task(config.task)
  model = task.build_model()
  optimizer = task.create_optimizer(config.trainer.optimizer_config, config.runtime)
  batches = iter(task.build_inputs(config.task.train_data))
  step = tf.function(lambda batch: task.train_step(batch, model, optimizer))
  for _ in range(args.warmup_steps):
    step(next(batches))
  start = time.perf_counter()
  for _ in range(args.timed_steps):
    logs = step(next(batches))
  float(logs['loss'])  # Waits for the last step.
  return (time.perf_counter() - start) / args.timed_steps


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--warmup_steps', type=int, default=3)
  parser.add_argument('--timed_steps', type=int, default=15)
  args = parser.parse_args()

  from official.core import exp_factory

  from projects import registry_imports  # noqa: F401  (registers the experiments)
  from projects.common.configs import runtime

  demo = exp_factory.get_exp_config('cvrl_demo')
  backbone = demo.task.model.backbone.slim_r3d
  demo_layout = (
    demo.task.train_data.feature_shape[0],
    tuple(backbone.temporal_kernel_sizes),
    backbone.stem_temporal_kernel_size,
    demo.task.train_data.global_batch_size,
  )
  timings = {layout: seconds_per_step(*layout, args) for layout in LAYOUTS}
  demo_ms_per_video = 1000 * timings[demo_layout] / demo_layout[-1]
  print(
    f'cvrl_demo pretraining step, 2 clips per video at {demo.task.train_data.feature_shape[1]}^2, '
    f'{args.timed_steps} steps after {args.warmup_steps}; CPU: {runtime.cpu_summary()}'
  )
  print('frames  temporal kernels  stem  batch  s/step  ms/video  speed per video vs cvrl_demo')
  for layout, seconds in timings.items():
    frames, kernels, stem, batch = layout
    ms_per_video = 1000 * seconds / batch
    marker = '  <- cvrl_demo' if layout == demo_layout else ''
    print(
      f'{frames:6d}  {kernels!s:16s}  {stem:4d}  {batch:5d}  {seconds:6.3f}  {ms_per_video:8.1f}  '
      f'{demo_ms_per_video / ms_per_video:.2f}x{marker}'
    )


if __name__ == '__main__':
  main()
