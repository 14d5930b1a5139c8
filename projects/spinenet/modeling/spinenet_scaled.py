"""`spinenet_scaled`: Model Garden's SpineNet at a named size with any of its scaling overridden.

Model Garden's `spinenet` backbone takes each size's endpoint width, filter scale, resampling
alpha and block repeats from `SCALING_MAP[model_id]`, so no config can change them. The SpineNet
paper's RetinaNet SpineNet-49S has 256-channel P3-P7 endpoints (see the project README), and the
CPU demos want a narrower network: this builder starts from the same map and lets the config
replace any of the four.
"""

import tf_keras
from official.modeling import hyperparams
from official.vision.modeling.backbones import factory, spinenet

SCALING_FIELDS = ('endpoints_num_filters', 'filter_size_scale', 'resample_alpha', 'block_repeats')


def scaling(backbone_config: hyperparams.Config) -> dict:
  """The scaling of a `spinenet_scaled` config: its model id's, with the fields it sets."""
  model_id = str(backbone_config.model_id)
  if model_id not in spinenet.SCALING_MAP:
    raise ValueError(
      f'spinenet_scaled.model_id={model_id!r} is not a SpineNet size; choose one of '
      f'{sorted(spinenet.SCALING_MAP)}'
    )
  params = dict(spinenet.SCALING_MAP[model_id])
  for field in SCALING_FIELDS:
    value = getattr(backbone_config, field)
    if value is not None:
      params[field] = value
  return params


@factory.register_backbone_builder('spinenet_scaled')
def build_spinenet_scaled(
  input_specs: tf_keras.layers.InputSpec,
  backbone_config: hyperparams.Config,
  norm_activation_config: hyperparams.Config,
  l2_regularizer: tf_keras.regularizers.Regularizer | None = None,
) -> tf_keras.Model:
  """Model Garden's `SpineNet` with `scaling(config)` instead of `SCALING_MAP[model_id]`."""
  config = backbone_config.get()
  params = scaling(config)
  return spinenet.SpineNet(
    input_specs=input_specs,
    min_level=config.min_level,
    max_level=config.max_level,
    endpoints_num_filters=params['endpoints_num_filters'],
    resample_alpha=params['resample_alpha'],
    block_repeats=params['block_repeats'],
    filter_size_scale=params['filter_size_scale'],
    init_stochastic_depth_rate=config.stochastic_depth_drop_rate,
    kernel_regularizer=l2_regularizer,
    activation=norm_activation_config.activation,
    use_sync_bn=norm_activation_config.use_sync_bn,
    norm_momentum=norm_activation_config.norm_momentum,
    norm_epsilon=norm_activation_config.norm_epsilon,
  )
