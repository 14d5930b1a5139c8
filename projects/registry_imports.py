"""Imports every project so that its experiments, tasks and backbones register themselves."""

# ruff: noqa: F401
from projects.video_classification.configs import video_classification
from projects.video_classification.tasks import video_classification as video_classification_task
