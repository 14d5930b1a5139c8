r"""Examples/s of the Mask R-CNN demos' training input with and without Copy-Paste, against what
their training step consumes on the same CPU.

Usage (from the repo root; `python -m bench.copy_paste_input` works the same):
  python bench/copy_paste_input.py [--batch_size=8] [--input_warmup_batches=5]
      [--input_batches=60] [--cached_batches=10] [--warmup_steps=3] [--timed_steps=20]
      [--experiments=maskrcnn_copypaste_demo]

Each demo experiment, as registered when the benchmark runs, is measured with and without
Copy-Paste (the variants of bench/copy_paste_ablation.py: only `task.train_data.copy_paste`
differs), every one on the built-in digit scenes at the same global batch (`--batch_size`, which
replaces the registered one). Inputs are the task's own `build_inputs`, steps are the trainer
train.py uses. Three figures per variant, each in its own fresh process:
  input alone:   examples/s of the training input with nothing else running, after warm-up;
  step, cached:  examples/s that training runs at on `--cached_batches` batches of that input
                 materialised in memory beforehand: what the step consumes when input is free;
  training:      examples/s of real training, the input producing while the step runs;
and the process's peak RSS (input, model and training together).
input/step above 1 is needed for training not to wait on its input. On a CPU it is not enough:
the input pipeline and the training step compete for the same cores, so in real training each
gets only part of them; training/step (1.00: the live input costs nothing) shows what that
competition costs.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ''):
  # Run as a script: make the repo root importable, as `python -m` would.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Must precede TensorFlow's import (train.py says why).
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from bench import copy_paste_ablation  # noqa: E402  (after the path set-up)

MEASURE_FLAGS = (
  'batch_size',
  'input_warmup_batches',
  'input_batches',
  'cached_batches',
  'warmup_steps',
  'timed_steps',
)


def in_memory_dataset(dataset, num_batches: int):
  """The first `num_batches` batches of `dataset`, held in memory and repeated."""
  import tensorflow as tf

  batches = list(dataset.take(num_batches))
  stacked = tf.nest.map_structure(lambda *parts: tf.stack(parts), *batches)
  return tf.data.Dataset.from_tensor_slices(stacked).repeat()


def input_examples_per_second(dataset, batch_size: int, warmup_batches: int, batches: int):
  iterator = iter(dataset)
  for _ in range(warmup_batches):
    next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * batch_size / (time.perf_counter() - start)


def training_examples_per_second(trainer, batch_size: int, warmup_steps: int, steps: int):
  """(examples/s, last loss) of `trainer.train` on its current `train_dataset`."""
  import tensorflow as tf

  trainer.train(tf.constant(warmup_steps, tf.int32))
  start = time.perf_counter()
  logs = trainer.train(tf.constant(steps, tf.int32))
  loss = float(logs['training_loss'])  # Waits for the last step.
  return steps * batch_size / (time.perf_counter() - start), loss


def measure(experiment: str, copy_paste: bool, args) -> dict:
  """The three figures of one variant, in this process."""
  import tensorflow as tf
  from official.core import task_factory
  from official.modeling import performance

  from projects.common.datasets import builtin
  from projects.common.training import trainer as trainer_lib

  _, config = copy_paste_ablation.variant_config(experiment, copy_paste)
  data = config.task.train_data
  data.global_batch_size = args.batch_size
  builtin.materialize_builtin_datasets(config.task)
  performance.set_mixed_precision_policy(config.runtime.mixed_precision_dtype)
  strategy = tf.distribute.OneDeviceStrategy('/cpu:0')
  with strategy.scope(), tempfile.TemporaryDirectory() as model_dir:
    task = task_factory.get_task(config.task, logging_dir=model_dir)
    input_rate = input_examples_per_second(
      task.build_inputs(data), args.batch_size, args.input_warmup_batches, args.input_batches
    )
    trainer = trainer_lib.create_trainer(config, task, model_dir, train=True, evaluate=False)
    live_input = trainer.train_dataset
    trainer.train_dataset = strategy.experimental_distribute_dataset(
      in_memory_dataset(task.build_inputs(data), args.cached_batches)
    )
    step_rate, cached_loss = training_examples_per_second(
      trainer, args.batch_size, args.warmup_steps, args.timed_steps
    )
    trainer.train_dataset = live_input
    training_rate, live_loss = training_examples_per_second(
      trainer, args.batch_size, args.warmup_steps, args.timed_steps
    )
  return {
    'experiment': experiment,
    'copy_paste': copy_paste,
    'model': f'{config.task.model.backbone.type} backbone, {config.task.model.decoder.type} decoder',
    'dtype': config.runtime.mixed_precision_dtype or 'float32',
    'input_examples_per_second': input_rate,
    'step_examples_per_second': step_rate,
    'training_examples_per_second': training_rate,
    'last_loss_cached': cached_loss,
    'last_loss_training': live_loss,
    'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
  }


def _child(experiment: str, copy_paste: bool, args) -> dict:
  command = [
    sys.executable,
    os.path.abspath(__file__),
    f'--measure={experiment}',
    f'--copy_paste={copy_paste}',
    *(f'--{name}={getattr(args, name)}' for name in MEASURE_FLAGS),
  ]
  result = subprocess.run(command, capture_output=True, text=True)
  if result.returncode != 0:
    sys.stderr.write(result.stderr[-4000:])
    raise SystemExit(
      f'{experiment} {"with" if copy_paste else "without"} Copy-Paste failed '
      f'(exit {result.returncode})'
    )
  return json.loads(result.stdout.strip().splitlines()[-1])


def report(results: list[dict], args, cpu: str) -> str:
  lines = [
    f'Mask R-CNN demo training input against the training step, global batch {args.batch_size} '
    f'for every row, built-in digit scenes',
    f'CPU: {cpu}. The input pipeline and the training step share these cores: measured apart, '
    'each had all of them; in training they compete.',
    f'input alone: {args.input_batches} batches after {args.input_warmup_batches}; step on '
    f'cached batches and training: {args.timed_steps} steps after {args.warmup_steps} '
    f'({args.cached_batches} distinct cached batches)',
    f'{"experiment":<26}{"Copy-Paste":<12}{"dtype":<9}{"input alone":>12}{"step, cached":>14}'
    f'{"s/step":>8}{"input/step":>12}{"training":>10}{"training/step":>15}{"peak RSS":>10}',
    f'{"":<47}{"ex/s":>12}{"ex/s":>14}{"":>8}{"":>12}{"ex/s":>10}{"":>15}{"MB":>10}',
  ]
  for r in results:
    step_rate = r['step_examples_per_second']
    lines.append(
      f'{r["experiment"]:<26}{"with" if r["copy_paste"] else "without":<12}{r["dtype"]:<9}'
      f'{r["input_examples_per_second"]:>12.2f}{step_rate:>14.2f}'
      f'{args.batch_size / step_rate:>8.2f}'
      f'{r["input_examples_per_second"] / step_rate:>11.2f}x'
      f'{r["training_examples_per_second"]:>10.2f}'
      f'{r["training_examples_per_second"] / step_rate:>14.2f}x'
      f'{r["peak_rss_mb"]:>10.0f}'
    )
  for experiment in dict.fromkeys(r['experiment'] for r in results):
    rows = {r['copy_paste']: r for r in results if r['experiment'] == experiment}
    if len(rows) == 2:
      without, with_ = rows[False], rows[True]
      lines.append(
        f'{experiment}: Copy-Paste input runs at '
        f'{with_["input_examples_per_second"] / without["input_examples_per_second"]:.2f}x the '
        f'examples/s of the input without it; training with it at '
        f'{with_["training_examples_per_second"] / without["training_examples_per_second"]:.2f}x'
      )
  lines.append(
    'input/step > 1: the input alone outruns the step. training/step < 1: training waits on '
    'its input or shares the cores with it.'
  )
  return '\n'.join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--experiments', default=','.join(copy_paste_ablation.DEFAULT_EXPERIMENTS))
  parser.add_argument('--batch_size', type=int, default=8, help='global batch of every row')
  parser.add_argument('--input_warmup_batches', type=int, default=5)
  parser.add_argument('--input_batches', type=int, default=60)
  parser.add_argument('--cached_batches', type=int, default=10)
  parser.add_argument('--warmup_steps', type=int, default=3)
  parser.add_argument('--timed_steps', type=int, default=20)
  # Internal: one variant's measurement in this process.
  parser.add_argument('--measure', help=argparse.SUPPRESS)
  parser.add_argument('--copy_paste', choices=('True', 'False'), help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  for name in MEASURE_FLAGS:
    if getattr(args, name) < 1:
      parser.error(f'--{name} must be at least 1, got {getattr(args, name)}')
  if args.measure:
    print(json.dumps(measure(args.measure, args.copy_paste == 'True', args)))
    return

  from projects.common.configs import runtime

  cpu = f'{runtime.cpu_summary()}, {os.cpu_count()} cores'
  print(f'CPU: {cpu}', file=sys.stderr, flush=True)
  results = []
  for experiment in (e for e in args.experiments.split(',') if e.strip()):
    for copy_paste in (False, True):
      start = time.perf_counter()
      results.append(_child(experiment, copy_paste, args))
      print(
        f'  {experiment} {"with" if copy_paste else "without"} Copy-Paste measured '
        f'({time.perf_counter() - start:.0f} s)',
        file=sys.stderr,
        flush=True,
      )
  print(report(results, args, cpu))


if __name__ == '__main__':
  main()
