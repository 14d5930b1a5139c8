"""Tests for RPN proposals: a tiny random Mask R-CNN's RPN, and the proposals JSON it writes."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.vision.modeling import factory

from projects import registry_imports  # noqa: F401  (registers every experiment)
from projects.common import experiment_config
from projects.vild.teacher import precompute, rpn_proposals

NUM_PROPOSALS = 30
# Model Garden's COCO Mask R-CNN shrunk: 128^2 input, ResNet-18, narrow heads.
TINY_MASKRCNN = (
  'task.model.input_size=[128,128,3],task.model.backbone.resnet.model_id=18,'
  'task.model.num_classes=3,task.model.decoder.fpn.num_filters=16,'
  'task.model.rpn_head.num_filters=16,task.model.rpn_head.num_convs=1,'
  'task.model.detection_head.num_filters=16,task.model.detection_head.num_convs=0,'
  'task.model.detection_head.num_fcs=1,task.model.detection_head.fc_dims=16,'
  'task.model.mask_head.num_filters=16,task.model.mask_head.num_convs=1,'
  f'task.model.roi_generator.test_num_proposals={NUM_PROPOSALS},'
  'task.annotation_file=,task.init_checkpoint='
)


def _write_records(path: str, images: dict[str, np.ndarray]) -> None:
  with tf.io.TFRecordWriter(path) as writer:
    for source_id, image in images.items():
      example = tf.train.Example()
      example.features.feature['image/source_id'].bytes_list.value[:] = [source_id.encode()]
      example.features.feature['image/encoded'].bytes_list.value[:] = [
        tf.io.encode_png(image).numpy()
      ]
      writer.write(example.SerializeToString())
    writer.write(b'not an example')


def test_write_proposals_keeps_the_best_of_each_decodable_image(tmp_path):
  path = str(tmp_path / 'images.tfrecord')
  _write_records(path, {'7': np.zeros([10, 20, 3], np.uint8), '8': np.ones([6, 6, 3], np.uint8)})

  def propose(image):
    # The image's height in the first coordinate: tells the images apart.
    boxes = np.array([[image.shape[0] / 100, 0, 0.5, 0.5], [0, 0, 1, 1], [0.1, 0.1, 0.2, 0.2]])
    return boxes, np.array([0.9, 0.5, 0.1])

  output = str(tmp_path / 'out' / 'proposals.json')
  assert rpn_proposals.write_proposals([path], propose, output, max_proposals=2) == (2, 1)
  proposals = precompute.load_proposals(output)
  assert proposals == {
    '7': [[0.1, 0, 0.5, 0.5], [0, 0, 1, 1]],
    '8': [[0.06, 0, 0.5, 0.5], [0, 0, 1, 1]],
  }


def test_needs_a_mask_rcnn_experiment():
  params = experiment_config.build_experiment_config(
    'retinanet_resnetfpn_coco', (), 'task.annotation_file=,task.init_checkpoint='
  )
  with pytest.raises(ValueError, match='Mask R-CNN experiment; this one has a RetinaNet'):
    rpn_proposals.rpn_proposer(params, '/unused')


def test_rpn_of_a_checkpoint_gives_normalised_boxes_best_first(tmp_path):
  params = experiment_config.build_experiment_config('maskrcnn_resnetfpn_coco', (), TINY_MASKRCNN)
  # A checkpoint of random weights. The model the task builds, with its variables created by one
  # eager call: the task's symbolic warm-up call takes tens of seconds on a shared CPU.
  model = factory.build_maskrcnn(
    tf_keras.layers.InputSpec(shape=[None, 128, 128, 3]), params.task.model
  )
  model(tf.zeros([1, 128, 128, 3]), image_shape=tf.constant([[128.0, 128.0]]), training=False)
  checkpoint = tf.train.Checkpoint(model=model).save(os.path.join(tmp_path, 'ckpt'))
  propose, source = rpn_proposals.rpn_proposer(params, checkpoint)
  assert source.startswith(checkpoint)
  image = np.random.default_rng(0).integers(0, 256, [60, 90, 3]).astype(np.uint8)
  boxes, scores = propose(image)
  assert 0 < len(boxes) <= NUM_PROPOSALS
  assert np.all((boxes >= 0) & (boxes <= 1))
  assert np.all(boxes[:, 2:] > boxes[:, :2])
  assert np.all(np.diff(scores) <= 0)
