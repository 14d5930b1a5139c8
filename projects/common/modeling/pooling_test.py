"""global_pool: the deepest endpoint's spatio-temporal mean, in float32."""

import numpy as np
import tensorflow as tf

from projects.common.modeling import pooling


class GlobalPoolTest(tf.test.TestCase):
  def test_pools_the_deepest_endpoint_in_float32(self):
    deepest = np.arange(2 * 2 * 3 * 3 * 4, dtype=np.float32).reshape([2, 2, 3, 3, 4])
    endpoints = {
      # Levels compare as numbers: '10' is deeper than '9'.
      '9': tf.zeros([2, 4, 6, 6, 2]),
      '10': tf.constant(deepest, tf.bfloat16),
    }
    pooled = pooling.global_pool(endpoints)
    self.assertEqual(pooled.dtype, tf.float32)
    self.assertAllClose(pooled, deepest.mean(axis=(1, 2, 3)), rtol=1e-2)


if __name__ == '__main__':
  tf.test.main()
