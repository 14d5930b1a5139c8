r"""Novel- and base-category AP of ViLD-text, ViLD and ViLD-ensemble on the ViLD demo split, over
seeds: does distilling the image teacher give novel AP, as the paper finds?

Usage (from the repo root; `python -m bench.vild_demo` works the same):
  python bench/vild_demo.py --work_dir=DIR [--seeds=3] [--train_steps=N] [--params_override=...]

What is compared. The `vild_demo` experiment (Mask R-CNN with the mobile SpineNet-49XS at 128^2
on the built-in `vild_digit_scenes`, 'two', 'five' and 'eight' never training targets), as
registered when the benchmark runs, in three variants with everything else equal (model, data,
schedule, seed):
  ViLD-text      task.losses.image_distillation_weight=0 (text classifier only);
  ViLD           the demo's own distillation weight (0.5, the paper's) on the teacher's
                 embeddings of the dataset's proposals;
  ViLD-ensemble  as ViLD with task.model.vild.ensemble=true (a second head for the image branch,
                 scores combined geometrically, lambda 2/3).
The gain of ViLD and of ViLD-ensemble over ViLD-text in novel AP is paired by seed.

Budget. Every run trains the same number of steps: the experiment's registered
`trainer.train_steps`, or `--train_steps` (the cosine learning rate then decays over that many),
and is evaluated once, after training, on the whole validation split: the base / novel figures
count every image of the ground truth. `--params_override`, applied last, changes every run as
train.py's flag would (e.g. tiny data and model for a smoke run); WORK_DIR/settings.json records
it and `--train_steps`, and a rerun with other values is refused.

Seeds. Seed S is `train.py --seed=S` (weights, unseeded ops) and `task.train_data.seed=S`
(shuffle order).

Each run is one `train.py --mode=train_and_eval` process (started as the Copy-Paste ablation,
bench/copy_paste_ablation.py, starts its runs); its model dir is WORK_DIR/runs/NAME with the
config it ran (`config.yaml`), its log (`train.log`), the task's report
(`eval_report/detection_metrics.json`, base / novel AP under "open_vocabulary") and its figures
(`result.json`). A run whose `result.json` exists is skipped, so the same command resumes an
interrupted benchmark (a run stopped midway resumes from its last checkpoint). Runs go seed by
seed, so every variant has a figure after the first seed. At the end the table is printed and
WORK_DIR/vild_demo.json holds every run.
"""

import argparse
import copy
import dataclasses
import json
import os
import sys

if __package__ in (None, ''):
  # Run as a script: make the repo root importable, as `python -m` would.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Must precede TensorFlow's import (train.py says why).
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# The Copy-Paste ablation's helpers for runs through train.py: budget, settings record, the run
# itself, figures as mean ± spread.
from bench import copy_paste_ablation as training_runs  # noqa: E402

EXPERIMENT = 'vild_demo'
# Variant → (label, overrides of the registered experiment), ViLD-text first: the baseline.
BASELINE = 'vild_text'
VARIANTS = {
  BASELINE: ('ViLD-text', {'task': {'losses': {'image_distillation_weight': 0.0}}}),
  'vild': ('ViLD', {}),
  'vild_ensemble': ('ViLD-ensemble', {'task': {'model': {'vild': {'ensemble': True}}}}),
}
# (result key, kind, category group) of the figures read from the task's report.
FIGURES = (
  ('novel_box_ap', 'box', 'novel'),
  ('base_box_ap', 'box', 'base'),
  ('novel_mask_ap', 'mask', 'novel'),
  ('base_mask_ap', 'mask', 'base'),
)
GAIN_FIGURES = ('novel_box_ap', 'novel_mask_ap')


@dataclasses.dataclass(frozen=True)
class Run:
  variant: str
  seed: int

  @property
  def name(self) -> str:
    return f'{self.variant}_seed{self.seed}'


def planned_runs(seeds: int, variants=tuple(VARIANTS)) -> list[Run]:
  """Seed by seed, so that every variant has a figure as early as possible."""
  return [Run(variant, seed) for seed in range(seeds) for variant in variants]


def check_variant(variant: str, config) -> None:
  """Fails if `config` (after --params_override) no longer is `variant`."""
  weight = config.task.losses.image_distillation_weight
  ensemble = config.task.model.vild.ensemble
  expected = {
    BASELINE: weight == 0 and not ensemble,
    'vild': weight > 0 and not ensemble,
    'vild_ensemble': weight > 0 and ensemble,
  }[variant]
  if not expected:
    raise SystemExit(
      f'--params_override turns {VARIANTS[variant][0]} into another variant: '
      f'task.losses.image_distillation_weight={weight}, task.model.vild.ensemble={ensemble}; '
      'leave those two keys to the benchmark'
    )


def run_config(run: Run, train_steps: int | None, params_override: str = ''):
  """The full config of one run, with the data and text embeddings files it reads spelt out."""
  from official.core import exp_factory

  from projects import registry_imports  # noqa: F401  (registers vild_demo)
  from projects.common import experiment_config
  from projects.common.configs import schedules
  from projects.common.datasets import builtin
  from projects.vild.tasks import vild as vild_task

  config = exp_factory.get_exp_config(EXPERIMENT)
  config.override(VARIANTS[run.variant][1], is_strict=True)
  config.task.train_data.seed = run.seed
  training_runs.set_budget(config.trainer, train_steps)
  if params_override:
    before = copy.deepcopy(config)
    config.override(
      experiment_config.load_override(params_override, '--params_override'), is_strict=True
    )
    # As train.py would: a learning rate left at its default follows a changed batch.
    schedules.follow_data_changes(before, config)
  check_variant(run.variant, config)
  builtin.materialize_builtin_datasets(config.task)
  config.task.model.vild.text_embeddings_file = vild_task.text_embeddings_file(config.task)
  return config


def num_training_images(config) -> int:
  import tensorflow as tf

  files = training_runs.training_files(config)
  return sum(1 for _ in tf.data.TFRecordDataset(files))


def with_open_vocabulary_ap(result: dict, run_dir: str) -> dict:
  """`result` (of `training_runs.train_run`) with the variant's settings from the run's
  `config.yaml` and the base / novel AP of the task's report in `run_dir`."""
  from official.modeling import hyperparams

  from projects.common.detection import evaluation_report, open_vocab_evaluation

  path = evaluation_report.report_path(run_dir)
  report = {}
  if os.path.exists(path):
    with open(path) as f:
      report = json.load(f)
  base_novel = report.get(open_vocab_evaluation.REPORT_KEY, {}).get('base_novel')
  if not base_novel:
    # The task writes none when the model detected nothing at all.
    raise SystemExit(
      f'{result["name"]}: {path} has no "{open_vocab_evaluation.REPORT_KEY}" / "base_novel" '
      f'figures (did the model detect anything?); log: {os.path.join(run_dir, "train.log")}'
    )
  task = hyperparams.read_yaml_to_params_dict(os.path.join(run_dir, 'config.yaml')).task
  return {
    **result,
    'label': VARIANTS[result['variant']][0],
    'image_distillation_weight': task.losses.image_distillation_weight,
    'ensemble': task.model.vild.ensemble,
    'novel_categories': list(task.model.vild.novel_category_names),
    **{key: base_novel.get(kind, {}).get(group, {}).get('AP') for key, kind, group in FIGURES},
    'base_novel': base_novel,
  }


def _write_json(value, path: str) -> None:
  with open(path + '.partial', 'w') as f:
    json.dump(value, f, indent=2)
  os.replace(path + '.partial', path)


def finished_run(run_dir: str) -> dict | None:
  """The figures of a finished run (its `result.json`), None if it has not finished."""
  path = os.path.join(run_dir, 'result.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    result = json.load(f)
  if 'base_novel' not in result:
    # Stopped after training, before the base / novel figures were added.
    result = with_open_vocabulary_ap(result, run_dir)
    _write_json(result, path)
  return result


def train_run(run: Run, config, run_dir: str, num_train_images: int) -> dict:
  """Trains and evaluates one run through train.py; its `result.json` with base / novel AP."""
  result = training_runs.train_run(run, EXPERIMENT, config, run_dir, num_train_images)
  result = with_open_vocabulary_ap(result, run_dir)
  _write_json(result, os.path.join(run_dir, 'result.json'))
  return result


def _values(runs: list[dict], key: str) -> list[float | None]:
  return [r[key] for r in runs]


def summarize(results: list[dict]) -> tuple[list[dict], list[dict]]:
  """(variants, gains): per variant the runs' figures over seeds; per variant other than
  ViLD-text its novel AP minus ViLD-text's, paired by seed (seeds where both have a figure)."""
  by_variant = {}
  for result in results:
    by_variant.setdefault(result['variant'], []).append(result)
  variant_rows = []
  for variant in (v for v in VARIANTS if v in by_variant):
    runs = sorted(by_variant[variant], key=lambda r: r['seed'])
    variant_rows.append(
      {
        'variant': variant,
        'label': VARIANTS[variant][0],
        'image_distillation_weight': runs[0]['image_distillation_weight'],
        'ensemble': runs[0]['ensemble'],
        'train_steps': runs[0]['train_steps'],
        'seeds': [r['seed'] for r in runs],
        **{key: _values(runs, key) for key, _, _ in FIGURES},
      }
    )
  baseline = {r['seed']: r for r in by_variant.get(BASELINE, [])}
  gain_rows = []
  for variant in (v for v in VARIANTS if v != BASELINE and v in by_variant and baseline):
    runs = {r['seed']: r for r in by_variant[variant]}
    row = {'variant': variant, 'label': VARIANTS[variant][0], 'over': VARIANTS[BASELINE][0]}
    for key in GAIN_FIGURES:
      seeds = sorted(
        s
        for s in set(runs) & set(baseline)
        if runs[s][key] is not None and baseline[s][key] is not None
      )
      row[f'{key}_gain'] = {
        'seeds': seeds,
        'values': [runs[s][key] - baseline[s][key] for s in seeds],
      }
    gain_rows.append(row)
  return variant_rows, gain_rows


def _figure(values: list[float | None]) -> str:
  """Percent, mean ± spread [min-max] over the runs with a figure ('n/a' without any: a group
  with no groundtruth in the validation split)."""
  present = [v for v in values if v is not None]
  return training_runs.mean_and_spread(present) if present else 'n/a'


def _gain(values: list[float]) -> str:
  return training_runs.signed_mean_and_spread(values) if values else 'n/a'


def report(variants: list[dict], gains: list[dict], cpu: str, novel_categories) -> str:
  lines = [
    f'ViLD demo (built-in digit scenes, novel: {", ".join(novel_categories)}): AP (%) of the '
    'novel and base categories on the whole validation split, mean ± sample standard deviation '
    'over seeds [min-max]',
    f'CPU: {cpu}',
    f'{"variant":<15}{"weight":>7}{"steps":>7}{"seeds":>6}  {"novel box AP":<24}'
    f'{"base box AP":<24}{"novel mask AP":<24}base mask AP',
  ]
  for row in variants:
    lines.append(
      f'{row["label"]:<15}{row["image_distillation_weight"]:>7g}{row["train_steps"]:>7}'
      f'{len(row["seeds"]):>6}  '
      + ''.join(f'{_figure(row[key]):<24}' for key, _, _ in FIGURES).rstrip()
    )
  if not gains:
    lines.append(f'No gains: no {VARIANTS[BASELINE][0]} runs to compare with.')
    return '\n'.join(lines)
  lines.append(
    f'Gain in novel AP over {VARIANTS[BASELINE][0]}, AP points (paired by seed; mean ± sample '
    'standard deviation):'
  )
  lines.append(f'{"variant":<15}{"pairs":>6}  {"novel box AP gain":<20}novel mask AP gain')
  for row in gains:
    box, mask = row['novel_box_ap_gain'], row['novel_mask_ap_gain']
    lines.append(
      f'{row["label"]:<15}{len(box["seeds"]):>6}  {_gain(box["values"]):<20}'
      f'{_gain(mask["values"]):<20}'.rstrip()
    )
  return '\n'.join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--work_dir', required=True, help='runs, settings.json and vild_demo.json')
  parser.add_argument('--seeds', type=int, default=3, help='seeds 0..N-1 for every variant')
  parser.add_argument(
    '--variants',
    default=','.join(VARIANTS),
    help=f'comma-separated, of {", ".join(VARIANTS)} (gains need {BASELINE})',
  )
  parser.add_argument(
    '--train_steps',
    type=int,
    default=None,
    help=f"training steps of every run (default: {EXPERIMENT}'s registered train_steps)",
  )
  parser.add_argument(
    '--params_override',
    default='',
    help='applied to every run as train.py applies it, e.g. tiny data for a smoke run',
  )
  args = parser.parse_args(argv)
  if args.seeds < 1:
    parser.error(f'--seeds must be at least 1, got {args.seeds}')
  if args.train_steps is not None and args.train_steps < 1:
    parser.error(f'--train_steps must be at least 1, got {args.train_steps}')
  variants = [v.strip() for v in args.variants.split(',') if v.strip()]
  unknown = sorted(set(variants) - set(VARIANTS))
  if unknown or not variants:
    parser.error(f'--variants={args.variants!r}: expected some of {", ".join(VARIANTS)}')
  training_runs.check_settings(
    args.work_dir, {'train_steps': args.train_steps, 'params_override': args.params_override}
  )

  from projects.common.configs import runtime

  cpu = f'{runtime.cpu_summary()}, {os.cpu_count()} cores'
  print(f'CPU: {cpu}', file=sys.stderr, flush=True)
  runs = planned_runs(args.seeds, variants)
  results = []
  num_train_images = None
  for index, run in enumerate(runs):
    run_dir = os.path.join(args.work_dir, 'runs', run.name)
    result = finished_run(run_dir)
    if result is None:
      config = run_config(run, args.train_steps, args.params_override)
      if num_train_images is None:
        num_train_images = num_training_images(config)
      print(
        f'[{index + 1}/{len(runs)}] {run.name}: {num_train_images} images, '
        f'{config.trainer.train_steps} steps ...',
        file=sys.stderr,
        flush=True,
      )
      result = train_run(run, config, run_dir, num_train_images)
      print(
        '    '
        + ', '.join(f'{key} {_figure([result[key]])}' for key, _, _ in FIGURES)
        + f' ({result["seconds"] / 60:.1f} min)',
        file=sys.stderr,
        flush=True,
      )
    results.append(result)
  variants, gains = summarize(results)
  print(report(variants, gains, cpu, results[0]['novel_categories']))
  _write_json(
    {'cpu': cpu, 'runs': results, 'variants': variants, 'gains': gains},
    os.path.join(args.work_dir, 'vild_demo.json'),
  )


if __name__ == '__main__':
  main()
