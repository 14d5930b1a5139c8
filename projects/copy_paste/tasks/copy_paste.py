"""Copy-Paste Mask R-CNN task: Model Garden's, whose training input pastes objects between
training images when `task.train_data.copy_paste.enabled`."""

from official.core import task_factory
from official.vision.tasks import maskrcnn

from projects.copy_paste.configs import copy_paste as copy_paste_configs
from projects.copy_paste.dataloaders import copy_paste_input


@task_factory.register_task_cls(copy_paste_configs.CopyPasteMaskRCNNTask)
class CopyPasteMaskRCNNTask(maskrcnn.MaskRCNNTask):
  def build_inputs(self, params, input_context=None, dataset_fn=None):
    copy_paste = getattr(params, 'copy_paste', None)
    if not (params.is_training and copy_paste and copy_paste.enabled):
      return super().build_inputs(params, input_context, dataset_fn)
    return copy_paste_input.build_inputs(
      self.task_config,
      params,
      input_context,
      min_visible_area=copy_paste.min_visible_area,
      blend_sigma=copy_paste.blend_sigma,
      blend_kernel_size=copy_paste.blend_kernel_size,
      paste_source_input_path=copy_paste.paste_source_input_path,
    )
