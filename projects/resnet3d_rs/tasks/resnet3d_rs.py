"""3D ResNet-RS runs on the video classification and CVRL pretraining tasks.

Importing this module registers the RS task configs, the slim RS backbone and the experiments.
"""

from official.core import task_factory

from projects.cvrl.tasks import pretrain
from projects.resnet3d_rs.configs import resnet3d_rs, scaling
from projects.resnet3d_rs.modeling import slim_resnet_3d_rs  # noqa: F401  (registers the backbone)
from projects.video_classification.tasks import video_classification

# Same task (inputs, losses, multi-view eval, evaluation report); only the backbone choices differ.
task_factory.register_task_cls(scaling.ResNet3DRSTask)(video_classification.VideoClassificationTask)
task_factory.register_task_cls(resnet3d_rs.CVRLPretrainTask)(pretrain.PretrainTask)
