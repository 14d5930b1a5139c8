"""Prints the README's SpineNet table: each paper row's parameters and FLOPs beside the paper's.

  PYTHONPATH=. python -m projects.spinenet.stats_table [EXPERIMENT ...] > /tmp/table.md

Parameters and FLOPs come from `projects.common.model_stats` on the model each registered
experiment builds (what `train.py --experiment=NAME --print_model_stats` prints). Rows are
measured one after another; SpineNet-190 at 1280^2 / 1536^2 needs minutes and several GB.
"""

import sys
import time

from official.core import exp_factory

from projects import registry_imports  # noqa: F401  (registers the experiments)
from projects.common import model_stats
from projects.spinenet.configs import spinenet

HEADER = (
  '| Experiment (config) | Table, row | Input | Paper AP | Params (M): paper / ours | '
  'FLOPs (B): paper / ours | Diff |\n'
  '|---|---|---|---:|---:|---:|---:|'
)


def _difference(paper: float | None, ours: float) -> str:
  return f'{100 * (ours - paper) / paper:+.1f} %' if paper else '-'


def table_row(name: str, row: spinenet.PaperRow, stats: model_stats.ModelStats) -> str:
  """One Markdown row; our FLOPs are multiply-adds (the TF profiler's total / 2, as the papers)."""
  ours_params = stats.trainable_parameters / 1e6
  ours_flops = stats.gflops_per_view / 2
  paper_ap = '-' if row.box_ap is None else f'{row.box_ap:.1f}'
  if row.mask_ap is not None:
    paper_ap += f' / {row.mask_ap:.1f}'
  paper_params = '-' if row.params_m is None else f'{row.params_m:.1f}'
  paper_flops = '-' if row.gmacs is None else f'{row.gmacs:.1f}'
  cells = [
    f'[{name}](../../experiments/spinenet/{row.config_file})',
    row.table,
    f'{row.input_size}^2',
    paper_ap,
    f'{paper_params} / {ours_params:.2f}',
    f'{paper_flops} / {ours_flops:.2f}',
    f'{_difference(row.params_m, ours_params)}, {_difference(row.gmacs, ours_flops)}',
  ]
  return '| ' + ' | '.join(cells) + ' |'


def main(names: list[str]) -> None:
  print(HEADER)
  for name in names or list(spinenet.PAPER_ROWS):
    started = time.monotonic()
    stats = model_stats.experiment_stats(exp_factory.get_exp_config(name).task)
    print(table_row(name, spinenet.PAPER_ROWS[name], stats), flush=True)
    print(f'<!-- {name}: measured in {time.monotonic() - started:.0f} s -->', flush=True)


if __name__ == '__main__':
  main(sys.argv[1:])
