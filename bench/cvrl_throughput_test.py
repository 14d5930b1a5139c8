"""The benchmark compares like with like: both sides' configs train the same network and data."""

import argparse
import contextlib
import io

import tensorflow as tf

from bench import cvrl_throughput


class CVRLThroughputConfigTest(tf.test.TestCase):
  def test_peer_config_matches_ours(self):
    args = argparse.Namespace(num_frames=8, crop_size=112, batch_size=4, precision='bfloat16')
    ours = cvrl_throughput._our_config(args, '/data/videos*')
    peer = cvrl_throughput._peer_config(args, '/data/videos*', ours)
    ours.validate()
    peer.validate()
    self.assertEqual(ours.task.model.backbone.as_dict(), peer.task.model.backbone.as_dict())
    self.assertEqual(
      ours.task.model.norm_activation.as_dict(), peer.task.model.norm_activation.as_dict()
    )
    self.assertEqual(
      ours.trainer.optimizer_config.as_dict(), peer.trainer.optimizer_config.as_dict()
    )
    self.assertEqual(ours.runtime.mixed_precision_dtype, 'bfloat16')
    self.assertEqual(peer.runtime.mixed_precision_dtype, 'bfloat16')
    for name in ('input_path', 'feature_shape', 'temporal_stride', 'global_batch_size', 'dtype'):
      self.assertEqual(
        getattr(ours.task.train_data, name), getattr(peer.task.train_data, name), msg=name
      )
    self.assertTrue(peer.task.train_data.is_ssl)
    self.assertEqual(ours.task.losses.temperature, peer.task.losses.temperature)

  def test_cpu_description_names_bfloat16_support(self):
    self.assertIn('bfloat16', cvrl_throughput.cpu_description())

  def test_a_non_finite_loss_fails_the_benchmark(self):
    run = {'side': 'ours', 'precision': 'bfloat16', 'last_loss': float('nan')}
    with self.assertRaisesRegex(SystemExit, 'ours at bfloat16: the last training loss is nan'):
      cvrl_throughput.check_finite_loss(run)
    cvrl_throughput.check_finite_loss({**run, 'last_loss': 5.5})

  def test_report_gives_medians_and_the_ratio_of_medians_with_its_range(self):
    args = argparse.Namespace(
      precisions=['float32'],
      rounds=3,
      batch_size=4,
      num_frames=8,
      crop_size=112,
      warmup_steps=3,
      timed_steps=10,
    )

    def runs(side, seconds):
      return [
        {
          'side': side,
          'precision': 'float32',
          'seconds_per_step': s,
          'peak_rss_mb': 1000.0,
          'step_gflop': 10.0,
          'parameters': 1e6,
          'last_loss': 5.0,
        }
        for s in seconds
      ]

    results = {
      ('matmul', 'float32'): [{'gflop_per_second': 100.0}],
      ('ours', 'float32'): runs('ours', [1.0, 2.0, 1.5]),
      ('peer', 'float32'): runs('peer', [2.0, 2.0, 3.0]),
    }
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
      cvrl_throughput._report(args, results)
    text = output.getvalue()
    self.assertIn('CPU: ', text)
    self.assertIn('1.500 (1.000-2.000)', text)
    # Medians 1.5 and 2.0; per-round ratios 2.0, 1.0, 2.0.
    self.assertIn('ratio of medians) 1.33x (per round 1.00-2.00x)', text)


if __name__ == '__main__':
  tf.test.main()
