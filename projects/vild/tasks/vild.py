"""ViLD task: Mask R-CNN whose classifier is text embeddings of category names, trained with
ViLD-text (and ViLD-image when the data carries teacher embeddings of proposals), evaluated by
COCO AP plus AP of the base and novel categories (and LVIS AP_r / AP_c / AP_f)."""

import dataclasses
import json

import numpy as np
import tensorflow as tf
import tf_keras
from absl import logging
from official.common import dataset_fn as dataset_fn_lib
from official.core import task_factory
from official.vision.dataloaders import input_reader, input_reader_factory
from official.vision.losses import maskrcnn_losses

from projects.common.datasets import builtin
from projects.common.detection import evaluation_report, open_vocab_evaluation
from projects.spinenet.tasks import detection
from projects.vild.configs import vild as vild_configs
from projects.vild.data import lvis_categories
from projects.vild.dataloaders import vild_input
from projects.vild.losses import vild_losses
from projects.vild.modeling import vild_model
from projects.vild.modeling.text_encoder import category_names_file

IMAGE_LOSS = 'image_distillation_loss'


@dataclasses.dataclass(frozen=True)
class CategoryList:
  """The detector's categories: row k (class id k + 1) of each field is one category."""

  embeddings: np.ndarray  # [C, D] float32
  names: tuple[str, ...]
  base_class_mask: np.ndarray  # [C] bool, False for novel categories

  @property
  def novel_names(self) -> list[str]:
    return [n for n, base in zip(self.names, self.base_class_mask, strict=True) if not base]


def text_embeddings_file(task_config: vild_configs.ViLDTask) -> str:
  """`model.vild.text_embeddings_file`, or, when empty, that of the built-in training dataset."""
  path = task_config.model.vild.text_embeddings_file
  dataset = task_config.train_data.builtin_dataset
  if path or not dataset:
    return path
  if dataset not in builtin.BUILTIN_DATASETS:
    raise ValueError(
      f'task.train_data.builtin_dataset={dataset!r} is not a built-in dataset; choose one of '
      f'{sorted(builtin.BUILTIN_DATASETS)}'
    )
  info = builtin.BUILTIN_DATASETS[dataset]()
  if not getattr(info, 'text_embeddings_file', ''):
    raise ValueError(
      f'built-in dataset {dataset!r} has no text embeddings; set '
      'task.model.vild.text_embeddings_file'
    )
  return info.text_embeddings_file


def load_categories(task_config: vild_configs.ViLDTask) -> CategoryList:
  """Reads the text embeddings and names and marks the novel categories (see `vild_configs.ViLD`)."""
  config = task_config.model.vild
  path = text_embeddings_file(task_config)
  if not path:
    raise ValueError(
      'task.model.vild.text_embeddings_file is empty; write one with tools/text_embeddings.py '
      '(e.g. --categories=lvis) and set it'
    )
  names_path = category_names_file(path)
  for required in (path, names_path):
    if not tf.io.gfile.exists(required):
      raise ValueError(f'task.model.vild.text_embeddings_file: {required} does not exist')
  with tf.io.gfile.GFile(path, 'rb') as f:
    embeddings = np.load(f).astype(np.float32)
  with tf.io.gfile.GFile(names_path) as f:
    names = tuple(json.load(f))
  if embeddings.ndim != 2 or embeddings.shape[0] != len(names):
    raise ValueError(
      f'{path} holds embeddings of shape {embeddings.shape} but {names_path} names '
      f'{len(names)} categories; expected [{len(names)}, dim]'
    )
  unknown = sorted(set(config.novel_category_names) - set(names))
  if unknown:
    raise ValueError(
      f'task.model.vild.novel_category_names {unknown} are not categories of {names_path}'
    )
  base = np.array([name not in config.novel_category_names for name in names])
  if config.novel_lvis_frequencies:
    if list(names) != lvis_categories.lvis_v1_category_names():
      raise ValueError(
        f'task.model.vild.novel_lvis_frequencies={config.novel_lvis_frequencies!r} needs the LVIS '
        f'v1 category list in id order, but {names_path} holds {len(names)} other names'
      )
    base &= np.array(lvis_categories.lvis_v1_base_class_mask(config.novel_lvis_frequencies))
  return CategoryList(embeddings=embeddings, names=names, base_class_mask=base)


class OpenVocabularyCOCOEvaluator(evaluation_report.PerCategoryCOCOEvaluator):
  """The report's COCO evaluator, keeping the COCOevals of its last evaluation (ground truth and
  detections) in `last_coco_evals` for the base / novel and LVIS figures."""

  last_coco_evals: dict = {}

  def accept_lvis_ground_truth(self) -> None:
    """Lets pycocotools read LVIS ground truth, whose annotations have no `iscrowd` (LVIS marks
    no crowd regions): Model Garden's COCO AP then runs on it, unfederated."""
    ground_truth = getattr(self, '_coco_gt', None)
    if ground_truth is not None:
      for annotation in ground_truth.dataset.get('annotations', []):
        annotation.setdefault('iscrowd', 0)

  def evaluate(self):
    metrics = super().evaluate()
    self.last_coco_evals = dict(self.coco_evals)
    return metrics


def _is_lvis(coco_gt) -> bool:
  return bool(coco_gt.cats) and all('frequency' in c for c in coco_gt.cats.values())


def _scalar_logs(open_vocab_metrics: dict) -> dict[str, np.float32]:
  """`box_AP_novel`, `mask_AP50_base`, `box_lvis_APr`, ... for the evaluation logs and summaries."""
  logs = {}
  for kind, groups in open_vocab_metrics.get('base_novel', {}).items():
    for group, figures in groups.items():
      for name in ('AP', 'AP50'):
        if figures.get(name) is not None:
          logs[f'{kind}_{name}_{group}'] = np.float32(figures[name])
  for kind, figures in open_vocab_metrics.get('lvis', {}).items():
    for name in ('AP', 'APr', 'APc', 'APf'):
      if figures.get(name) is not None:
        logs[f'{kind}_lvis_{name}'] = np.float32(figures[name])
  return logs


@task_factory.register_task_cls(vild_configs.ViLDTask)
class ViLDTask(detection.MaskRCNNTask):
  """Model Garden's Mask R-CNN task (with the SpineNet project's report and class-id check) for
  ViLD: the ViLD model, input without novel instances, the ViLD losses, open-vocabulary AP."""

  def __init__(self, params, logging_dir=None, name=None):
    super().__init__(params, logging_dir=logging_dir, name=name)
    self._categories = None

  @property
  def categories(self) -> CategoryList:
    if self._categories is None:
      self._categories = load_categories(self.task_config)
      num_classes = self.task_config.model.num_classes
      if num_classes != len(self._categories.names) + 1:
        raise ValueError(
          f'task.model.num_classes={num_classes} but the text embeddings file has '
          f'{len(self._categories.names)} categories; expected num_classes='
          f'{len(self._categories.names) + 1} (background is id 0)'
        )
    return self._categories

  @property
  def uses_image_distillation(self) -> bool:
    return self.task_config.losses.image_distillation_weight > 0

  def build_model(self):
    config = self.task_config
    input_specs = tf_keras.layers.InputSpec(shape=[None, *config.model.input_size])
    weight_decay = config.losses.l2_weight_decay
    # Halved as in Model Garden's task: tf.nn.l2_loss, which the papers' decay means, halves.
    l2_regularizer = tf_keras.regularizers.l2(weight_decay / 2.0) if weight_decay else None
    vild = config.model.vild
    model = vild_model.build_vild_maskrcnn(
      input_specs,
      config.model,
      self.categories.embeddings,
      base_class_mask=self.categories.base_class_mask,
      temperature=vild.temperature,
      image_branch=vild.ensemble,
      ensemble_lambda=vild.ensemble_lambda,
      l2_regularizer=l2_regularizer,
    )
    if config.freeze_backbone:
      model.backbone.trainable = False
    # Creates the variables. Model Garden's task calls the model on symbolic Keras inputs, which
    # took 25-50 s on a shared 2-core CPU even for a tiny model; one eager image takes seconds.
    height, width = config.model.input_size[:2]
    model(
      tf.zeros([1, *config.model.input_size]),
      image_shape=tf.constant([[height, width]], tf.float32),
      training=False,
    )
    return model

  def build_inputs(self, params, input_context=None, dataset_fn=None):
    detection.check_inputs(self.task_config.model.num_classes, params)
    if params.decoder.type != 'simple_decoder':
      raise ValueError(
        f'ViLD reads Model Garden tf.Examples with the simple decoder; got decoder.type='
        f'{params.decoder.type!r}'
      )
    model = self.task_config.model
    read_rois = params.is_training and self.uses_image_distillation
    decoder_config = params.decoder.simple_decoder
    decoder = vild_input.TfExampleDecoder(
      include_rois=read_rois,
      include_mask=model.include_mask,
      regenerate_source_id=decoder_config.regenerate_source_id,
      mask_binarize_threshold=decoder_config.mask_binarize_threshold,
    )
    parser_config = params.parser
    parser = vild_input.Parser(
      base_class_mask=self.categories.base_class_mask,
      max_num_rois=parser_config.max_num_rois if read_rois else 0,
      roi_embedding_dim=self.categories.embeddings.shape[1],
      output_size=model.input_size[:2],
      min_level=model.min_level,
      max_level=model.max_level,
      num_scales=model.anchor.num_scales,
      aspect_ratios=model.anchor.aspect_ratios,
      anchor_size=model.anchor.anchor_size,
      rpn_match_threshold=parser_config.rpn_match_threshold,
      rpn_unmatched_threshold=parser_config.rpn_unmatched_threshold,
      rpn_batch_size_per_im=parser_config.rpn_batch_size_per_im,
      rpn_fg_fraction=parser_config.rpn_fg_fraction,
      aug_rand_hflip=parser_config.aug_rand_hflip,
      aug_rand_vflip=parser_config.aug_rand_vflip,
      aug_scale_min=parser_config.aug_scale_min,
      aug_scale_max=parser_config.aug_scale_max,
      aug_type=parser_config.aug_type,
      skip_crowd_during_training=parser_config.skip_crowd_during_training,
      max_num_instances=parser_config.max_num_instances,
      include_mask=model.include_mask,
      outer_boxes_scale=model.outer_boxes_scale,
      mask_crop_size=parser_config.mask_crop_size,
      dtype=params.dtype,
    )
    reader = input_reader_factory.input_reader_generator(
      params,
      dataset_fn=dataset_fn or dataset_fn_lib.pick_dataset_fn(params.file_type),
      decoder_fn=decoder.decode,
      combine_fn=input_reader.create_combine_fn(params),
      parser_fn=parser.parse_fn(params.is_training),
    )
    return reader.read(input_context=input_context)

  def _build_frcnn_losses(self, outputs, labels):
    """ViLD-text in place of the softmax class loss; Model Garden's class-agnostic box loss."""
    class_loss = vild_losses.vild_text_loss(
      outputs['class_outputs'],
      outputs['class_targets'],
      tf.constant(self.categories.base_class_mask),
    )
    box_loss_fn = maskrcnn_losses.FastrcnnBoxLoss(
      self.task_config.losses.frcnn_huber_loss_delta, class_agnostic_bbox_pred=True
    )
    box_loss = tf.reduce_mean(
      box_loss_fn(outputs['box_outputs'], outputs['class_targets'], outputs['box_targets'])
    )
    return class_loss, box_loss

  def build_losses(self, outputs, labels, aux_losses=None):
    losses = super().build_losses(outputs, labels, aux_losses)
    image_loss = tf.constant(0.0)
    if self.uses_image_distillation and 'distill_region_embeddings' in outputs:
      image_loss = vild_losses.vild_image_loss(
        outputs['distill_region_embeddings'],
        labels[vild_input.DISTILL_TEACHER_EMBEDDINGS],
        vild_losses.valid_proposals(labels[vild_input.DISTILL_ROIS]),
        weight=self.task_config.losses.image_distillation_weight,
      )
    losses['model_loss'] += image_loss
    losses['total_loss'] += self.task_config.losses.loss_weight * image_loss
    losses[IMAGE_LOSS] = image_loss
    return losses

  def build_metrics(self, training: bool = True):
    metrics = super().build_metrics(training)
    if training:
      metrics.append(tf_keras.metrics.Mean(IMAGE_LOSS, dtype=tf.float32))
    return metrics

  def train_step(self, inputs, model, optimizer, metrics=None):
    """Model Garden's Mask R-CNN step, with the proposals to distill passed to the model."""
    images, labels = inputs
    model_kwargs = {
      'image_shape': labels['image_info'][:, 1, :],
      'anchor_boxes': labels['anchor_boxes'],
      'gt_boxes': labels['gt_boxes'],
      'gt_classes': labels['gt_classes'],
    }
    if self.task_config.model.include_mask:
      model_kwargs['gt_masks'] = labels['gt_masks']
      if self.task_config.model.outer_boxes_scale > 1.0:
        model_kwargs['gt_outer_boxes'] = labels['gt_outer_boxes']
    if vild_input.DISTILL_ROIS in labels:
      model_kwargs['distill_rois'] = labels[vild_input.DISTILL_ROIS]
    num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tf.GradientTape() as tape:
      outputs = model(images, training=True, **model_kwargs)
      outputs = tf.nest.map_structure(lambda x: tf.cast(x, tf.float32), outputs)
      losses = self.build_losses(outputs=outputs, labels=labels, aux_losses=model.losses)
      scaled_loss = losses['total_loss'] / num_replicas
      if isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer):
        scaled_loss = optimizer.get_scaled_loss(scaled_loss)
    variables = model.trainable_variables
    grads = tape.gradient(scaled_loss, variables)
    if isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer):
      grads = optimizer.get_unscaled_gradients(grads)
    optimizer.apply_gradients(list(zip(grads, variables, strict=True)))
    for metric in metrics or []:
      metric.update_state(losses[metric.name])
    return {self.loss: losses['total_loss']}

  def _build_coco_metrics(self):
    super()._build_coco_metrics()
    self.coco_metric = OpenVocabularyCOCOEvaluator.from_evaluator(self.coco_metric)
    self.coco_metric.accept_lvis_ground_truth()

  def open_vocabulary_metrics(self, box_eval) -> dict:
    """Base / novel AP (and LVIS AP_r, AP_c, AP_f on LVIS ground truth) of an evaluation.

    Evaluated against every image of the ground truth: with `validation_steps` covering only
    part of it, the figures count the rest as missed.
    """
    coco_gt = box_eval.cocoGt
    detections = box_eval.cocoDt.dataset['annotations']
    include_mask = self.task_config.model.include_mask
    present = {int(i) for i in coco_gt.getCatIds()}
    novel_ids = [
      i
      for i in open_vocab_evaluation.novel_category_ids(self.categories.base_class_mask)
      if i in present
    ]
    metrics = {
      'base_novel': open_vocab_evaluation.base_novel_ap(
        coco_gt, detections, novel_ids, include_mask, max_detections=box_eval.params.maxDets[-1]
      )
    }
    if _is_lvis(coco_gt) and self.task_config.annotation_file:
      metrics['lvis'] = open_vocab_evaluation.lvis_ap_by_frequency(
        self.task_config.annotation_file, detections, include_mask
      )
    return metrics

  def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
    logs = super().reduce_aggregated_logs(aggregated_logs, global_step)
    evaluator = getattr(self, 'coco_metric', None)
    coco_evals = getattr(evaluator, 'last_coco_evals', None)
    if not coco_evals:
      return logs
    evaluator.last_coco_evals = {}
    if not coco_evals['box'].cocoDt.dataset['annotations']:
      return logs
    metrics = self.open_vocabulary_metrics(coco_evals['box'])
    logs.update(_scalar_logs(metrics))
    if self.logging_dir:
      path = open_vocab_evaluation.add_to_report_file(self.logging_dir, metrics)
      logging.info('base / novel AP written to %s', path)
    return logs
