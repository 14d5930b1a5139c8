"""ViLD's detection head: RoI features → L2-normalised region embeddings, classified against the
frozen text embeddings of whatever category names the user gives, plus a learned background."""

import numpy as np
import tensorflow as tf
import tf_keras
from official.vision.modeling.heads import instance_heads

from projects.vild.ops import base_novel, score_ensemble

# Paper Sec. 3.2: logits are cosine similarities divided by tau = 0.01 (the official configs
# multiply by `temperature: 100.0`).
PAPER_TEMPERATURE = 0.01

# The detection generator ranks sigmoid(log-odds); clipping keeps log-odds finite for scores of
# exactly 0 or 1.
_SCORE_EPSILON = 1e-7


def normalized_category_embeddings(category_embeddings) -> np.ndarray:
  """Checks a [C, D] matrix of category embeddings and returns it L2-normalised, float32."""
  embeddings = np.asarray(category_embeddings, dtype=np.float32)
  if embeddings.ndim != 2 or embeddings.shape[0] == 0:
    raise ValueError(
      f'category embeddings must be a non-empty [num_categories, dim] matrix, got shape '
      f'{embeddings.shape}'
    )
  norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
  bad_rows = np.flatnonzero(~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0))
  if bad_rows.size:
    raise ValueError(
      f'category embedding rows {bad_rows.tolist()} are zero or not finite; every category needs '
      'a real text embedding'
    )
  return embeddings / norms


@tf_keras.utils.register_keras_serializable(package='ViLD')
class TextClassifier(tf_keras.layers.Layer):
  """Cosine classifier over [background, category 1, ..., category C], divided by a temperature.

  The category embeddings are a constant, not a variable: they never get a gradient, they stay out
  of checkpoints (a trained detector restores with any category list) and
  `set_category_embeddings` may change their number. Only the background embedding is learned.
  """

  def __init__(self, category_embeddings, temperature: float = PAPER_TEMPERATURE, **kwargs):
    # Always float32, also under a mixed-precision policy: cosines divided by 0.01 span +-100, where
    # float16 keeps about 0.06 of resolution.
    kwargs['dtype'] = tf.float32
    super().__init__(**kwargs)
    if temperature <= 0:
      raise ValueError(f'TextClassifier temperature must be > 0, got {temperature}')
    self._temperature = temperature
    embeddings = normalized_category_embeddings(category_embeddings)
    self.embedding_dim = embeddings.shape[1]
    self._category_embeddings = tf.constant(embeddings)

  def set_category_embeddings(self, category_embeddings):
    """Replaces the category list (same embedding size). Retrace any tf.function afterwards."""
    embeddings = normalized_category_embeddings(category_embeddings)
    if embeddings.shape[1] != self.embedding_dim:
      raise ValueError(
        f'new category embeddings have {embeddings.shape[1]} dimensions but this classifier '
        f'was built for {self.embedding_dim}'
      )
    self._category_embeddings = tf.constant(embeddings)

  @property
  def category_embeddings(self) -> tf.Tensor:
    return self._category_embeddings

  @property
  def num_categories(self) -> int:
    return int(self._category_embeddings.shape[0])

  @property
  def temperature(self) -> float:
    return self._temperature

  def build(self, input_shape):
    if input_shape[-1] != self.embedding_dim:
      raise ValueError(
        f'region embeddings have {input_shape[-1]} dimensions but the category embeddings have '
        f'{self.embedding_dim}'
      )
    self.background_embedding = self.add_weight(
      name='background_embedding',
      shape=[self.embedding_dim],
      initializer=tf_keras.initializers.RandomNormal(stddev=0.01),
      trainable=True,
      dtype=tf.float32,
    )
    super().build(input_shape)

  def category_logits(self, region_embeddings: tf.Tensor) -> tf.Tensor:
    """[..., D] normalised embeddings → [..., C] logits, no background column."""
    region_embeddings = tf.cast(region_embeddings, tf.float32)
    logits = tf.einsum('...d,cd->...c', region_embeddings, self._category_embeddings)
    return logits / self._temperature

  def call(self, region_embeddings: tf.Tensor) -> tf.Tensor:
    """[..., D] normalised embeddings → [..., 1 + C] logits, background first."""
    region_embeddings = tf.cast(region_embeddings, tf.float32)
    background = tf.math.l2_normalize(self.background_embedding)
    background_logit = tf.einsum('...d,d->...', region_embeddings, background) / self._temperature
    return tf.concat(
      [background_logit[..., None], self.category_logits(region_embeddings)], axis=-1
    )

  def get_config(self):
    config = super().get_config()
    config.update(
      {
        'category_embeddings': self._category_embeddings.numpy().tolist(),
        'temperature': self._temperature,
      }
    )
    return config


def _tower_features(head: instance_heads.DetectionHead, roi_features: tf.Tensor) -> tf.Tensor:
  """Runs the conv and fc layers of a built Model Garden DetectionHead: [B, R, h, w, c] → [B, R, F].

  Same order as DetectionHead.call (conv-BN-activation, flatten, fc-BN-activation), stopping before
  its classifier and box regressor, which ViLD replaces.
  """
  _, num_rois, height, width, channels = roi_features.get_shape().as_list()
  x = tf.reshape(roi_features, [-1, height, width, channels])
  for conv, norm in zip(head._convs, head._conv_norms, strict=True):
    x = head._activation(norm(conv(x)))
  x = tf.reshape(x, [-1, num_rois, height * width * x.get_shape().as_list()[-1]])
  for fc, norm in zip(head._fcs, head._fc_norms, strict=True):
    x = head._activation(norm(fc(x)))
  return x


def _project(projection: tf_keras.layers.Dense, features: tf.Tensor) -> tf.Tensor:
  """Tower features → L2-normalised region embeddings in the text teacher's space."""
  return tf.math.l2_normalize(projection(tf.cast(features, tf.float32)), axis=-1)


def _scores_as_logits(scores: tf.Tensor) -> tf.Tensor:
  """[..., C] probabilities → [..., 1 + C] log-odds with a (discarded) background column first.

  Model Garden's DetectionGenerator in sigmoid mode drops column 0 and ranks sigmoid(column), so
  it ranks exactly these scores, whatever combination (softmax or ensemble) produced them.
  """
  scores = tf.clip_by_value(scores, _SCORE_EPSILON, 1.0 - _SCORE_EPSILON)
  log_odds = tf.math.log(scores) - tf.math.log1p(-scores)
  return tf.concat([tf.zeros_like(log_odds[..., :1]), log_odds], axis=-1)


@tf_keras.utils.register_keras_serializable(package='ViLD')
class ViLDDetectionHead(instance_heads.DetectionHead):
  """Model Garden's Fast R-CNN box head with ViLD's open-vocabulary classifier.

  Tower (convs, fcs) as in DetectionHead → dense projection to the text teacher's embedding size
  → L2 normalisation → `TextClassifier`. Box regression is class agnostic, since boxes must exist
  for categories named only at inference.

  `call` returns (class_outputs, box_outputs) as Model Garden's MaskRCNNModel expects:
  - training: class_outputs are the ViLD-text logits [B, R, 1 + C] (background first);
  - inference: class_outputs are the log-odds of the final per-category scores (text softmax, or
    the ViLD-ensemble combination when `image_branch`), for a DetectionGenerator built with
    `use_sigmoid_probability=True` (`build_vild_maskrcnn` does this).

  With `image_branch` (ViLD-ensemble) a second tower and projection embed regions for the
  ViLD-image loss; without it (plain ViLD) the text branch's embeddings are distilled.
  """

  def __init__(
    self,
    category_embeddings,
    base_class_mask=None,
    temperature: float = PAPER_TEMPERATURE,
    image_branch: bool = False,
    ensemble_lambda: float = score_ensemble.PAPER_ENSEMBLE_LAMBDA,
    num_convs: int = 0,
    num_filters: int = 256,
    use_separable_conv: bool = False,
    num_fcs: int = 2,
    fc_dims: int = 1024,
    activation: str = 'relu',
    use_sync_bn: bool = False,
    norm_momentum: float = 0.99,
    norm_epsilon: float = 0.001,
    kernel_regularizer=None,
    bias_regularizer=None,
    **kwargs,
  ):
    """Args:
    category_embeddings: [C, D] text embeddings of the category names (normalised here).
    base_class_mask: [C] bools, True for categories seen in training; None means all novel. The
      ViLD-text loss and the ensemble read it.
    temperature: the classifier's softmax temperature (paper 0.01).
    image_branch: add ViLD-ensemble's separate image-branch tower and projection.
    ensemble_lambda: ViLD-ensemble's weight (paper 2/3).
    Others: as Model Garden's DetectionHead.
    """
    tower_config = {
      'num_convs': num_convs,
      'num_filters': num_filters,
      'use_separable_conv': use_separable_conv,
      'num_fcs': num_fcs,
      'fc_dims': fc_dims,
      'activation': activation,
      'use_sync_bn': use_sync_bn,
      'norm_momentum': norm_momentum,
      'norm_epsilon': norm_epsilon,
      'kernel_regularizer': kernel_regularizer,
      'bias_regularizer': bias_regularizer,
    }
    # num_classes only sizes DetectionHead's own classifier, which is never called here.
    super().__init__(num_classes=1, class_agnostic_bbox_pred=True, **tower_config, **kwargs)
    self._tower_config = tower_config
    self._image_branch = image_branch
    if not 0.0 <= ensemble_lambda <= 1.0:
      raise ValueError(f'ensemble_lambda must lie in [0, 1], got {ensemble_lambda}')
    self._ensemble_lambda = ensemble_lambda
    self.text_classifier = TextClassifier(
      category_embeddings, temperature=temperature, name='text_classifier'
    )
    self._set_base_class_mask(base_class_mask)

  def _set_base_class_mask(self, base_class_mask):
    self._base_class_mask = tf.constant(
      base_novel.as_base_class_mask(base_class_mask, self.text_classifier.num_categories)
    )

  @property
  def base_class_mask(self) -> tf.Tensor:
    """[C] bool, True for the categories the detector was trained on."""
    return self._base_class_mask

  @property
  def num_categories(self) -> int:
    return self.text_classifier.num_categories

  def set_categories(self, category_embeddings, base_class_mask=None):
    """Swaps the category list. Retrace any tf.function (or reset Keras' predict function)."""
    self.text_classifier.set_category_embeddings(category_embeddings)
    self._set_base_class_mask(base_class_mask)

  def _projection_layer(self, name: str) -> tf_keras.layers.Dense:
    # float32 like the official head, which casts the tower output before projecting.
    return tf_keras.layers.Dense(
      self.text_classifier.embedding_dim,
      kernel_regularizer=self._tower_config['kernel_regularizer'],
      bias_regularizer=self._tower_config['bias_regularizer'],
      dtype=tf.float32,
      name=name,
    )

  def build(self, input_shape):
    super().build(input_shape)
    self._projection = self._projection_layer('region-projection')
    if self._image_branch:
      self._image_tower = instance_heads.DetectionHead(
        num_classes=1, class_agnostic_bbox_pred=True, name='image-branch', **self._tower_config
      )
      self._image_tower.build(input_shape)
      self._image_projection = self._projection_layer('image-branch-projection')

  def _text_branch(self, roi_features: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    features = _tower_features(self, roi_features)
    return features, _project(self._projection, features)

  def text_embeddings(self, roi_features: tf.Tensor) -> tf.Tensor:
    """[B, R, h, w, c] RoI features → [B, R, D] normalised embeddings the classifier scores."""
    return self._text_branch(roi_features)[1]

  def image_embeddings(self, roi_features: tf.Tensor) -> tf.Tensor:
    """[B, R, h, w, c] RoI features → [B, R, D] normalised embeddings for ViLD-image."""
    if not self._image_branch:
      return self.text_embeddings(roi_features)
    return _project(self._image_projection, _tower_features(self._image_tower, roi_features))

  def call(self, roi_features: tf.Tensor, training=None):
    features, text_embeddings = self._text_branch(roi_features)
    box_outputs = self._box_regressor(features)
    text_logits = self.text_classifier(text_embeddings)
    if training:
      return text_logits, box_outputs
    # Background competes in the softmax and is then dropped (official `discard_background: false`).
    scores = tf.nn.softmax(text_logits, axis=-1)[..., 1:]
    if self._image_branch:
      image_logits = self.text_classifier.category_logits(self.image_embeddings(roi_features))
      scores = score_ensemble.ensemble_scores(
        scores,
        tf.nn.softmax(image_logits, axis=-1),
        self._base_class_mask,
        self._ensemble_lambda,
      )
    return _scores_as_logits(scores), box_outputs

  def get_config(self):
    return {
      **self._tower_config,
      'category_embeddings': self.text_classifier.category_embeddings.numpy().tolist(),
      'base_class_mask': self._base_class_mask.numpy().tolist(),
      'temperature': self.text_classifier.temperature,
      'image_branch': self._image_branch,
      'ensemble_lambda': self._ensemble_lambda,
      'name': self.name,
    }
