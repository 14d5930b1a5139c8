"""Prints the README's 3D ResNet-RS table: each paper row's size and compute next to its accuracy.

  PYTHONPATH=. python -m projects.resnet3d_rs.stats_table > /tmp/table.md

Parameters and GFLOPs come from `projects.common.model_stats` on the model each registered
experiment builds (the numbers `train.py --experiment=NAME --print_model_stats` prints); accuracies
are the paper's. Building R3D-RS-200 takes a minute or two on a CPU.
"""

from official.core import exp_factory

from projects import registry_imports  # noqa: F401  (registers the experiments)
from projects.common import model_stats
from projects.resnet3d_rs.configs import resnet3d_rs

HEADER = (
  '| Experiment (config) | Frames x stride | Eval view | Params (M) | GFLOPs / view '
  '| GMACs / view | Views | TFLOPs / video | Paper top-1 | Paper top-5 |\n'
  '|---|---|---|---:|---:|---:|---:|---:|---:|---:|'
)


def table_row(name: str, row: resnet3d_rs.PaperRow, stats: model_stats.ModelStats) -> str:
  frames, height, width, _ = stats.view_shape
  cells = [
    f'[{name}](../../experiments/resnet3d_rs/{row.config_file})',
    f'{row.num_frames} x 2',
    f'{frames}x{height}x{width}',
    f'{stats.parameters / 1e6:.1f}',
    f'{stats.gflops_per_view:.1f}',
    f'{stats.gmacs_per_view:.1f}',
    str(stats.views_per_video),
    f'{stats.gflops_per_video / 1e3:.2f}',
    f'{row.top_1:.1f}',
    f'{row.top_5:.1f}' if row.top_5 else '-',
  ]
  return '| ' + ' | '.join(cells) + ' |'


def main() -> None:
  print(HEADER)
  for name, row in resnet3d_rs.PAPER_ROWS.items():
    stats = model_stats.experiment_stats(exp_factory.get_exp_config(name).task)
    print(table_row(name, row, stats), flush=True)


if __name__ == '__main__':
  main()
