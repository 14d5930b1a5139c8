r"""`cvrl_demo` training throughput on one worker against two, and the all-gather's share of a step.

Usage (from the repo root; `python -m bench.multiworker_scaling` works the same):
  python bench/multiworker_scaling.py [--per_worker_batch=32] [--warmup_steps=3]
      [--timed_steps=15] [--profile_steps=3]

Each worker is its own process with its own `TF_CONFIG` on loopback ports, training through
`MultiWorkerMirroredStrategy` with the trainer `train.py` uses; one worker runs the same strategy
so that only the number of workers changes. Every worker keeps the same batch (weak scaling), so
CVRL's loss sees twice the clips with two workers: its all-gather of embeddings and the gradient
all-reduce travel over gRPC.

What the figure can show on one machine: both workers share this machine's cores, so two
workers cannot be faster than one here; the ratio of videos/s (two workers against one) measures
what the multi-worker machinery costs on top of the shared compute. What it cannot show: the
speed-up of two machines, or network cost between machines. The profile (two workers, the chief's
host trace) gives the collectives' share of the chief's op time.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ''):
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Without oneDNN, 3D convolutions run 10-80x slower on CPU with TensorFlow 2.20.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from projects.common import cluster as cluster_lib  # noqa: E402  (after the path set-up)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Op types of the collectives MultiWorkerMirroredStrategy runs (all-gather and all-reduce).
COLLECTIVE_OP_PREFIX = 'Collective'
# Host trace threads that run kernels: the executor's and the collectives' own.
KERNEL_THREADS = ('tf_Compute', 'collective_ops')
EXECUTOR_WRAPPER_EVENTS = frozenset({'Process', 'Run', 'Start', 'RunClosure'})


def op_time_by_type(profile_dir: str) -> dict[str, float]:
  """Seconds of kernel time by TensorFlow op type in a profile's host trace.

  Counts the events of the executor's compute threads and of the collective threads (named
  'op_name:OpType'); the executor's own wrapper events, which enclose kernels, are left out.
  """
  from tensorflow.tsl.profiler.protobuf import xplane_pb2

  seconds = collections.Counter()
  for root, _, files in os.walk(profile_dir):
    for name in (n for n in files if n.endswith('.xplane.pb')):
      space = xplane_pb2.XSpace()
      with open(os.path.join(root, name), 'rb') as f:
        space.ParseFromString(f.read())
      for plane in space.planes:
        for line in plane.lines:
          if not line.name.startswith(KERNEL_THREADS):
            continue
          for event in line.events:
            op_name = plane.event_metadata[event.metadata_id].name
            if ':' in op_name:
              op_type = op_name.rsplit(':', 1)[-1]
              if op_type not in EXECUTOR_WRAPPER_EVENTS:
                seconds[op_type] += event.duration_ps / 1e12
  return dict(seconds)


def run_worker(args: argparse.Namespace) -> None:
  """One worker: trains `cvrl_demo` under the cluster in TF_CONFIG; the chief prints JSON."""
  import tensorflow as tf
  from official.common import distribute_utils
  from official.core import task_factory

  from projects import registry_imports  # noqa: F401  (registers cvrl_demo)
  from projects.common import experiment_config
  from projects.common.training import trainer as trainer_lib

  num_workers = len(json.loads(os.environ['TF_CONFIG'])['cluster']['worker'])
  params = experiment_config.build_experiment_config(
    'cvrl_demo',
    params_override=(
      'runtime.distribution_strategy=multi_worker_mirrored,'
      f'task.train_data.global_batch_size={args.per_worker_batch * num_workers}'
    ),
  )
  strategy = distribute_utils.get_distribution_strategy(
    distribution_strategy='multi_worker_mirrored'
  )
  with strategy.scope():
    task = task_factory.get_task(params.task)
    trainer = trainer_lib.create_trainer(
      params, task, model_dir=tempfile.mkdtemp(), train=True, evaluate=False
    )

  def train(steps: int) -> float:
    logs = trainer.train(tf.constant(steps, tf.int32))
    return float(logs[trainer.train_loss.name])

  train(args.warmup_steps)
  start = time.perf_counter()
  loss = train(args.timed_steps)
  seconds_per_step = (time.perf_counter() - start) / args.timed_steps
  profile_dir, profiled_seconds = '', 0.0
  if args.profile_steps:
    profile_dir = tempfile.mkdtemp(prefix='multiworker_profile_')
    tf.profiler.experimental.start(profile_dir)
    start = time.perf_counter()
    train(args.profile_steps)
    profiled_seconds = time.perf_counter() - start
    tf.profiler.experimental.stop()
  if strategy.cluster_resolver.task_id == 0:
    print(
      json.dumps(
        {
          'num_workers': num_workers,
          'seconds_per_step': seconds_per_step,
          'videos_per_second': args.per_worker_batch * num_workers / seconds_per_step,
          'last_loss': loss,
          'op_seconds': op_time_by_type(profile_dir) if profile_dir else {},
          'profiled_seconds': profiled_seconds,
        }
      )
    )


def run_cluster(num_workers: int, args: argparse.Namespace, profile_steps: int) -> dict:
  cluster = cluster_lib.loopback_cluster(num_workers)
  flags = [
    f'--per_worker_batch={args.per_worker_batch}',
    f'--warmup_steps={args.warmup_steps}',
    f'--timed_steps={args.timed_steps}',
    f'--profile_steps={profile_steps}',
  ]
  workers = []
  for index in range(num_workers):
    env = dict(
      os.environ,
      PYTHONPATH=REPO,
      TF_CONFIG=json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': index}}),
    )
    workers.append(
      subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), '--worker', *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
      )
    )
  outputs = [worker.communicate() for worker in workers]
  for worker, (_, stderr) in zip(workers, outputs, strict=True):
    if worker.returncode:
      raise RuntimeError(f'a worker of {num_workers} failed: {stderr[-3000:]}')
  return json.loads(outputs[0][0].strip().splitlines()[-1])


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--per_worker_batch', type=int, default=32)
  parser.add_argument('--warmup_steps', type=int, default=3)
  parser.add_argument('--timed_steps', type=int, default=15)
  parser.add_argument('--profile_steps', type=int, default=3)
  args = parser.parse_args(argv)
  if args.worker:
    run_worker(args)
    return

  from projects.common.configs import runtime

  cpu = runtime.first_cpu_fields().get('model name', 'unknown CPU')
  print(f'CPU: {cpu}, {os.cpu_count()} cores, shared by every worker of a run')
  one = run_cluster(1, args, profile_steps=0)
  two = run_cluster(2, args, profile_steps=args.profile_steps)
  print('workers  s/step  videos/s  last loss')
  for result in (one, two):
    print(
      f'{result["num_workers"]:>7}  {result["seconds_per_step"]:6.3f}  '
      f'{result["videos_per_second"]:8.1f}  {result["last_loss"]:.3f}'
    )
  print(f'two workers / one, videos/s: {two["videos_per_second"] / one["videos_per_second"]:.2f}x')
  op_seconds, wall = two['op_seconds'], two['profiled_seconds']
  if op_seconds:
    collective = sum(s for op, s in op_seconds.items() if op.startswith(COLLECTIVE_OP_PREFIX))
    print(
      f'profile of {args.profile_steps} steps, chief of two workers: {wall:.3f} s wall; '
      f'collective kernels (all-gather + all-reduce) {collective:.3f} s = '
      f'{100 * collective / wall:.1f} % of it (they can overlap compute)'
    )
    total = sum(op_seconds.values())
    for op, seconds in sorted(op_seconds.items(), key=lambda item: -item[1])[:8]:
      print(f'  {op:34s} {seconds:7.3f} s  {100 * seconds / total:5.1f} % of kernel time')


if __name__ == '__main__':
  main()
