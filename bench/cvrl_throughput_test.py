"""The benchmark compares like with like: both sides' configs train the same network and data."""

import argparse

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


if __name__ == '__main__':
  tf.test.main()
