"""CVRL pretraining validation on two replicas: per-video metrics and kNN over every replica."""

import os

import numpy as np
import tensorflow as tf
from official.core import task_factory

from projects.common.modeling import pooling
from projects.common.testing import tiny_data
from projects.cvrl.dataloaders import pretrain_input
from projects.cvrl.losses import two_cpu_replicas
from projects.cvrl.tasks import pretrain, tiny_configs

# 5 videos in global batches of 4: the last batch's one video leaves the second replica empty.
NUM_VALIDATION = 5
GLOBAL_BATCH = 4


class PretrainTwoReplicaValidationTest(two_cpu_replicas.TwoReplicaTestCase):
  def setUp(self):
    super().setUp()
    info = tiny_data.tiny_moving_mnist(
      os.path.join(self.get_temp_dir(), 'data'), num_validation=NUM_VALIDATION
    )
    self.config = tiny_configs.tiny_experiment(
      'cvrl_demo', info, validation_data={'global_batch_size': GLOBAL_BATCH}
    )
    self.task = task_factory.get_task(self.config.task)
    self.single_model = self.task.build_model()

  def _validate_on_two_replicas(self):
    """(metric results, aggregated kNN state, per-step local kNN features) of one evaluation."""
    with self.strategy.scope():
      model = self.task.build_model()
      model.set_weights(self.single_model.get_weights())
      metrics = self.task.build_metrics(training=False)
    dataset = self.strategy.distribute_datasets_from_function(
      lambda context: self.task.build_inputs(self.config.task.validation_data, context)
    )

    @tf.function
    def step(inputs):
      return self.strategy.run(
        lambda batch: self.task.validation_step(batch, model, metrics=metrics), args=(inputs,)
      )

    state, local_features = None, []
    for inputs in dataset:
      logs = tf.nest.map_structure(self.strategy.experimental_local_results, step(inputs))
      self.assertTrue(np.isfinite(logs['loss'][0]), logs['loss'])
      local_features.append(logs[pretrain.KNN_FEATURES_KEY])
      state = self.task.aggregate_logs(state, logs)
    return {m.name: float(m.result()) for m in metrics}, state, local_features

  def test_metrics_are_means_over_videos_and_knn_sees_every_replica(self):
    values, counts = {name: [] for name in pretrain.CONTRASTIVE_METRICS}, []
    centre_features, all_labels = [], []
    for features, labels in self.task.build_inputs(self.config.task.validation_data):
      outputs = self.single_model(
        pretrain.fold_views(features[pretrain_input.IMAGE_KEY]), training=False
      )
      _, logs = self.task.build_losses(outputs)
      for name in values:
        values[name].append(float(logs[name]))
      counts.append(len(labels))
      endpoints = self.single_model.backbone(
        features[pretrain_input.CENTRE_CLIP_KEY], training=False
      )
      centre_features.append(pooling.global_pool(endpoints).numpy())
      all_labels.append(labels.numpy())
    self.assertEqual(counts, [4, 1])

    results, state, local_features = self._validate_on_two_replicas()

    for name in pretrain.CONTRASTIVE_METRICS:
      expected = np.average(values[name], weights=counts)
      self.assertAllClose(results[name], expected, rtol=1e-5, msg=name)
    # kNN: un-augmented centre clips; each replica holds the whole step's, not only its share.
    self.assertEqual([[len(f) for f in step] for step in local_features], [[4, 4], [1, 1]])
    self.assertAllClose(
      np.concatenate(state[pretrain.KNN_FEATURES_KEY]), np.concatenate(centre_features), atol=1e-5
    )
    self.assertAllEqual(np.concatenate(state[pretrain.KNN_LABELS_KEY]), np.concatenate(all_labels))
    accuracy = self.task.reduce_aggregated_logs(state)['knn_top1_accuracy']
    self.assertBetween(float(accuracy), 0.0, 1.0)


if __name__ == '__main__':
  tf.test.main()
