"""Names the file behind an input error that tf.data reports without one.

A training job reads thousands of TFRecord files through interleaved readers, so TensorFlow's own
messages ("corrupted record at 12345", a failed assertion on a label) do not say which file is
bad. When such an error stops a run, `explain` reads the run's input files once more (only then:
it costs a pass over the data) and names the file, so the user knows what to fix or remove.
"""

from collections.abc import Sequence

import tensorflow as tf
from official.core import config_definitions as cfg

from projects.common.datasets import builtin


class ConfigDataMismatchError(ValueError):
  """The config cannot fit the data it reads (e.g. fewer classes than the data's labels).

  Raised before training starts; the message names the config key and the file that disagree.
  """


# Start of the message of the label assertion in the video parser; `explain` looks for it.
LABEL_OUT_OF_RANGE = 'label outside num_classes'


def input_files(input_path: str | Sequence[str]) -> list[str]:
  """Every file that glob patterns (comma-separated in a string, or a list) match, sorted."""
  patterns = input_path.split(',') if isinstance(input_path, str) else input_path
  return sorted(
    path for pattern in patterns if pattern.strip() for path in tf.io.gfile.glob(pattern.strip())
  )


def first_corrupt_file(paths: list[str]) -> tuple[str, str] | None:
  """(file, TensorFlow's message) of the first file whose records fail their framing or CRC."""
  for path in paths:
    try:
      tf.data.TFRecordDataset(path).reduce(tf.constant(0, tf.int64), lambda count, _: count + 1)
    except tf.errors.DataLossError as e:
      return path, e.message
  return None


def first_label_out_of_range(
  paths: list[str], label_key: str, num_classes: int
) -> tuple[str, int] | None:
  """(file, label) of the first video whose context label is not in [0, num_classes)."""
  features = {label_key: tf.io.VarLenFeature(tf.int64)}
  for path in paths:
    for record in tf.data.TFRecordDataset(path):
      context, _ = tf.io.parse_single_sequence_example(record, context_features=features)
      labels = tf.sparse.to_dense(context[label_key]).numpy()
      bad = [int(label) for label in labels if not 0 <= label < num_classes]
      if bad:
        return path, bad[0]
  return None


def explain(task_config: cfg.TaskConfig, mode: str, error: tf.errors.OpError) -> str | None:
  """One line naming the input file behind `error`, or None when the inputs are not its cause."""
  for key, data in builtin.data_configs(task_config):
    is_training = key == 'task.train_data'
    if (is_training and 'train' not in mode) or (not is_training and 'eval' not in mode):
      continue
    if not isinstance(data.input_path, str) or not data.input_path:
      continue
    paths = input_files(data.input_path)
    if isinstance(error, tf.errors.DataLossError):
      corrupt = first_corrupt_file(paths)
      if corrupt:
        path, message = corrupt
        return (
          f'{key}.input_path: {path} is corrupt or truncated ({message}); '
          're-create it (e.g. rerun its converter) or remove it from the pattern'
        )
    elif LABEL_OUT_OF_RANGE in error.message and hasattr(data, 'label_field_key'):
      bad = first_label_out_of_range(paths, data.label_field_key, data.num_classes)
      if bad:
        path, label = bad
        return (
          f'{key}.input_path: {path} has label {label}, outside {key}.num_classes='
          f'{data.num_classes} (labels run from 0 to {data.num_classes - 1})'
        )
  return None
