"""The README table row: paper accuracies next to the measured size and compute."""

import tensorflow as tf

from projects.common import model_stats
from projects.resnet3d_rs import stats_table
from projects.resnet3d_rs.configs import resnet3d_rs


class StatsTableTest(tf.test.TestCase):
  def test_row_cells(self):
    stats = model_stats.ModelStats(
      parameters=48_183_088,
      trainable_parameters=48_129_840,
      view_shape=(32, 256, 256, 3),
      flops_per_view=230_342_154_832,
      macs_per_view=114_970_000_000,
      views_per_video=30,
      views_description='10 clips x 3 crops',
    )
    name = 'resnet3d_rs50_kinetics400'
    row = stats_table.table_row(name, resnet3d_rs.PAPER_ROWS[name], stats)
    self.assertEqual(
      row,
      '| [resnet3d_rs50_kinetics400](../../experiments/resnet3d_rs/k400_r3drs50_32x2_350ep.yaml) '
      '| 32 x 2 | 32x256x256 | 48.2 | 230.3 | 115.0 | 30 | 6.91 | 78.2 | 93.7 |',
    )
    self.assertEqual(row.count('|'), stats_table.HEADER.splitlines()[0].count('|'))


if __name__ == '__main__':
  tf.test.main()
