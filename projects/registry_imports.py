"""Imports every project so that its experiments, tasks and backbones register themselves."""

# ruff: noqa: F401
from projects.copy_paste.configs import copy_paste
from projects.copy_paste.tasks import copy_paste as copy_paste_task
from projects.cvrl.configs import cvrl, demo, experiments
from projects.cvrl.tasks import linear_eval, pretrain
from projects.resnet3d_rs.tasks import resnet3d_rs as resnet3d_rs_task
from projects.spinenet.configs import spinenet
from projects.spinenet.tasks import detection as spinenet_detection_task
from projects.video_classification.configs import video_classification
from projects.video_classification.tasks import video_classification as video_classification_task
from projects.vild.configs import vild
from projects.vild.tasks import vild as vild_task
