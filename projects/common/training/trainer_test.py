"""A NaN injected into training stops it with an error naming the step and an intact checkpoint."""

import os
import re

import numpy as np
import tensorflow as tf
import tf_keras
from official.core import exp_factory, task_factory, train_lib

from projects import registry_imports  # noqa: F401  (registers the experiments)
from projects.common.modeling import mixed_precision
from projects.common.testing import tiny_data
from projects.common.training import trainer as trainer_lib


def _tiny_demo(info, steps_per_loop: int, train_steps: int, runtime=None, **trainer_overrides):
  config = exp_factory.get_exp_config('video_classification_demo')
  data = {'global_batch_size': 2, 'shuffle_buffer_size': 8}
  config.override(
    {
      'runtime': {'mixed_precision_dtype': 'float32', **(runtime or {})},
      'task': {
        'train_data': {'input_path': info.train_pattern, 'num_examples': info.num_train, **data},
        'validation_data': {
          'input_path': info.validation_pattern,
          'num_examples': info.num_validation,
          **data,
        },
      },
      'trainer': {
        'train_steps': train_steps,
        'steps_per_loop': steps_per_loop,
        'checkpoint_interval': steps_per_loop,
        'summary_interval': steps_per_loop,
        **trainer_overrides,
      },
    },
    is_strict=True,
  )
  return config


def _inject_from_step(task, first_bad_step: int, poison: str) -> None:
  """From global step `first_bad_step` (counted from 1) on, the loss or, after the step, a weight
  becomes NaN."""
  train_step = task.train_step

  def poisoned_train_step(inputs, model, optimizer, metrics=None):
    bad = optimizer.iterations + 1 >= first_bad_step
    logs = train_step(inputs, model=model, optimizer=optimizer, metrics=metrics)
    if poison == 'weight':
      kernel = model.trainable_variables[0]
      kernel.assign(tf.where(bad, tf.fill(tf.shape(kernel), np.nan), kernel))
    if poison == 'loss':
      logs[task.loss] = tf.where(bad, tf.constant(np.nan, logs[task.loss].dtype), logs[task.loss])
    return logs

  task.train_step = poisoned_train_step


class TrainerTest(tf.test.TestCase):
  def setUp(self):
    super().setUp()
    self.info = tiny_data.tiny_moving_mnist(os.path.join(self.get_temp_dir(), 'data'))

  def _run(self, config, model_dir, first_bad_step, poison):
    strategy = tf.distribute.get_strategy()
    with strategy.scope():
      task = task_factory.get_task(config.task, logging_dir=model_dir)
      _inject_from_step(task, first_bad_step, poison)
      trainer = trainer_lib.create_trainer(config, task, model_dir, train=True, evaluate=False)
    return train_lib.run_experiment(
      distribution_strategy=strategy,
      task=task,
      mode='train',
      params=config,
      model_dir=model_dir,
      trainer=trainer,
    )

  def _assert_checkpoint_intact(self, config, model_dir, expected_step):
    checkpoint_path = tf.train.latest_checkpoint(model_dir)
    self.assertEqual(checkpoint_path, os.path.join(model_dir, f'ckpt-{expected_step}'))
    model = task_factory.get_task(config.task).build_model()
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(model=model, global_step=step).read(checkpoint_path).expect_partial()
    self.assertEqual(int(step.numpy()), expected_step)
    for variable in model.weights:
      self.assertTrue(np.isfinite(variable.numpy()).all(), variable.name)

  def test_nan_loss_names_its_step_and_the_last_checkpoint(self):
    # Two steps per loop, NaN from step 3: the first bad step is inside the loop of steps 3-4.
    config = _tiny_demo(self.info, steps_per_loop=2, train_steps=6)
    model_dir = os.path.join(self.get_temp_dir(), 'loss')
    with self.assertRaises(trainer_lib.NonFiniteTrainingError) as raised:
      self._run(config, model_dir, first_bad_step=3, poison='loss')
    message = str(raised.exception)
    self.assertIn('the training loss is nan from global step 3 on', message)
    self.assertIn(f'the last good checkpoint is {os.path.join(model_dir, "ckpt-2")}', message)
    self._assert_checkpoint_intact(config, model_dir, expected_step=2)

  def test_nan_weights_with_a_finite_loss_are_not_checkpointed(self):
    # A NaN gradient leaves the step's own loss finite; the checkpoint after it must not be saved.
    config = _tiny_demo(self.info, steps_per_loop=1, train_steps=4)
    model_dir = os.path.join(self.get_temp_dir(), 'weights')
    with self.assertRaises(trainer_lib.NonFiniteTrainingError) as raised:
      self._run(config, model_dir, first_bad_step=2, poison='weight')
    message = str(raised.exception)
    self.assertRegex(message, r'trainable weights are non-finite after global step 2 ')
    self.assertIn(f'the last good checkpoint is {os.path.join(model_dir, "ckpt-1")}', message)
    self._assert_checkpoint_intact(config, model_dir, expected_step=1)

  def test_recovery_max_trials_hands_the_nan_to_model_garden_recovery(self):
    config = _tiny_demo(self.info, steps_per_loop=1, train_steps=4, recovery_max_trials=1)
    model_dir = os.path.join(self.get_temp_dir(), 'recovery')
    # Model Garden restores ckpt-1 once, then gives up on the second NaN loop with its own error.
    with self.assertRaisesRegex(RuntimeError, re.escape('NaN after training loop')):
      self._run(config, model_dir, first_bad_step=2, poison='loss')
    self._assert_checkpoint_intact(config, model_dir, expected_step=1)

  def test_enable_xla_compiles_the_task_step_on_cpu(self):
    # A host callback has no XLA kernel: it runs only if the step is not jit-compiled.
    def host_loss_step(inputs, model, optimizer, metrics=None):
      del inputs, model, optimizer, metrics
      return {'loss': tf.numpy_function(lambda: np.float32(1.0), [], tf.float32, stateful=False)}

    for enable_xla in (False, True):
      config = _tiny_demo(
        self.info, steps_per_loop=1, train_steps=1, runtime={'enable_xla': enable_xla}
      )
      task = task_factory.get_task(config.task)
      task.train_step = host_loss_step
      trainer = trainer_lib.create_trainer(
        config, task, self.get_temp_dir(), train=True, evaluate=False
      )
      if enable_xla:
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, 'PyFunc'):
          trainer.train(tf.constant(1))
      else:
        self.assertEqual(float(trainer.train(tf.constant(1))[trainer.train_loss.name]), 1.0)

  def test_bfloat16_policy_keeps_the_stem_float32(self):
    config = _tiny_demo(self.info, steps_per_loop=1, train_steps=1)
    tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
    self.addCleanup(tf_keras.mixed_precision.set_global_policy, 'float32')
    task = task_factory.get_task(config.task)
    trainer = trainer_lib.create_trainer(
      config, task, self.get_temp_dir(), train=True, evaluate=False
    )
    stem = mixed_precision.stem_convolution(trainer.model)
    self.assertEqual(stem.compute_dtype, 'float32')
    self.assertEqual(trainer.model.backbone.compute_dtype, 'bfloat16')


if __name__ == '__main__':
  tf.test.main()
