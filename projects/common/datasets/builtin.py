"""Built-in datasets that a config can name instead of an `input_path` (generated, then cached)."""

from collections.abc import Callable, Iterator

from official.core import config_definitions as cfg

from projects.common.datasets import digit_scenes, moving_mnist

# 48^2 frames: the 28 px digits fill more of the frame than in the classic 64^2 Moving MNIST,
# so the CPU demos (32^2 crops) learn them in a few hundred steps.
DEMO_FRAME_SIZE = 48

# name -> builder returning an object with `train_pattern` and `validation_pattern` (TFRecord
# globs); a detection dataset's object also has `validation_annotation_file` (COCO JSON).
BUILTIN_DATASETS: dict[str, Callable[[], object]] = {
  'moving_mnist': lambda: moving_mnist.build_moving_mnist(
    frame_size=DEMO_FRAME_SIZE, label='digit'
  ),
  'moving_mnist_direction': lambda: moving_mnist.build_moving_mnist(
    frame_size=DEMO_FRAME_SIZE, label='direction'
  ),
  'digit_scenes': digit_scenes.build_digit_scenes,
}


def register_builtin_dataset(name: str, builder: Callable[[], object]) -> None:
  """Adds a project's built-in dataset (at import, from its `registry_imports` chain)."""
  if name in BUILTIN_DATASETS and BUILTIN_DATASETS[name] is not builder:
    raise ValueError(f'built-in dataset {name!r} is already registered')
  BUILTIN_DATASETS[name] = builder


def data_configs(task_config: cfg.TaskConfig) -> Iterator[tuple[str, cfg.DataConfig]]:
  """Yields (`task.<field>`, config) for every input config of a task."""
  for name, value in task_config.as_dict().items():
    if isinstance(value, dict) and 'input_path' in value and 'global_batch_size' in value:
      yield f'task.{name}', getattr(task_config, name)


def materialize_builtin_datasets(task_config: cfg.TaskConfig) -> None:
  """Fills `input_path` of every input config that names a built-in dataset (unlocked config).

  An empty `task.annotation_file` (the ground truth of Model Garden's COCO evaluator) is filled
  from the built-in detection dataset that `task.validation_data` names.
  """
  for key, data in data_configs(task_config):
    dataset_name = getattr(data, 'builtin_dataset', '')
    if not dataset_name or data.input_path:
      continue
    if dataset_name not in BUILTIN_DATASETS:
      raise ValueError(
        f'{key}.builtin_dataset={dataset_name!r} is not a built-in dataset; '
        f'choose one of {sorted(BUILTIN_DATASETS)}'
      )
    info = BUILTIN_DATASETS[dataset_name]()
    data.input_path = info.train_pattern if data.is_training else info.validation_pattern
    if (
      key == 'task.validation_data'
      and hasattr(info, 'validation_annotation_file')
      and hasattr(task_config, 'annotation_file')
      and not task_config.annotation_file
    ):
      task_config.annotation_file = info.validation_annotation_file
