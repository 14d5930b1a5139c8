"""Class-agnostic proposals from a trained Mask R-CNN's region proposal network, as the proposals
JSON `precompute.load_proposals` reads.

ViLD distils the teacher on the proposals of an RPN trained on base categories only: objectness
generalises, so they also cover novel objects (ViLD, Sec. 3.3). Any checkpoint of a Model Garden
Mask R-CNN experiment (ViLD's included) serves; its RPN and RoI generator run as in evaluation.
"""

import json
import os
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from google.protobuf import message
from official.core import config_definitions as cfg
from official.core import task_factory
from official.vision.configs import maskrcnn as mg_maskrcnn
from official.vision.serving import detection

from projects.common import video_features
from projects.vild.teacher import precompute

# uint8 image [H, W, 3] → (normalised yxyx boxes [K, 4], objectness scores [K]), best first.
Proposer = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def rpn_proposer(params: cfg.ExperimentConfig, checkpoint: str) -> tuple[Proposer, str]:
  """The RPN of the experiment's model restored from `checkpoint` (a train.py model_dir or a
  prefix); returns the proposer and which checkpoint it read.

  Images are prepared as Model Garden's detection serving prepares them (its evaluation resize),
  and the RoI generator's evaluation settings (`roi_generator.test_*`) pick the proposals.
  """
  if not isinstance(params.task.model, mg_maskrcnn.MaskRCNN):
    raise ValueError(
      f'the RPN proposals need a Mask R-CNN experiment; this one has a '
      f'{type(params.task.model).__name__} model'
    )
  task = task_factory.get_task(params.task)
  model = task.build_model()
  # The task builds every variable, so the restore checks that the checkpoint has them all.
  source = video_features.restore_evaluated_model(task, params, model, checkpoint, whole_model=True)
  module = detection.DetectionModule(
    params, model=model, batch_size=1, input_image_size=list(params.task.model.input_size[:2])
  )

  @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
  def propose(image):
    inputs, anchor_boxes, image_info = module.preprocess(image)
    features = model.backbone(inputs, training=False)
    if model.decoder is not None:
      features = model.decoder(features, training=False)
    rpn_scores, rpn_boxes = model.rpn_head(features, training=False)
    rois, scores = model.roi_generator(
      rpn_boxes, rpn_scores, anchor_boxes, image_info[:, 1, :], training=False
    )
    # image_info rows: original size, resized size, scale, offset (each [y, x]).
    offset = tf.tile(image_info[:, 3:4, :], [1, 1, 2])
    scale = tf.tile(image_info[:, 2:3, :], [1, 1, 2])
    original_size = tf.tile(image_info[:, 0:1, :], [1, 1, 2])
    boxes = tf.clip_by_value((rois + offset) / scale / original_size, 0.0, 1.0)
    return boxes[0], scores[0]

  def proposer(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    boxes, scores = (t.numpy() for t in propose(tf.constant(image[np.newaxis])))
    # The generator pads to its proposal count with empty boxes.
    kept = np.all(boxes[:, 2:] > boxes[:, :2], axis=1)
    order = np.argsort(-scores[kept], kind='stable')
    return boxes[kept][order], scores[kept][order]

  return proposer, source


def write_proposals(
  input_paths: Sequence[str], propose: Proposer, output_file: str, max_proposals: int
) -> tuple[int, int]:
  """Writes the best `max_proposals` proposals of each decodable image of the TFRecords as
  `{"<image/source_id>": [[ymin, xmin, ymax, xmax], ...]}`; returns (images with proposals,
  records skipped). A skipped record has no entry, so the precompute lists it in errors.csv."""
  proposals, skipped = {}, 0
  for path in input_paths:
    for offset, length in precompute.list_records(path):
      if length < 0:  # Cut short.
        skipped += 1
        continue
      try:
        example = tf.train.Example.FromString(precompute.read_record(path, offset, length))
        encoded = precompute.feature_values(example, 'image/encoded', 'bytes_list')
        image = tf.io.decode_image(encoded[0], channels=3, expand_animations=False)
      except (message.DecodeError, IndexError, tf.errors.OpError, OSError):
        skipped += 1
        continue
      boxes, _ = propose(image.numpy())
      proposals[precompute.image_source_id(example)] = np.round(boxes[:max_proposals], 6).tolist()
  os.makedirs(os.path.dirname(os.path.abspath(output_file)), exist_ok=True)
  with open(output_file, 'w') as f:
    json.dump(proposals, f)
  # Read back as the precompute will: a proposals file it cannot use fails here.
  precompute.load_proposals(output_file)
  return len(proposals), skipped
