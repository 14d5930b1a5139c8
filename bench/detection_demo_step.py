r"""Seconds per training step of the detection demos, against the settings they replaced.

Usage (from the repo root; `python -m bench.detection_demo_step` works the same):
  python bench/detection_demo_step.py [--warmup_steps=3] [--timed_steps=15] [--demos=NAME,...]

`retinanet_spinenet_demo` and `maskrcnn_spinenet_demo` must train in about 10 minutes on 2 CPU
cores, so every setting that makes a step cheaper buys epochs, which is what their box AP needs.
Each variant is one `--params_override`-style change to a demo; each is timed through the task's
own train step on batches from its real input pipeline (the built-in digit scenes), after
warm-up, and printed as seconds per step and its speed relative to the demo as registered.
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

# Per demo: (label, override of the registered config); the first is the demo itself.
VARIANTS = {
  'retinanet_spinenet_demo': (
    ('as registered', {}),
    ('batch 16', {'task': {'train_data': {'global_batch_size': 16}}}),
  ),
  'maskrcnn_spinenet_demo': (
    ('as registered', {}),
    (
      "Model Garden's per-image proposal NMS, 64 RoIs, 16 mask targets",
      {
        'task': {
          'model': {
            'roi_generator': {'use_batched_nms': False},
            'roi_sampler': {'num_sampled_rois': 64},
            'mask_sampler': {'num_sampled_masks': 16},
          }
        }
      },
    ),
    (
      "Model Garden's 100 objects per image (the scenes hold at most 6)",
      {'task': {'train_data': {'parser': {'max_num_instances': 100}}}},
    ),
    # Tried and not taken (projects/spinenet/README.md): with 9 epochs and batch norm momentum
    # 0.99 it reached 21.3 box / 4.1 mask AP in 11.1 min.
    (
      'mask head 32 wide, 56^2 mask crops',
      {
        'task': {
          'model': {'mask_head': {'num_filters': 32}},
          'train_data': {'parser': {'mask_crop_size': 56}},
        }
      },
    ),
  ),
}


def seconds_per_step(
  experiment: str, override: dict, args: argparse.Namespace
) -> tuple[float, int]:
  """(seconds per training step, images per step) of `experiment` with `override`."""
  import tensorflow as tf
  from official.core import exp_factory, task_factory

  from projects.common.datasets import builtin

  config = exp_factory.get_exp_config(experiment)
  config.override(override, is_strict=True)
  builtin.materialize_builtin_datasets(config.task)
  task = task_factory.get_task(config.task)
  model = task.build_model()
  optimizer = task.create_optimizer(config.trainer.optimizer_config, config.runtime)
  metrics = task.build_metrics(training=True)
  batches = iter(task.build_inputs(config.task.train_data))
  step = tf.function(lambda batch: task.train_step(batch, model, optimizer, metrics))
  for _ in range(args.warmup_steps):
    step(next(batches))
  start = time.perf_counter()
  for _ in range(args.timed_steps):
    logs = step(next(batches))
  float(logs[task.loss])  # Waits for the last step.
  return (time.perf_counter() - start) / args.timed_steps, config.task.train_data.global_batch_size


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--warmup_steps', type=int, default=3)
  parser.add_argument('--timed_steps', type=int, default=15)
  parser.add_argument('--demos', default=','.join(VARIANTS), help='comma-separated demo names')
  args = parser.parse_args()

  from projects import registry_imports  # noqa: F401  (registers the experiments)
  from projects.common.configs import runtime

  demos = args.demos.split(',')
  unknown = sorted(set(demos) - set(VARIANTS))
  if unknown:
    parser.error(f'--demos: {unknown} not among {sorted(VARIANTS)}')
  print(f'CPU: {runtime.cpu_summary()}; {args.timed_steps} steps after {args.warmup_steps}')
  for demo in demos:
    timings = [
      (label, *seconds_per_step(demo, override, args)) for label, override in VARIANTS[demo]
    ]
    registered_ms_per_image = 1000 * timings[0][1] / timings[0][2]
    print(f'\n{demo}: s/step  batch  ms/image  speed per image vs registered')
    for label, seconds, batch in timings:
      ms_per_image = 1000 * seconds / batch
      print(
        f'  {seconds:6.3f}  {batch:5d}  {ms_per_image:8.1f}  '
        f'{registered_ms_per_image / ms_per_image:4.2f}x  {label}'
      )


if __name__ == '__main__':
  main()
