"""Video classification task: Model Garden's task on the projects' config and backbones."""

from official.core import task_factory
from official.vision.tasks import video_classification as mg_video_task

from projects.common.modeling import slim_r3d  # noqa: F401  (registers the 'slim_r3d' backbone)
from projects.video_classification.configs import video_classification as exp_cfg


@task_factory.register_task_cls(exp_cfg.VideoClassificationTask)
class VideoClassificationTask(mg_video_task.VideoClassificationTask):
  """Train: random temporal crop, random resized crop and flip; eval: clips x crops averaged."""
