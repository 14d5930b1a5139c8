"""CVRL networks: backbone + projection head for pretraining, backbone + linear head for evaluation.

Both expose `.backbone`, the Keras model of the 3D backbone, and checkpoint it under the
top-level name `backbone` (`checkpoint_items`), so a linear-evaluation, fine-tuning or
feature-extraction job restores it alone with `tf.train.Checkpoint(backbone=...)`.

Under a mixed-precision policy the backbone computes in bfloat16/float16, while the pooled
features and everything after them (head, normalisation, logits) are float32: they are cheap and
the contrastive softmax is where low precision hurts.
"""

import tensorflow as tf
import tf_keras

from projects.common.modeling import pooling


@tf_keras.utils.register_keras_serializable(package='projects')
class ProjectionHead(tf_keras.layers.Layer):
  """CVRL's MLP projection head (paper Sec. 3.1): (Dense -> BN -> ReLU) x n -> Dense -> L2 norm.

  Always float32. Dense layers before batch norm have no bias, which batch norm would cancel.
  """

  def __init__(
    self,
    num_hidden_layers: int = 3,
    hidden_dim: int = 2048,
    output_dim: int = 128,
    use_sync_bn: bool = False,
    norm_momentum: float = 0.997,
    norm_epsilon: float = 1e-5,
    kernel_regularizer: tf_keras.regularizers.Regularizer | None = None,
    **kwargs,
  ):
    kwargs['dtype'] = 'float32'
    super().__init__(**kwargs)
    self._config_dict = {
      'num_hidden_layers': num_hidden_layers,
      'hidden_dim': hidden_dim,
      'output_dim': output_dim,
      'use_sync_bn': use_sync_bn,
      'norm_momentum': norm_momentum,
      'norm_epsilon': norm_epsilon,
      'kernel_regularizer': kernel_regularizer,
    }
    self._hidden_layers = []
    for i in range(num_hidden_layers):
      self._hidden_layers.append(
        [
          tf_keras.layers.Dense(
            hidden_dim,
            use_bias=False,
            kernel_regularizer=kernel_regularizer,
            dtype='float32',
            name=f'dense_{i}',
          ),
          tf_keras.layers.BatchNormalization(
            momentum=norm_momentum,
            epsilon=norm_epsilon,
            synchronized=use_sync_bn,
            dtype='float32',
            name=f'batch_normalization_{i}',
          ),
        ]
      )
    self._output_layer = tf_keras.layers.Dense(
      output_dim, kernel_regularizer=kernel_regularizer, dtype='float32', name='dense_output'
    )

  def call(self, features: tf.Tensor, training=None) -> tf.Tensor:
    x = tf.cast(features, tf.float32)
    for dense, norm in self._hidden_layers:
      x = tf.nn.relu(norm(dense(x), training=training))
    return tf.math.l2_normalize(self._output_layer(x), axis=-1)

  def get_config(self):
    config = super().get_config()
    config.update(self._config_dict)
    config['kernel_regularizer'] = tf_keras.regularizers.serialize(
      self._config_dict['kernel_regularizer']
    )
    return config

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config['kernel_regularizer'] = tf_keras.regularizers.deserialize(config['kernel_regularizer'])
    return cls(**config)


class CVRLPretrainModel(tf_keras.Model):
  """Clips `[N, T, H, W, 3]` -> {'features': pooled backbone features, 'embeddings': head output}.

  The two views of a batch go through as one batch of 2N clips, so batch norm sees both (as in
  SimCLR); `embeddings` are L2-normalised float32 `[N, output_dim]`.
  """

  def __init__(
    self,
    backbone: tf_keras.Model,
    projection_head: ProjectionHead,
    input_specs: tf_keras.layers.InputSpec,
    **kwargs,
  ):
    # As Model Garden's models: keep the sub-models off Keras's attribute tracking, which a
    # functional model rebuilds from its graph.
    self._self_setattr_tracking = False
    self._backbone = backbone
    self._projection_head = projection_head
    self._input_specs = input_specs
    inputs = tf_keras.Input(shape=input_specs.shape[1:])
    features = pooling.global_pool(backbone(inputs))
    outputs = {'features': features, 'embeddings': projection_head(features)}
    super().__init__(inputs=inputs, outputs=outputs, **kwargs)

  @property
  def backbone(self) -> tf_keras.Model:
    return self._backbone

  @property
  def projection_head(self) -> ProjectionHead:
    return self._projection_head

  @property
  def checkpoint_items(self) -> dict[str, tf.Module]:
    return {'backbone': self._backbone, 'projection_head': self._projection_head}

  def get_config(self):
    return {
      'backbone': self._backbone,
      'projection_head': self._projection_head,
      'input_specs': self._input_specs,
    }

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(**config)


class CVRLClassifier(tf_keras.Model):
  """{'image': clips `[N, T, H, W, 3]`} -> float32 class logits, from the pooled features.

  The inputs are a dict, as those of Model Garden's video classifier, whose task feeds it.

  `freeze_backbone`: the backbone's weights are not trainable and it always runs in inference
  mode, so its batch-norm statistics stay those of pretraining (linear evaluation).
  `normalize_features`: L2-normalise the pooled features before dropout and the linear layer.
  """

  def __init__(
    self,
    backbone: tf_keras.Model,
    num_classes: int,
    input_specs: tf_keras.layers.InputSpec,
    freeze_backbone: bool = True,
    normalize_features: bool = True,
    dropout_rate: float = 0.0,
    kernel_regularizer: tf_keras.regularizers.Regularizer | None = None,
    **kwargs,
  ):
    self._self_setattr_tracking = False
    self._config_dict = {
      'backbone': backbone,
      'num_classes': num_classes,
      'input_specs': input_specs,
      'freeze_backbone': freeze_backbone,
      'normalize_features': normalize_features,
      'dropout_rate': dropout_rate,
      'kernel_regularizer': kernel_regularizer,
    }
    self._backbone = backbone
    inputs = {'image': tf_keras.Input(shape=input_specs.shape[1:], name='image')}
    if freeze_backbone:
      backbone.trainable = False
      # An explicit training=False in the functional graph wins over the caller's flag.
      endpoints = backbone(inputs['image'], training=False)
    else:
      endpoints = backbone(inputs['image'])
    x = pooling.global_pool(endpoints)
    if normalize_features:
      x = tf.math.l2_normalize(x, axis=-1)
    if dropout_rate:
      x = tf_keras.layers.Dropout(dropout_rate, dtype='float32')(x)
    self._classifier = tf_keras.layers.Dense(
      num_classes, kernel_regularizer=kernel_regularizer, dtype='float32', name='classifier'
    )
    logits = self._classifier(x)
    super().__init__(inputs=inputs, outputs=logits, **kwargs)

  @property
  def backbone(self) -> tf_keras.Model:
    return self._backbone

  @property
  def classifier(self) -> tf_keras.layers.Dense:
    return self._classifier

  @property
  def checkpoint_items(self) -> dict[str, tf.Module]:
    return {'backbone': self._backbone, 'classifier': self._classifier}

  def get_config(self):
    return dict(self._config_dict)

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(**config)
