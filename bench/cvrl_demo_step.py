r"""Seconds per `cvrl_demo` pretraining step for clip length x temporal-kernel layout.

Usage (from the repo root; `python -m bench.cvrl_demo_step` works the same):
  python bench/cvrl_demo_step.py [--warmup_steps=3] [--timed_steps=15]

Why the demo uses 4-frame clips and CVRL's temporal kernels (1, 1, 3, 3): on a CPU the demo is
compute-bound, so a cheaper step buys more pretraining steps within `make demo`'s ~10 minutes.
Each layout is timed on the built-in moving digits with the demo's batch, through the task's own
train step, after warm-up; the figure printed beside each is its speed relative to the demo's
own layout.
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

LAYOUTS = (
  (8, (3, 3, 3, 3)),
  (8, (1, 1, 3, 3)),
  (4, (3, 3, 3, 3)),
  (4, (1, 1, 3, 3)),
)


def seconds_per_step(num_frames: int, temporal_kernel_sizes, args) -> float:
  import tensorflow as tf
  from official.core import exp_factory, task_factory

  from projects import registry_imports  # noqa: F401  (registers the experiments)
  from projects.common.datasets import builtin

  config = exp_factory.get_exp_config('cvrl_demo')
  for data in (config.task.train_data, config.task.validation_data):
    data.feature_shape = (num_frames, *data.feature_shape[1:])
  config.task.model.backbone.slim_r3d.temporal_kernel_sizes = temporal_kernel_sizes
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

  demo = exp_factory.get_exp_config('cvrl_demo')
  demo_layout = (
    demo.task.train_data.feature_shape[0],
    tuple(demo.task.model.backbone.slim_r3d.temporal_kernel_sizes),
  )
  timings = {layout: seconds_per_step(*layout, args) for layout in LAYOUTS}
  print(
    f'cvrl_demo pretraining step, batch {demo.task.train_data.global_batch_size} videos x 2 clips '
    f'at {demo.task.train_data.feature_shape[1]}^2, {args.timed_steps} steps after '
    f'{args.warmup_steps}'
  )
  print('frames  temporal kernels  s/step  speed vs cvrl_demo')
  for (frames, kernels), seconds in timings.items():
    marker = '  <- cvrl_demo' if (frames, kernels) == demo_layout else ''
    print(
      f'{frames:6d}  {kernels!s:16s}  {seconds:6.3f}  {timings[demo_layout] / seconds:.2f}x{marker}'
    )


if __name__ == '__main__':
  main()
