r"""CVRL pretraining throughput: ours against Model Garden's video_ssl, at float32 and bfloat16.

Usage (from the repo root; `python -m bench.cvrl_throughput` works the same):
  python bench/cvrl_throughput.py [--precisions=float32,bfloat16] [--rounds=3] [--num_frames=8]
      [--crop_size=112] [--batch_size=4] [--warmup_steps=3] [--timed_steps=10]

Both sides train the same network, CVRL's R3D-50 (`projects.cvrl.configs.cvrl.cvrl_r3d(50)`,
which is also the backbone of the authors' video_ssl release) with the 3-layer 2048-wide
projection head, on the same generated TFRecords, clip shape, batch and SGD optimizer: ours is
the `cvrl_kinetics600` experiment, the peer is Model Garden's `video_ssl_pretrain_kinetics600`
with the backbone and optimizer set to the same values. Both train through the trainer
`train.py` uses (projects.common.training), so both keep the stem convolution in float32 under
bfloat16 on a CPU. Every measurement is a fresh process, so that its peak RSS is its own; steps are
timed inside it after warm-up steps (tracing and the first steps excluded). The sides alternate,
ours then peer, for `--rounds` rounds, so a change in the machine's load over the run falls on both;
each side's s/step is the median over rounds with its range, and the ratio is the ratio of the
medians with the range of the per-round ratios. A run whose last loss is not finite fails the
benchmark: the speed of a diverged run is no figure. A further process times a large matmul at
each precision: the training step's achieved FLOP/s is printed against it. Step FLOPs are 3x the forward FLOPs (backward ~2x forward) of every clip in the step,
forward FLOPs counted by TensorFlow's per-op statistics (`projects.common.model_stats`).

Model Garden's video_ssl is imported here only, never from `projects/`.
"""

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ''):
  # Run as a script: make the repo root importable, as `python -m` would.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Must precede TensorFlow's import: TensorFlow 2.20's Eigen 3D convolutions, used without it, are
# far slower (train.py gives the figures). Both sides get it.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np

SIDES = ('ours', 'peer')
NUM_VIDEOS = 64
VIDEO_FRAMES = 40
FRAME_HEIGHT, FRAME_WIDTH = 128, 171


def _write_data(directory: str) -> str:
  """64 videos of 40 textured 128x171 JPEG frames in the video contract; returns the pattern."""
  from projects.common import tfrecords

  rng = np.random.default_rng(0)

  def videos():
    for i in range(NUM_VIDEOS):
      # Smooth noise, drifting: JPEG sizes and decode costs of a natural-ish video.
      base = rng.integers(0, 256, (VIDEO_FRAMES + 1, 17, 22, 3)).astype(np.float32)
      frames = np.stack(
        [
          np.kron(base[t], np.ones((8, 8, 1)))[:FRAME_HEIGHT, :FRAME_WIDTH]
          for t in range(VIDEO_FRAMES)
        ]
      ).astype(np.uint8)
      yield tfrecords.make_video_example(tfrecords.encode_jpeg_frames(frames), [i % 10])

  tfrecords.write_sharded(videos(), os.path.join(directory, 'videos'), num_shards=4)
  return os.path.join(directory, 'videos*')


def _data_overrides(args, input_path: str) -> dict:
  return {
    'input_path': input_path,
    'feature_shape': [args.num_frames, args.crop_size, args.crop_size, 3],
    'temporal_stride': 2,
    'min_image_size': FRAME_HEIGHT,
    'global_batch_size': args.batch_size,
    'num_examples': NUM_VIDEOS,
    'shuffle_buffer_size': NUM_VIDEOS,
    'num_classes': 10,
    'dtype': args.precision,
  }


def _our_config(args, input_path: str):
  from official.core import exp_factory

  from projects import registry_imports  # noqa: F401

  config = exp_factory.get_exp_config('cvrl_kinetics600')
  data = _data_overrides(args, input_path)
  config.override(
    {
      'runtime': {
        'distribution_strategy': 'one_device',
        'mixed_precision_dtype': args.precision,
        'num_gpus': 0,
      },
      'task': {'train_data': data, 'validation_data': data},
    },
    is_strict=True,
  )
  return config


def _peer_config(args, input_path: str, ours):
  from official.core import exp_factory
  from official.projects.video_ssl.configs import video_ssl  # noqa: F401
  from official.projects.video_ssl.tasks import pretrain  # noqa: F401

  config = exp_factory.get_exp_config('video_ssl_pretrain_kinetics600')
  data = _data_overrides(args, input_path)
  config.override(
    {
      'runtime': ours.runtime.as_dict(),
      'task': {
        'train_data': {**data, 'is_ssl': True},
        'validation_data': data,
        'model': {
          'backbone': ours.task.model.backbone.as_dict(),
          'norm_activation': ours.task.model.norm_activation.as_dict(),
          'hidden_norm_activation': {
            'use_sync_bn': ours.task.model.norm_activation.use_sync_bn,
          },
        },
        'losses': {
          'temperature': ours.task.losses.temperature,
          'l2_weight_decay': ours.task.losses.l2_weight_decay,
        },
      },
      'trainer': {'optimizer_config': ours.trainer.optimizer_config.as_dict()},
    },
    is_strict=True,
  )
  return config


def _forward_flops_per_clip(model, clip_shape) -> int:
  from projects.common import model_stats

  return model_stats.keras_model_stats(model, clip_shape).flops_per_view


def run_side(args) -> dict:
  """Times one side's training steps in this process."""
  import tensorflow as tf
  from official.core import task_factory
  from official.modeling import performance

  from projects.common.training import trainer as trainer_lib

  input_path = os.path.join(args.data_dir, 'videos*')
  config = _our_config(args, input_path)
  if args.side == 'peer':
    config = _peer_config(args, input_path, config)
  config.trainer.train_steps = args.warmup_steps + args.timed_steps
  config.validate()
  performance.set_mixed_precision_policy(config.runtime.mixed_precision_dtype)
  strategy = tf.distribute.OneDeviceStrategy('/cpu:0')
  with strategy.scope(), tempfile.TemporaryDirectory() as model_dir:
    task = task_factory.get_task(config.task, logging_dir=model_dir)
    trainer = trainer_lib.create_trainer(config, task, model_dir, train=True, evaluate=False)
    trainer.train(tf.constant(args.warmup_steps, tf.int32))
    start = time.perf_counter()
    logs = trainer.train(tf.constant(args.timed_steps, tf.int32))
    seconds = (time.perf_counter() - start) / args.timed_steps
    loss = float(logs['training_loss'])
    clip_shape = (args.num_frames, args.crop_size, args.crop_size, 3)
    flops = _forward_flops_per_clip(trainer.model, clip_shape)
  return {
    'side': args.side,
    'precision': args.precision,
    'seconds_per_step': seconds,
    'videos_per_second': args.batch_size / seconds,
    'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    'step_gflop': 3 * flops * 2 * args.batch_size / 1e9,
    'parameters': int(trainer.model.count_params()),
    'last_loss': loss,
  }


def run_matmul(args) -> dict:
  """FLOP/s of an n x n matmul at `args.precision`: the machine's practical compute rate."""
  import tensorflow as tf

  n = 2048
  dtype = tf.as_dtype(args.precision)
  a = tf.random.normal([n, n], dtype=tf.float32)
  a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
  matmul = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
  for _ in range(3):
    matmul().numpy()
  repeats = 20
  start = time.perf_counter()
  for _ in range(repeats):
    matmul().numpy()
  seconds = (time.perf_counter() - start) / repeats
  return {
    'side': 'matmul',
    'precision': args.precision,
    'gflop_per_second': 2 * n**3 / seconds / 1e9,
  }


def cpu_description() -> str:
  """The CPU model and whether it computes bfloat16 natively (else bfloat16 is slow here)."""
  from projects.common.configs import runtime

  model = runtime.first_cpu_fields().get('model name', 'unknown CPU')
  native = runtime.native_bfloat16_flags()
  bfloat16 = f'native bfloat16 ({", ".join(native)})' if native else 'no native bfloat16'
  return f'{model}, {os.cpu_count()} cores, {bfloat16}'


def _child(args, side: str, precision: str) -> dict:
  command = [
    sys.executable,
    os.path.abspath(__file__),
    f'--side={side}',
    f'--precision={precision}',
  ]
  for name in ('num_frames', 'crop_size', 'batch_size', 'warmup_steps', 'timed_steps', 'data_dir'):
    command.append(f'--{name}={getattr(args, name)}')
  result = subprocess.run(command, capture_output=True, text=True)
  if result.returncode != 0:
    sys.stderr.write(result.stderr[-4000:])
    raise SystemExit(f'{side} at {precision} failed (exit {result.returncode})')
  measured = json.loads(result.stdout.strip().splitlines()[-1])
  if side != 'matmul':
    check_finite_loss(measured)
  return measured


def check_finite_loss(run: dict) -> None:
  """Exits naming the run if its last training loss is NaN or infinite."""
  if not math.isfinite(run['last_loss']):
    raise SystemExit(
      f'{run["side"]} at {run["precision"]}: the last training loss is {run["last_loss"]}; a '
      'diverged run has no meaningful speed, so the benchmark stops here'
    )


def _median_and_range(values: list[float]) -> str:
  return f'{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})'


def _report(args, results: dict) -> None:
  """`results[(side, precision)]` is the list of that side's runs, one per round, in order."""
  print(
    f'CVRL pretraining, R3D-50, {args.batch_size} videos x 2 clips of '
    f'{args.num_frames}x{args.crop_size}^2 per step, {args.timed_steps} steps timed after '
    f'{args.warmup_steps}, {args.rounds} rounds alternating ours/peer, each run a fresh '
    f'process on one CPU device'
  )
  print(f'CPU: {cpu_description()}')
  print(
    f'{"side":<7}{"precision":<10}{"s/step median (range)":>24}{"videos/s":>10}'
    f'{"peak RSS MB":>13}{"GFLOP/s":>9}{"of matmul":>11}  last loss per round'
  )
  for precision in args.precisions:
    matmul = results[('matmul', precision)][0]['gflop_per_second']
    for side in SIDES:
      runs = results[(side, precision)]
      seconds = [r['seconds_per_step'] for r in runs]
      median = statistics.median(seconds)
      achieved = runs[0]['step_gflop'] / median
      losses = ' '.join(f'{r["last_loss"]:.3f}' for r in runs)
      print(
        f'{side:<7}{precision:<10}{_median_and_range(seconds):>24}'
        f'{args.batch_size / median:>10.2f}{max(r["peak_rss_mb"] for r in runs):>13.0f}'
        f'{achieved:>9.1f}{achieved / matmul:>10.0%}  {losses}'
      )
    print(f'{"matmul":<7}{precision:<10}{"":>47}{matmul:>9.1f}   (2048x2048)')
  ours, peer = results[('ours', args.precisions[0])][0], results[('peer', args.precisions[0])][0]
  print(
    f'step: {ours["step_gflop"]:.1f} GFLOP (ours), {peer["step_gflop"]:.1f} GFLOP (peer); '
    f'parameters {ours["parameters"] / 1e6:.1f}M (ours), {peer["parameters"] / 1e6:.1f}M (peer)'
  )
  for precision in args.precisions:
    ours, peer = results[('ours', precision)], results[('peer', precision)]
    ours_seconds = [r['seconds_per_step'] for r in ours]
    peer_seconds = [r['seconds_per_step'] for r in peer]
    # Above 1: ours is faster. The range pairs each round's two runs, which ran back to back.
    per_round = [p / o for o, p in zip(ours_seconds, peer_seconds, strict=True)]
    memory = statistics.median(r['peak_rss_mb'] for r in ours) / statistics.median(
      r['peak_rss_mb'] for r in peer
    )
    print(
      f'ratio ours/peer at {precision}: speed (peer s/step / ours s/step, ratio of medians) '
      f'{statistics.median(peer_seconds) / statistics.median(ours_seconds):.2f}x '
      f'(per round {min(per_round):.2f}-{max(per_round):.2f}x), peak memory {memory:.2f}x'
    )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--precisions', default='float32,bfloat16')
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--num_frames', type=int, default=8)
  parser.add_argument('--crop_size', type=int, default=112)
  parser.add_argument('--batch_size', type=int, default=4)
  parser.add_argument('--warmup_steps', type=int, default=3)
  parser.add_argument('--timed_steps', type=int, default=10)
  # Internal: one measurement in this process.
  parser.add_argument('--side', choices=(*SIDES, 'matmul'), help=argparse.SUPPRESS)
  parser.add_argument('--precision', help=argparse.SUPPRESS)
  parser.add_argument('--data_dir', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.side:
    result = run_matmul(args) if args.side == 'matmul' else run_side(args)
    print(json.dumps(result))
    return
  if args.rounds < 1:
    parser.error(f'--rounds must be at least 1, got {args.rounds}')
  args.precisions = args.precisions.split(',')
  print(f'CPU: {cpu_description()}', file=sys.stderr, flush=True)
  with tempfile.TemporaryDirectory() as data_dir:
    args.data_dir = data_dir
    _write_data(data_dir)
    results = {}
    for precision in args.precisions:
      results[('matmul', precision)] = [_child(args, 'matmul', precision)]
      for round_index in range(args.rounds):
        for side in SIDES:
          start = time.perf_counter()
          run = _child(args, side, precision)
          results.setdefault((side, precision), []).append(run)
          print(
            f'  round {round_index + 1}/{args.rounds}: {side} at {precision} '
            f'{run["seconds_per_step"]:.3f} s/step, last loss {run["last_loss"]:.4f} '
            f'({time.perf_counter() - start:.0f} s)',
            file=sys.stderr,
            flush=True,
          )
    _report(args, results)


if __name__ == '__main__':
  main()
