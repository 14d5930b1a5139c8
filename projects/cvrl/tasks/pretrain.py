"""CVRL contrastive pretraining task: clip pairs -> backbone + projection head -> NT-Xent loss."""

import numpy as np
import tensorflow as tf
import tf_keras
from absl import logging
from official.core import base_task, task_factory
from official.vision.dataloaders import input_reader_factory
from official.vision.modeling import backbones

from projects.common import tfrecords
from projects.common.modeling import (
  pooling,
  slim_r3d,  # noqa: F401  (registers the 'slim_r3d' backbone)
)
from projects.cvrl.configs import cvrl as exp_cfg
from projects.cvrl.dataloaders import pretrain_input
from projects.cvrl.evaluation import knn
from projects.cvrl.losses import contrastive
from projects.cvrl.modeling import cvrl_model

CONTRASTIVE_METRICS = ('contrastive_accuracy', 'contrastive_entropy')
KNN_FEATURES_KEY = 'knn_features'
KNN_LABELS_KEY = 'knn_labels'


def l2_regularizer(weight_decay: float) -> tf_keras.regularizers.Regularizer | None:
  # Halved so the penalty's gradient is `weight_decay * w`, the convention of tf.nn.l2_loss and
  # of Model Garden's tasks.
  return tf_keras.regularizers.l2(weight_decay / 2.0) if weight_decay else None


def _dims(values: tf.Tensor, start: int) -> list:
  """Sizes of `values` from axis `start` on, static where known so reshapes keep them."""
  dynamic = tf.shape(values)
  return [d if d is not None else dynamic[i] for i, d in enumerate(values.shape) if i >= start]


def fold_views(clip_pairs: tf.Tensor) -> tf.Tensor:
  """`[B, 2, T, H, W, C]` -> `[2B, T, H, W, C]`, the two clips of video i at rows 2i and 2i+1."""
  return tf.reshape(clip_pairs, [-1, *_dims(clip_pairs, 2)])


def unfold_views(values: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """Inverse of `fold_views` for per-clip values `[2B, ...]`: (first clips, second clips)."""
  pairs = tf.reshape(values, [-1, 2, *_dims(values, 1)])
  return pairs[:, 0], pairs[:, 1]


def call_on_batch(fn, inputs: tf.Tensor):
  """`fn(inputs)` for a batch that may be empty, as a replica's share of the last batch can be.

  oneDNN's CPU 3D convolution gives an empty batch the input's channel count (TF 2.20), which
  breaks the next layer; an empty batch runs as one zero row whose outputs are dropped.
  """
  num_rows = tf.shape(inputs)[0]
  padding_shape = tf.concat([[tf.maximum(1 - num_rows, 0)], tf.shape(inputs)[1:]], axis=0)
  outputs = fn(tf.concat([inputs, tf.zeros(padding_shape, inputs.dtype)], axis=0))
  return tf.nest.map_structure(lambda value: value[:num_rows], outputs)


def weighted_mean_over_replicas(value: tf.Tensor, num_videos: tf.Tensor) -> tf.Tensor:
  """The mean over every replica's videos of a per-replica mean `value` of `num_videos` videos.

  A replica with no videos (the final validation batch split across replicas) has a NaN mean;
  it weighs nothing.
  """
  weight = tf.cast(num_videos, tf.float32)
  weighted = tf.where(weight > 0, tf.cast(value, tf.float32) * weight, 0.0)
  total, count = tf.distribute.get_replica_context().all_reduce(
    tf.distribute.ReduceOp.SUM, [weighted, weight]
  )
  return total / tf.maximum(count, 1.0)


@task_factory.register_task_cls(exp_cfg.CVRLPretrainTask)
class PretrainTask(base_task.Task):
  """CVRL pretraining; validation adds contrastive metrics and kNN top-1 of backbone features.

  Validation metrics are means over videos, whatever their split across replicas and batches.
  kNN top-1 classifies the un-augmented centre clips of all validation videos, gathered from
  every replica of every worker.
  """

  def build_model(self) -> cvrl_model.CVRLPretrainModel:
    config = self.task_config
    # Train and validation clips may differ in size; the model accepts both.
    common_shape = [
      train if train == validation else None
      for train, validation in zip(
        config.train_data.feature_shape, config.validation_data.feature_shape, strict=True
      )
    ]
    input_specs = tf_keras.layers.InputSpec(shape=[None, *common_shape])
    regularizer = l2_regularizer(config.losses.l2_weight_decay)
    backbone = backbones.factory.build_backbone(
      input_specs=input_specs,
      backbone_config=config.model.backbone,
      norm_activation_config=config.model.norm_activation,
      l2_regularizer=regularizer,
    )
    head_config = config.model.projection_head
    head = cvrl_model.ProjectionHead(
      num_hidden_layers=head_config.num_hidden_layers,
      hidden_dim=head_config.hidden_dim,
      output_dim=head_config.output_dim,
      use_sync_bn=config.model.norm_activation.use_sync_bn,
      norm_momentum=head_config.norm_momentum,
      norm_epsilon=head_config.norm_epsilon,
      kernel_regularizer=regularizer,
    )
    return cvrl_model.CVRLPretrainModel(backbone, head, input_specs)

  def build_inputs(
    self,
    params: exp_cfg.PretrainDataConfig,
    input_context: tf.distribute.InputContext | None = None,
  ) -> tf.data.Dataset:
    """Batches of `({'image': [B, 2, T, H, W, 3]}, labels [B])` from video-contract TFRecords.

    Validation batches add `'centre_clip'` `[B, T, H, W, 3]` when kNN evaluation is on.
    """
    reader = input_reader_factory.input_reader_generator(
      params,
      dataset_fn=tf.data.TFRecordDataset,
      decoder_fn=tfrecords.parse_video_example,
      parser_fn=pretrain_input.Parser(params, centre_clip=self._knn_enabled).parse_fn(
        params.is_training
      ),
    )
    return reader.read(input_context=input_context)

  def build_losses(
    self, outputs: dict[str, tf.Tensor], aux_losses: list[tf.Tensor] | None = None
  ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """(total loss, logs): this replica's NT-Xent against every replica's clips, + L2 penalty."""
    embeddings_a, embeddings_b = unfold_views(outputs['embeddings'])
    loss, logs = contrastive.contrastive_loss(
      embeddings_a, embeddings_b, temperature=self.task_config.losses.temperature
    )
    logs['contrastive_loss'] = loss
    total_loss = loss
    if aux_losses:
      logs['reg_loss'] = tf.add_n([tf.cast(x, tf.float32) for x in aux_losses])
      total_loss += logs['reg_loss']
    logs[self.loss] = total_loss
    return total_loss, logs

  def build_metrics(self, training: bool = True) -> list[tf_keras.metrics.Metric]:
    names = ('contrastive_loss', *CONTRASTIVE_METRICS)
    return [tf_keras.metrics.Mean(name, dtype=tf.float32) for name in names]

  @property
  def _knn_enabled(self) -> bool:
    return self.task_config.knn.num_neighbors > 0

  def _update_metrics(
    self, metrics, logs: dict[str, tf.Tensor], num_videos: tf.Tensor | None = None
  ) -> dict[str, tf.Tensor]:
    """Adds the step's means to `metrics`, weighted by `num_videos` when given."""
    for metric in metrics or []:
      if num_videos is None:
        metric.update_state(logs[metric.name])
      else:
        # A replica's empty share of the final batch has NaN means, which must weigh nothing.
        weight = tf.cast(num_videos, tf.float32)
        value = tf.where(weight > 0, logs[metric.name], 0.0)
        metric.update_state(value, sample_weight=weight)
    return {self.loss: logs[self.loss], **{m.name: m.result() for m in metrics or []}}

  def train_step(self, inputs, model, optimizer, metrics=None):
    features, _ = inputs
    num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tf.GradientTape() as tape:
      outputs = model(fold_views(features[pretrain_input.IMAGE_KEY]), training=True)
      loss, logs = self.build_losses(outputs, aux_losses=model.losses)
      # Model Garden sums the replicas' gradients; the contrastive loss's docstring shows this
      # scaling yields exactly the global batch loss's gradient.
      scaled_loss = loss / num_replicas
      if isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer):
        scaled_loss = optimizer.get_scaled_loss(scaled_loss)
    variables = model.trainable_variables
    grads = tape.gradient(scaled_loss, variables)
    if isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer):
      grads = optimizer.get_unscaled_gradients(grads)
    optimizer.apply_gradients(list(zip(grads, variables, strict=True)))
    return self._update_metrics(metrics, logs)

  def validation_step(self, inputs, model, metrics=None):
    """Contrastive metrics of the clip pairs; with kNN on, every replica's centre-clip features.

    `metrics` are weighted by this replica's number of videos; the returned loss is the step's
    mean over every replica's videos (the trainer averages it over replicas unweighted).
    """
    features, labels = inputs
    num_videos = tf.shape(labels)[0]
    outputs = call_on_batch(
      lambda clips: model(clips, training=False), fold_views(features[pretrain_input.IMAGE_KEY])
    )
    _, logs = self.build_losses(outputs, aux_losses=model.losses)
    logs[self.loss] = weighted_mean_over_replicas(logs[self.loss], num_videos)
    step_logs = self._update_metrics(metrics, logs, num_videos)
    if self._knn_enabled:
      clip_features = call_on_batch(
        lambda clips: pooling.global_pool(model.backbone(clips, training=False)),
        features[pretrain_input.CENTRE_CLIP_KEY],
      )
      # Gathered on the devices: the host-side hooks see only this worker's replicas.
      context = tf.distribute.get_replica_context()
      step_logs[KNN_FEATURES_KEY], step_logs[KNN_LABELS_KEY] = context.all_gather(
        [clip_features, labels], axis=0
      )
    return step_logs

  def aggregate_logs(self, state=None, step_logs=None):
    """Collects the validation videos' backbone features and labels on the host for kNN."""
    if KNN_FEATURES_KEY not in step_logs:
      return state
    state = state or {KNN_FEATURES_KEY: [], KNN_LABELS_KEY: []}
    for key in (KNN_FEATURES_KEY, KNN_LABELS_KEY):
      value = step_logs[key]
      if isinstance(value, (tuple, list)):
        # One copy per local replica, all equal after the all-gather: take one.
        value = value[0]
      state[key].append(np.asarray(value))
    return state

  def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
    """`knn_top1_accuracy` over the labelled validation videos (see `KnnEvaluation`)."""
    if not aggregated_logs:
      return {}
    labels = np.concatenate(aggregated_logs[KNN_LABELS_KEY])
    labelled = labels != pretrain_input.NO_LABEL
    if labelled.sum() < 2:
      logging.info('kNN evaluation skipped: fewer than 2 labelled validation videos.')
      return {}
    features = np.concatenate(aggregated_logs[KNN_FEATURES_KEY])[labelled]
    accuracy = knn.leave_one_out_knn_accuracy(
      features,
      labels[labelled],
      num_neighbors=self.task_config.knn.num_neighbors,
      temperature=self.task_config.knn.temperature,
    )
    return {'knn_top1_accuracy': np.float32(accuracy)}
