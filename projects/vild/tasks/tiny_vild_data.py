"""Tiny ViLD data for tests: a few 64^2 digit scenes whose training records carry proposals and
teacher embeddings, and a random text classifier of the ten digit names beside them."""

import dataclasses
import glob
import json
import os

import numpy as np
import tensorflow as tf

from projects.common.datasets import digit_scenes
from projects.vild.dataloaders import roi_features

EMBEDDING_DIM = 8
# Per training image: its groundtruth boxes, then this whole-image proposal.
WHOLE_IMAGE_BOX = (0.0, 0.0, 1.0, 1.0)
# `task.model` overrides of `vild_demo` for tests: 64^2 input, a quarter-width ResNet-10 with a
# 16-wide FPN and narrow heads (the demo's SpineNet takes minutes to build and trace on 2 cores).
TINY_MODEL = {
  'input_size': [64, 64, 3],
  'max_level': 5,
  'backbone': {'type': 'resnet', 'resnet': {'model_id': 10, 'depth_multiplier': 0.25}},
  'decoder': {'type': 'fpn', 'fpn': {'num_filters': 16}},
  'rpn_head': {'num_filters': 16},
  'detection_head': {'fc_dims': 32},
  'mask_head': {'num_filters': 8},
  'mask_sampler': {'num_sampled_masks': 4},
  'roi_sampler': {'num_sampled_rois': 16},
}


@dataclasses.dataclass(frozen=True)
class TinyViLDData:
  """The fields of the `vild_digit_scenes` built-in dataset's info, for tiny data."""

  train_pattern: str
  validation_pattern: str
  validation_annotation_file: str
  category_names: tuple[str, ...]
  text_embeddings_file: str


def _float_list(example: tf.train.Example, key: str) -> np.ndarray:
  return np.array(example.features.feature[key].float_list.value, np.float32)


def _add_rois(example: tf.train.Example, text_embeddings: np.ndarray, rng) -> None:
  """Proposals on the groundtruth (teacher embedding: the class's text embedding plus noise) and
  one on the whole image (a random embedding)."""
  boxes = np.stack(
    [_float_list(example, f'image/object/bbox/{k}') for k in ('ymin', 'xmin', 'ymax', 'xmax')], -1
  ).reshape(-1, 4)
  labels = np.array(example.features.feature['image/object/class/label'].int64_list.value)
  embeddings = text_embeddings[labels - 1] + 0.1 * rng.normal(size=(len(labels), EMBEDDING_DIM))
  boxes = np.concatenate([boxes, [WHOLE_IMAGE_BOX]], axis=0)
  embeddings = np.concatenate([embeddings, rng.normal(size=(1, EMBEDDING_DIM))], axis=0)
  for key, feature in roi_features.roi_feature_dict(boxes, embeddings).items():
    example.features.feature[key].CopyFrom(feature)


def tiny_vild_digit_scenes(directory: str, num_train: int = 4, num_validation: int = 2):
  """Digit scenes (one shard per split) in `directory`, training records with RoI fields."""
  scenes = digit_scenes.build_digit_scenes(
    cache_dir=os.path.join(directory, 'scenes'),
    num_train=num_train,
    num_validation=num_validation,
    image_size=64,
    digit_size_range_px=(16, 32),
    num_shards=1,
  )
  rng = np.random.default_rng(0)
  text_embeddings = rng.normal(size=(len(scenes.class_names), EMBEDDING_DIM)).astype(np.float32)
  text_embeddings /= np.linalg.norm(text_embeddings, axis=1, keepdims=True)
  embeddings_file = os.path.join(directory, 'digits.npy')
  np.save(embeddings_file, text_embeddings)
  with open(os.path.join(directory, 'digits.names.json'), 'w') as f:
    json.dump(list(scenes.class_names), f)
  train_file = os.path.join(directory, 'train_rois-00000-of-00001.tfrecord')
  with tf.io.TFRecordWriter(train_file) as writer:
    for record in tf.data.TFRecordDataset(sorted(glob.glob(scenes.train_pattern))):
      example = tf.train.Example.FromString(record.numpy())
      _add_rois(example, text_embeddings, rng)
      writer.write(example.SerializeToString())
  return TinyViLDData(
    train_pattern=train_file,
    validation_pattern=scenes.validation_pattern,
    validation_annotation_file=scenes.validation_annotation_file,
    category_names=scenes.class_names,
    text_embeddings_file=embeddings_file,
  )


def tiny_task_override(data) -> dict:
  """The `task` override that trains `vild_demo` as TINY_MODEL on `data` (tiny_vild_digit_scenes)."""
  return {
    'model': {**TINY_MODEL, 'vild': {'text_embeddings_file': data.text_embeddings_file}},
    'train_data': {'input_path': data.train_pattern, 'global_batch_size': 2},
    'validation_data': {'input_path': data.validation_pattern, 'global_batch_size': 2},
    'annotation_file': data.validation_annotation_file,
  }
