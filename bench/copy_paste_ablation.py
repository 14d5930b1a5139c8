r"""Mask AP of the Mask R-CNN demos with and without Copy-Paste, at 10 % and 100 % of the built-in
training images, over seeds.

Usage (from the repo root; `python -m bench.copy_paste_ablation` works the same):
  python bench/copy_paste_ablation.py --work_dir=DIR [--seeds=3] [--data_fractions=0.1,1.0]
      [--experiments=maskrcnn_copypaste_demo] [--train_steps=N]
      [--params_override=...]

What is compared. Each experiment of the Copy-Paste task, as registered when the benchmark runs,
trains with and without Copy-Paste (`task.train_data.copy_paste.enabled`) with everything else
equal (model, input size, flip and scale jitter, batch, schedule, seed). `maskrcnn_copypaste_demo`
is `maskrcnn_spinenet_demo` plus Copy-Paste, so its baseline is the SpineNet demo. The paper (Ghiasi et al., CVPR 2021) finds the gain largest when
training data is scarce; this measures whether the digit scenes agree.

Data. A fraction f < 1 trains on the first round(f * N) of the N built-in training images (the
generator draws scenes at random, so these are a random sample), written once as a TFRecord into
WORK_DIR/data; with Copy-Paste the pasted objects come from those images only. Every run is
evaluated once, after training, on the whole built-in validation split (COCO box and mask AP).

Budget. All runs of an experiment train the same number of steps: its registered
`trainer.train_steps`, or `--train_steps` for every experiment (a cosine learning rate then decays
over that many steps). At 10 % of the data the model thus sees each image ten times as often.
`--params_override`, applied last, changes every run as train.py's flag would (e.g. a smaller
batch and fewer validation steps for a smoke run); WORK_DIR/settings.json records it and
`--train_steps`, and a rerun with other values is refused.

Seeds. Seed S is `train.py --seed=S` (weights, unseeded ops) and `task.train_data.seed=S` (shuffle
order, Copy-Paste pairs and draws). The gain is averaged over seeds, each seed's run with
Copy-Paste paired with its run without.

Each run is one `train.py --mode=train_and_eval` process; its model dir is WORK_DIR/runs/NAME with
the config it ran (`config.yaml`), its log (`train.log`) and its figures (`result.json`). A run
whose `result.json` exists is skipped, so the same command resumes an interrupted benchmark (and
a run stopped midway resumes from its last checkpoint). Runs go seed by seed, so every cell has a
figure after the first seed. At the end the table is printed and WORK_DIR/ablation.json holds
every run.
"""

import argparse
import copy
import dataclasses
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time

if __package__ in (None, ''):
  # Run as a script: make the repo root importable, as `python -m` would.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Must precede TensorFlow's import (train.py says why).
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The demo: maskrcnn_spinenet_demo plus Copy-Paste; without it, that demo on the same task.
COPY_PASTE_EXPERIMENT = 'maskrcnn_copypaste_demo'
DEFAULT_EXPERIMENTS = (COPY_PASTE_EXPERIMENT,)
DEFAULT_DATA_FRACTIONS = (0.1, 1.0)
# Model Garden's COCO evaluator's names for box and mask AP (fractions in [0, 1]).
BOX_AP, MASK_AP = 'AP', 'mask_AP'
LABEL_MAP_FILENAME = 'categories.json'


def variant_config(experiment: str, copy_paste: bool):
  """(experiment to give train.py, full ExperimentConfig) of `experiment` with or without
  Copy-Paste, all else as registered."""
  from official.core import exp_factory

  from projects import registry_imports  # noqa: F401  (registers the demos)

  config = exp_factory.get_exp_config(experiment)
  if not hasattr(config.task.train_data, 'copy_paste'):
    raise ValueError(
      f'{experiment} has no task.train_data.copy_paste block; '
      f'run an experiment of the Copy-Paste task such as {COPY_PASTE_EXPERIMENT}'
    )
  config.task.train_data.copy_paste.enabled = copy_paste
  return experiment, config


def set_budget(trainer, train_steps: int | None) -> None:
  """`train_steps` (None: as registered) and one evaluation after training, on the whole
  validation split."""
  if train_steps is not None:
    trainer.train_steps = train_steps
    learning_rate = trainer.optimizer_config.learning_rate
    if learning_rate.type == 'cosine':
      learning_rate.cosine.decay_steps = train_steps
    # Orbit needs the summary interval to be a multiple of the loop length.
    loop = math.gcd(trainer.steps_per_loop, train_steps)
    trainer.steps_per_loop = trainer.summary_interval = trainer.checkpoint_interval = loop
  trainer.validation_interval = trainer.train_steps
  trainer.validation_steps = -1


def training_files(config) -> list[str]:
  """The files of `config.task.train_data` (its built-in dataset's, if it names one)."""
  import tensorflow as tf

  from projects.common.datasets import builtin

  task = copy.deepcopy(config.task)
  builtin.materialize_builtin_datasets(task)
  patterns = task.train_data.input_path
  patterns = patterns.split(',') if isinstance(patterns, str) else list(patterns)
  files = [f for p in patterns if p.strip() for f in sorted(tf.io.gfile.glob(p.strip()))]
  if not files:
    raise ValueError(f'task.train_data.input_path={task.train_data.input_path!r} matches no file')
  return files


def write_subset(files: list[str], fraction: float, data_dir: str) -> tuple[str | None, int, int]:
  """(file, images in it, images in all `files`): the first round(fraction * N) records of
  `files`, written once into `data_dir` (reused when it is there); no file (None) when that is
  all of them."""
  import tensorflow as tf

  total = sum(1 for _ in tf.data.TFRecordDataset(files))
  count = max(1, round(fraction * total))
  if count == total:
    return None, count, total
  path = os.path.join(data_dir, f'train_{count}_of_{total}.tfrecord')
  if not os.path.exists(path):
    os.makedirs(data_dir, exist_ok=True)
    partial = path + '.partial'
    with tf.io.TFRecordWriter(partial) as writer:
      for record in tf.data.TFRecordDataset(files).take(count):
        writer.write(record.numpy())
    os.replace(partial, path)
  # The SpineNet task reads the largest class id from the label map beside the shards.
  label_map = os.path.join(os.path.dirname(files[0]), LABEL_MAP_FILENAME)
  if os.path.exists(label_map):
    shutil.copyfile(label_map, os.path.join(data_dir, LABEL_MAP_FILENAME))
  return path, count, total


@dataclasses.dataclass(frozen=True)
class Run:
  experiment: str  # The demo being measured.
  copy_paste: bool
  data_fraction: float
  seed: int

  @property
  def name(self) -> str:
    copy_paste = 'copypaste' if self.copy_paste else 'baseline'
    return f'{self.experiment}_{copy_paste}_data{self.data_fraction:g}_seed{self.seed}'


def planned_runs(experiments, data_fractions, seeds: int) -> list[Run]:
  """Seed by seed, so that every cell has a figure as early as possible."""
  return [
    Run(experiment, copy_paste, fraction, seed)
    for seed in range(seeds)
    for fraction in data_fractions
    for experiment in experiments
    for copy_paste in (False, True)
  ]


def run_config(
  run: Run, train_input_path: str | None, train_steps: int | None, params_override: str = ''
):
  """(experiment for train.py, config) of one run."""
  from projects.common import experiment_config
  from projects.common.configs import schedules
  from projects.common.datasets import builtin

  experiment, config = variant_config(run.experiment, run.copy_paste)
  if train_input_path:
    config.task.train_data.input_path = train_input_path
  config.task.train_data.seed = run.seed
  set_budget(config.trainer, train_steps)
  if params_override:
    before = copy.deepcopy(config)
    config.override(
      experiment_config.load_override(params_override, '--params_override'), is_strict=True
    )
    # As train.py would: a learning rate left at its default follows a changed batch.
    schedules.follow_data_changes(before, config)
  # Explicit paths in the config file: the run's record says what it read.
  builtin.materialize_builtin_datasets(config.task)
  return experiment, config


def config_differences(expected, actual, prefix: str = ''):
  """Dotted keys (with both values) where two config dicts differ."""
  if isinstance(expected, dict) and isinstance(actual, dict):
    for key in sorted(set(expected) | set(actual)):
      yield from config_differences(expected.get(key), actual.get(key), f'{prefix}{key}.')
  elif expected != actual:
    yield f'{prefix[:-1]}: {expected!r} != {actual!r}'


def check_resolves_to(experiment: str, config_path: str, config) -> None:
  """Fails unless train.py resolves `--experiment --config_file` to `config` exactly (it would
  rescale schedule values that a config file leaves at the experiment's defaults when the batch
  changes, as with the SpineNet demo on the Copy-Paste task)."""
  from projects.common import experiment_config

  resolved = experiment_config.build_experiment_config(experiment, [config_path]).as_dict()
  differences = list(config_differences(config.as_dict(), resolved))
  if differences:
    raise SystemExit(
      f'train.py --experiment={experiment} --config_file={config_path} resolves to another '
      f'config than the benchmark wrote: {"; ".join(differences[:10])}'
    )


def train_run(run: Run, experiment: str, config, run_dir: str, num_train_images: int) -> dict:
  """Trains and evaluates one run through train.py and writes its `result.json`."""
  from official.modeling import hyperparams

  import train as train_script

  os.makedirs(run_dir, exist_ok=True)
  config_path = os.path.join(run_dir, 'config.yaml')
  hyperparams.save_params_dict_to_yaml(config, config_path)
  check_resolves_to(experiment, config_path, config)
  command = [
    sys.executable,
    os.path.join(REPO, 'train.py'),
    f'--experiment={experiment}',
    f'--config_file={config_path}',
    '--mode=train_and_eval',
    f'--model_dir={run_dir}',
    f'--seed={run.seed}',
  ]
  log_path = os.path.join(run_dir, 'train.log')
  start = time.time()
  with open(log_path, 'a') as log:
    log.write('$ ' + ' '.join(command) + '\n')
    log.flush()
    completed = subprocess.run(
      command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=REPO)
    )
  seconds = time.time() - start
  if completed.returncode != 0:
    with open(log_path) as log:
      sys.stderr.write(''.join(log.readlines()[-30:]))
    raise SystemExit(f'{run.name} failed (exit {completed.returncode}); log: {log_path}')
  metrics = train_script.last_evaluation(
    os.path.join(run_dir, config.trainer.validation_summary_subdir)
  )
  if MASK_AP not in metrics or BOX_AP not in metrics:
    raise SystemExit(f'{run.name} wrote no {MASK_AP!r} / {BOX_AP!r} evaluation; log: {log_path}')
  result = {
    **dataclasses.asdict(run),
    'name': run.name,
    'train_py_experiment': experiment,
    'train_steps': config.trainer.train_steps,
    'global_batch_size': config.task.train_data.global_batch_size,
    'train_input_path': config.task.train_data.input_path,
    'num_train_images': num_train_images,
    'box_ap': metrics[BOX_AP],
    'mask_ap': metrics[MASK_AP],
    'metrics': metrics,
    # Of this invocation only, if the run resumed from a checkpoint.
    'seconds': seconds,
  }
  result_path = os.path.join(run_dir, 'result.json')
  with open(result_path + '.partial', 'w') as f:
    json.dump(result, f, indent=2)
  os.replace(result_path + '.partial', result_path)
  return result


def mean_and_spread(values: list[float]) -> str:
  """Percent: mean ± sample standard deviation [min-max] (one value: just it)."""
  percent = [100 * v for v in values]
  if len(percent) == 1:
    return f'{percent[0]:.1f}'
  return (
    f'{statistics.mean(percent):.1f} ± {statistics.stdev(percent):.1f} '
    f'[{min(percent):.1f}-{max(percent):.1f}]'
  )


def signed_mean_and_spread(values: list[float]) -> str:
  percent = [100 * v for v in values]
  if len(percent) == 1:
    return f'{percent[0]:+.1f}'
  return f'{statistics.mean(percent):+.1f} ± {statistics.stdev(percent):.1f}'


def summarize(results: list[dict]) -> tuple[list[dict], list[dict]]:
  """(cells, gains): per (experiment, data fraction, Copy-Paste) the runs' APs over seeds; per
  (experiment, data fraction) the with-minus-without AP of the seeds that have both runs."""
  cells = {}
  for result in results:
    key = (result['experiment'], result['data_fraction'], result['copy_paste'])
    cells.setdefault(key, []).append(result)
  cell_rows = []
  for (experiment, fraction, copy_paste), runs in sorted(cells.items()):
    runs = sorted(runs, key=lambda r: r['seed'])
    cell_rows.append(
      {
        'experiment': experiment,
        'data_fraction': fraction,
        'copy_paste': copy_paste,
        'num_train_images': runs[0]['num_train_images'],
        'train_steps': runs[0]['train_steps'],
        'seeds': [r['seed'] for r in runs],
        'mask_ap': [r['mask_ap'] for r in runs],
        'box_ap': [r['box_ap'] for r in runs],
      }
    )
  gain_rows = []
  for experiment, fraction in sorted({(e, f) for e, f, _ in cells}):
    without = {r['seed']: r for r in cells.get((experiment, fraction, False), [])}
    with_ = {r['seed']: r for r in cells.get((experiment, fraction, True), [])}
    seeds = sorted(set(without) & set(with_))
    if seeds:
      gain_rows.append(
        {
          'experiment': experiment,
          'data_fraction': fraction,
          'seeds': seeds,
          'mask_ap_gain': [with_[s]['mask_ap'] - without[s]['mask_ap'] for s in seeds],
          'box_ap_gain': [with_[s]['box_ap'] - without[s]['box_ap'] for s in seeds],
        }
      )
  return cell_rows, gain_rows


def report(cells: list[dict], gains: list[dict], cpu: str) -> str:
  lines = [
    'Copy-Paste ablation on the built-in digit scenes: COCO AP (%) on the validation split '
    '(all of it unless --params_override set trainer.validation_steps), mean ± sample standard '
    'deviation over seeds [min-max]',
    f'CPU: {cpu}',
    f'{"experiment":<26}{"data":>6}{"images":>8}{"steps":>7}  {"Copy-Paste":<12}{"seeds":>5}'
    f'  {"mask AP":<24}{"box AP":<24}',
  ]
  for cell in cells:
    lines.append(
      f'{cell["experiment"]:<26}{cell["data_fraction"]:>6.0%}{cell["num_train_images"]:>8}'
      f'{cell["train_steps"]:>7}  {"with" if cell["copy_paste"] else "without":<12}'
      f'{len(cell["seeds"]):>5}  {mean_and_spread(cell["mask_ap"]):<24}'
      f'{mean_and_spread(cell["box_ap"]):<24}'
    )
  lines.append(
    'Gain from Copy-Paste, AP points (with minus without, paired by seed; mean ± sample '
    'standard deviation):'
  )
  lines.append(
    f'{"experiment":<26}{"data":>6}{"pairs":>6}  {"mask AP gain":<16}{"box AP gain":<16}'
  )
  for gain in gains:
    lines.append(
      f'{gain["experiment"]:<26}{gain["data_fraction"]:>6.0%}{len(gain["seeds"]):>6}  '
      f'{signed_mean_and_spread(gain["mask_ap_gain"]):<16}'
      f'{signed_mean_and_spread(gain["box_ap_gain"]):<16}'
    )
  return '\n'.join(line.rstrip() for line in lines)


def check_settings(work_dir: str, settings: dict) -> None:
  """Records the settings that every run of `work_dir` shares; fails if a rerun changes them (its
  new runs would not be comparable with the finished ones)."""
  path = os.path.join(work_dir, 'settings.json')
  if os.path.exists(path):
    with open(path) as f:
      recorded = json.load(f)
    if recorded != settings:
      raise SystemExit(
        f'{work_dir} holds runs made with {recorded}, not {settings}: rerun with those settings '
        'or use another --work_dir'
      )
    return
  os.makedirs(work_dir, exist_ok=True)
  with open(path, 'w') as f:
    json.dump(settings, f)


def _float_list(text: str) -> list[float]:
  values = [float(v) for v in text.split(',') if v.strip()]
  if not values or any(not 0 < v <= 1 for v in values):
    raise argparse.ArgumentTypeError(f'expected fractions in (0, 1], got {text!r}')
  return values


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--work_dir', required=True, help='data subsets, runs and ablation.json')
  parser.add_argument('--experiments', default=','.join(DEFAULT_EXPERIMENTS))
  parser.add_argument(
    '--data_fractions',
    type=_float_list,
    default=list(DEFAULT_DATA_FRACTIONS),
    help='fractions of the built-in training images, comma-separated',
  )
  parser.add_argument('--seeds', type=int, default=3, help='seeds 0..N-1 for every cell')
  parser.add_argument(
    '--train_steps',
    type=int,
    default=None,
    help="training steps of every run (default: each experiment's registered train_steps)",
  )
  parser.add_argument(
    '--params_override',
    default='',
    help='applied to every run as train.py applies it, e.g. a smaller batch for a smoke run',
  )
  args = parser.parse_args(argv)
  if args.seeds < 1:
    parser.error(f'--seeds must be at least 1, got {args.seeds}')
  if args.train_steps is not None and args.train_steps < 1:
    parser.error(f'--train_steps must be at least 1, got {args.train_steps}')
  experiments = [e for e in args.experiments.split(',') if e.strip()]
  check_settings(
    args.work_dir, {'train_steps': args.train_steps, 'params_override': args.params_override}
  )

  from projects.common.configs import runtime

  cpu = f'{runtime.cpu_summary()}, {os.cpu_count()} cores'
  print(f'CPU: {cpu}', file=sys.stderr, flush=True)
  # One subset per fraction, shared by every experiment: they must train on the same images.
  files = {tuple(training_files(variant_config(e, False)[1])) for e in experiments}
  if len(files) != 1:
    raise SystemExit(f'{experiments} train on different data; the ablation needs the same data')
  files = list(files.pop())
  subsets = {
    fraction: write_subset(files, fraction, os.path.join(args.work_dir, 'data'))
    for fraction in args.data_fractions
  }
  results = []
  runs = planned_runs(experiments, args.data_fractions, args.seeds)
  for index, run in enumerate(runs):
    run_dir = os.path.join(args.work_dir, 'runs', run.name)
    result_path = os.path.join(run_dir, 'result.json')
    if os.path.exists(result_path):
      with open(result_path) as f:
        results.append(json.load(f))
      continue
    path, count, total = subsets[run.data_fraction]
    experiment, config = run_config(run, path, args.train_steps, args.params_override)
    print(
      f'[{index + 1}/{len(runs)}] {run.name}: {count}/{total} images, '
      f'{config.trainer.train_steps} steps ...',
      file=sys.stderr,
      flush=True,
    )
    result = train_run(run, experiment, config, run_dir, count)
    results.append(result)
    print(
      f'    mask AP {100 * result["mask_ap"]:.1f}, box AP {100 * result["box_ap"]:.1f} '
      f'({result["seconds"] / 60:.1f} min)',
      file=sys.stderr,
      flush=True,
    )
  cells, gains = summarize(results)
  print(report(cells, gains, cpu))
  with open(os.path.join(args.work_dir, 'ablation.json'), 'w') as f:
    json.dump({'cpu': cpu, 'runs': results, 'cells': cells, 'gains': gains}, f, indent=2)


if __name__ == '__main__':
  main()
