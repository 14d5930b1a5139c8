"""CVRL linear evaluation and fine-tuning: a classifier on a backbone restored from pretraining.

Inputs, losses, metrics, multi-view evaluation (clips x crops averaged), the evaluation report
(`<model_dir>/eval_report/`) and the backbone-only restore of `init_checkpoint` are the video
classification task's; this task builds the CVRL classifier, whose backbone stays frozen and in
inference mode for linear evaluation.
"""

import tf_keras
from official.core import task_factory
from official.vision.modeling import backbones

from projects.cvrl.configs import cvrl as exp_cfg
from projects.cvrl.modeling import cvrl_model
from projects.cvrl.tasks import pretrain
from projects.video_classification.tasks import video_classification


@task_factory.register_task_cls(exp_cfg.CVRLLinearEvalTask)
class LinearEvalTask(video_classification.VideoClassificationTask):
  """Linear evaluation (`freeze_backbone=True`) or fine-tuning of a CVRL backbone."""

  def build_model(self) -> cvrl_model.CVRLClassifier:
    config = self.task_config
    input_specs = tf_keras.layers.InputSpec(shape=[None, *self._get_feature_shape()])
    regularizer = pretrain.l2_regularizer(config.losses.l2_weight_decay)
    backbone = backbones.factory.build_backbone(
      input_specs=input_specs,
      backbone_config=config.model.backbone,
      norm_activation_config=config.model.norm_activation,
      l2_regularizer=None if config.freeze_backbone else regularizer,
    )
    return cvrl_model.CVRLClassifier(
      backbone,
      num_classes=self._get_num_classes(),
      input_specs=input_specs,
      freeze_backbone=config.freeze_backbone,
      normalize_features=config.model.normalize_features,
      dropout_rate=config.model.dropout_rate,
      kernel_regularizer=regularizer,
    )
