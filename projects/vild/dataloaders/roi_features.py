"""The TFRecord fields ViLD-image reads: precomputed proposals and the teacher's embeddings of them.

Written by `tools/vild_precompute.py` beside Model Garden's detection fields: M boxes as
normalised [ymin, xmin, ymax, xmax] coordinates (like `image/object/bbox/*`) and, flattened row
by row, their M x D teacher image embeddings (L2-normalised).
"""

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

ROI_BOX_KEYS = (
  'image/roi/bbox/ymin',
  'image/roi/bbox/xmin',
  'image/roi/bbox/ymax',
  'image/roi/bbox/xmax',
)
ROI_FEATURE_KEY = 'image/roi/feature'


def _float_feature(values: np.ndarray) -> tf.train.Feature:
  return tf.train.Feature(float_list=tf.train.FloatList(value=np.ravel(values).tolist()))


def roi_feature_dict(boxes: np.ndarray, embeddings: np.ndarray) -> dict[str, tf.train.Feature]:
  """The fields of M proposals: `boxes` [M, 4] normalised yxyx, `embeddings` [M, D]."""
  boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
  embeddings = np.asarray(embeddings, np.float32)
  if embeddings.ndim != 2 or len(embeddings) != len(boxes):
    raise ValueError(
      f'roi embeddings must be [num_boxes={len(boxes)}, dim], got shape {embeddings.shape}'
    )
  fields = {key: _float_feature(boxes[:, i]) for i, key in enumerate(ROI_BOX_KEYS)}
  fields[ROI_FEATURE_KEY] = _float_feature(embeddings)
  return fields


def parse_spec() -> dict[str, tf.io.VarLenFeature]:
  """`tf.io.parse_single_example` features of the RoI fields."""
  return {key: tf.io.VarLenFeature(tf.float32) for key in (*ROI_BOX_KEYS, ROI_FEATURE_KEY)}


def decode_rois(parsed: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
  """(boxes [M, 4] normalised yxyx, embeddings [M, D]) from the parsed `parse_spec` fields."""
  dense = {
    key: tf.sparse.to_dense(value) if isinstance(value, tf.SparseTensor) else value
    for key, value in parsed.items()
  }
  boxes = tf.stack([dense[key] for key in ROI_BOX_KEYS], axis=-1)
  num_boxes = tf.shape(boxes)[0]
  embeddings = tf.reshape(dense[ROI_FEATURE_KEY], [num_boxes, -1])
  return boxes, embeddings
