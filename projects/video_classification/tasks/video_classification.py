"""Video classification task: Model Garden's task on the projects' config, with an eval report.

Every evaluation also reports, over the whole validation set: multi-view top-1/top-5 and
single-view top-1 accuracy, mean per-class accuracy, and (when the task has a `logging_dir`, as
under train.py) `<model_dir>/eval_report/confusion_matrix_step_N.png` and
`per_class_accuracy_step_N.json`. Counts are made per step on the devices, summed across replicas
(and workers) there, and accumulated on the host through base_task's `aggregate_logs` /
`reduce_aggregated_logs` hooks. The hooks run when evaluation is a Python loop (Model Garden's
default; `trainer.eval_tf_while_loop=true` skips them).
"""

import io
import json
import os

import numpy as np
import tensorflow as tf
import tf_keras
from matplotlib import figure
from official.core import task_factory
from official.vision.tasks import video_classification as mg_video_task

from projects.common import video_input
from projects.common.modeling import slim_r3d  # noqa: F401  (registers the 'slim_r3d' backbone)
from projects.video_classification.configs import video_classification as exp_cfg

REPORT_DIR = 'eval_report'
# Per-step counts a validation step adds to its logs, summed over the validation set.
CONFUSION_MATRIX = 'report/confusion_matrix'
TOP_5_CORRECT = 'report/top_5_correct'
SINGLE_VIEW_CORRECT = 'report/single_view_correct'
NUM_VIEWS = 'report/num_views'
REPORT_COUNTS = (CONFUSION_MATRIX, TOP_5_CORRECT, SINGLE_VIEW_CORRECT, NUM_VIEWS)
# The report's scalars that join the evaluation logs (TensorBoard, train.py's final line).
REPORT_METRICS = (
  'multi_view_top_1_accuracy',
  'multi_view_top_5_accuracy',
  'single_view_top_1_accuracy',
  'mean_per_class_accuracy',
  'num_eval_videos',
)
# Class indices are written on the confusion matrix's axes up to this many classes.
MAX_LABELLED_CLASSES = 30


@task_factory.register_task_cls(exp_cfg.VideoClassificationTask)
class VideoClassificationTask(mg_video_task.VideoClassificationTask):
  """Train: random temporal crop, random resized crop, optional flip; eval: clips x crops averaged."""

  def __init__(self, params, logging_dir: str | None = None, name: str | None = None):
    super().__init__(params, logging_dir=logging_dir, name=name)
    # train.py builds the task inside the run's strategy scope: under multi-worker training only
    # the chief writes report files. Without a logging_dir nothing is written.
    self._writes_report_files = bool(logging_dir) and (
      tf.distribute.get_strategy().extended.should_checkpoint
    )

  def build_inputs(self, params, input_context=None):
    if params.mixup_and_cutmix is not None:
      return super().build_inputs(params, input_context)  # Model Garden's path: always flips.
    return video_input.build_video_inputs(self, params, input_context)

  def _view_probabilities(self, features, model: tf_keras.Model) -> tf.Tensor:
    """Class probabilities of every view, [videos, views, classes] in float32."""
    logits = tf.cast(model(features, training=False), tf.float32)
    probabilities = tf.sigmoid(logits) if self._is_multilabel() else tf.nn.softmax(logits)
    return tf.reshape(probabilities, [-1, self._get_num_test_views(), logits.shape[-1]])

  def inference_step(self, features, model: tf_keras.Model) -> tf.Tensor:
    """Probabilities averaged over the views (clips x crops) of each video."""
    return tf.reduce_mean(self._view_probabilities(features, model), axis=1)

  def validation_step(self, inputs, model: tf_keras.Model, metrics=None):
    """Model Garden's validation step plus the report's per-step counts."""
    features, labels = inputs
    partition_dims = self.task_config.eval_input_partition_dims
    if partition_dims:
      features['image'] = tf.distribute.get_strategy().experimental_split_to_logical_devices(
        features['image'], partition_dims
      )
    view_probabilities = self._view_probabilities(features, model)
    outputs = tf.reduce_mean(view_probabilities, axis=1)
    logs = self.build_losses(model_outputs=outputs, labels=labels, aux_losses=model.losses)
    if metrics:
      self.process_metrics(metrics, labels, outputs)
      logs.update({m.name: m.result() for m in metrics})
    elif model.compiled_metrics:
      self.process_compiled_metrics(model.compiled_metrics, labels, outputs)
      logs.update({m.name: m.result() for m in model.metrics})
    if not self._is_multilabel():
      logs.update(self._report_counts(labels, view_probabilities))
    return logs

  def _report_counts(self, labels: tf.Tensor, view_probabilities: tf.Tensor) -> dict:
    num_classes = self._get_num_classes()
    if self.task_config.losses.one_hot:
      true_class = tf.argmax(labels, axis=-1, output_type=tf.int32)
    else:
      true_class = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    probabilities = tf.reduce_mean(view_probabilities, axis=1)
    predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    view_predicted = tf.argmax(view_probabilities, axis=-1, output_type=tf.int32)
    # float32: the dtype every all-reduce implementation supports; per-step counts are exact.
    counts = {
      CONFUSION_MATRIX: tf.math.confusion_matrix(
        true_class, predicted, num_classes=num_classes, dtype=tf.float32
      ),
      TOP_5_CORRECT: tf.reduce_sum(
        tf.cast(tf.math.in_top_k(true_class, probabilities, k=min(5, num_classes)), tf.float32)
      ),
      SINGLE_VIEW_CORRECT: tf.reduce_sum(
        tf.cast(tf.equal(view_predicted, true_class[:, tf.newaxis]), tf.float32)
      ),
      NUM_VIEWS: tf.cast(tf.size(view_predicted), tf.float32),
    }
    # Sum over all replicas of all workers here, on the devices: the host-side hooks only see
    # the local replicas' outputs, which under multi-worker training miss the other workers.
    replica_context = tf.distribute.get_replica_context()
    if replica_context is not None:
      counts = replica_context.all_reduce(tf.distribute.ReduceOp.SUM, counts)
    return counts

  def aggregate_logs(self, state=None, step_outputs=None):
    """Adds one validation step's counts to the running totals (host side, eager)."""
    if not step_outputs or CONFUSION_MATRIX not in step_outputs:
      return state
    state = state if state is not None else {}
    for key in REPORT_COUNTS:
      value = step_outputs[key]
      if isinstance(value, (tuple, list)):
        # One copy per local replica, all equal after the all-reduce: take one.
        value = value[0]
      value = np.rint(np.asarray(value)).astype(np.int64)
      state[key] = state[key] + value if key in state else value
    return state

  def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
    """Accuracies over the validation set; writes the report files when there is a model dir."""
    confusion = aggregated_logs.get(CONFUSION_MATRIX)
    if confusion is None or not confusion.sum():
      return {}
    report = evaluation_report(
      confusion,
      top_5_correct=int(aggregated_logs[TOP_5_CORRECT]),
      single_view_correct=int(aggregated_logs[SINGLE_VIEW_CORRECT]),
      num_views=int(aggregated_logs[NUM_VIEWS]),
    )
    if self._writes_report_files:
      step = int(global_step.numpy()) if global_step is not None else 0
      write_evaluation_report(os.path.join(self.logging_dir, REPORT_DIR), step, confusion, report)
    return {k: report[k] for k in REPORT_METRICS}


def evaluation_report(
  confusion: np.ndarray, top_5_correct: int, single_view_correct: int, num_views: int
) -> dict:
  """Scalar accuracies and per-class rows from a [true, predicted] confusion matrix of counts."""
  num_videos = int(confusion.sum())
  per_class_videos = confusion.sum(axis=1)
  correct = np.diag(confusion)
  has_videos = per_class_videos > 0
  per_class_accuracy = np.where(has_videos, correct / np.maximum(per_class_videos, 1), np.nan)
  off_diagonal = confusion - np.diag(correct)
  per_class = []
  for c in range(confusion.shape[0]):
    confused_with = int(np.argmax(off_diagonal[c]))
    confused_count = int(off_diagonal[c, confused_with])
    per_class.append(
      {
        'class': c,
        'num_videos': int(per_class_videos[c]),
        'accuracy': float(per_class_accuracy[c]) if has_videos[c] else None,
        'most_confused_with': confused_with if confused_count else None,
        'most_confused_count': confused_count,
      }
    )
  return {
    'multi_view_top_1_accuracy': float(correct.sum() / num_videos),
    'multi_view_top_5_accuracy': float(top_5_correct / num_videos),
    'single_view_top_1_accuracy': float(single_view_correct / max(num_views, 1)),
    'mean_per_class_accuracy': float(np.nanmean(per_class_accuracy)),
    'num_eval_videos': num_videos,
    'views_per_video': num_views // num_videos,
    'per_class': per_class,
  }


def write_evaluation_report(
  report_dir: str, step: int, confusion: np.ndarray, report: dict
) -> tuple[str, str]:
  """Writes the confusion-matrix PNG and the per-class JSON of one evaluation; returns paths."""
  tf.io.gfile.makedirs(report_dir)
  png_path = os.path.join(report_dir, f'confusion_matrix_step_{step}.png')
  json_path = os.path.join(report_dir, f'per_class_accuracy_step_{step}.json')
  nonzero = np.argwhere(confusion)
  record = {
    'global_step': step,
    **report,
    # Sparse [true, predicted, count] triples: the dense matrix is mostly zeros.
    'confusion_matrix_nonzero': [[int(t), int(p), int(confusion[t, p])] for t, p in nonzero],
  }
  with tf.io.gfile.GFile(json_path, 'w') as f:
    json.dump(record, f, indent=1)
  with tf.io.gfile.GFile(png_path, 'wb') as f:
    f.write(_confusion_matrix_png(confusion, step, report['multi_view_top_1_accuracy']))
  return png_path, json_path


def _confusion_matrix_png(confusion: np.ndarray, step: int, top_1: float) -> bytes:
  # Rows normalised by the class's number of videos, so colours read as recall whatever the
  # class balance. The Figure API (no pyplot) renders with Agg and leaves global state alone.
  num_classes = confusion.shape[0]
  rows = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
  fig = figure.Figure(figsize=(8, 7), dpi=max(100, num_classes // 6))
  ax = fig.add_subplot()
  image = ax.imshow(rows, cmap='viridis', vmin=0.0, vmax=1.0, interpolation='nearest')
  fig.colorbar(image, ax=ax, label='fraction of the true class')
  ax.set_xlabel('predicted class')
  ax.set_ylabel('true class')
  ax.set_title(f'confusion matrix at step {step} (multi-view top-1 {top_1:.3f})')
  if num_classes <= MAX_LABELLED_CLASSES:
    ax.set_xticks(range(num_classes))
    ax.set_yticks(range(num_classes))
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png', bbox_inches='tight')
  return buffer.getvalue()
