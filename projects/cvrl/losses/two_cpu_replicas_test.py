"""Two test classes of one process gather different shapes over their two replicas."""

import tensorflow as tf

from projects.cvrl.losses import two_cpu_replicas


def _gather_rows(strategy, width):
  @tf.function
  def step():
    return strategy.run(
      lambda: tf.distribute.get_replica_context().all_gather(tf.ones([2, width]), axis=0)
    )

  return strategy.experimental_local_results(step())[0]


class FirstClassGatherTest(two_cpu_replicas.TwoReplicaTestCase):
  def test_gathers_both_replicas(self):
    self.assertEqual(_gather_rows(self.strategy, 16).shape, (4, 16))


class SecondClassGatherTest(two_cpu_replicas.TwoReplicaTestCase):
  # A strategy of its own would reuse the first class's collective keys and meet its shapes.
  def test_gathers_a_different_shape_after_the_first_class(self):
    self.assertEqual(_gather_rows(self.strategy, 128).shape, (4, 128))


if __name__ == '__main__':
  tf.test.main()
