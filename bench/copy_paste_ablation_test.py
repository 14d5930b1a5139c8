"""The ablation compares like with like (only Copy-Paste differs), subsets the data once, resumes
from the runs it has, and reports means, spreads and paired gains."""

import contextlib
import io
import json
import os
from unittest import mock

import tensorflow as tf
from official.core import exp_factory
from official.modeling import hyperparams

from bench import copy_paste_ablation as ablation


def _result(experiment, copy_paste, fraction, seed, mask_ap, box_ap):
  run = ablation.Run(experiment, copy_paste, fraction, seed)
  return {
    'experiment': experiment,
    'copy_paste': copy_paste,
    'data_fraction': fraction,
    'seed': seed,
    'name': run.name,
    'num_train_images': round(2000 * fraction),
    'train_steps': 100,
    'mask_ap': mask_ap,
    'box_ap': box_ap,
  }


class VariantConfigTest(tf.test.TestCase):
  def test_with_and_without_differ_only_in_copy_paste(self):
    for experiment in ablation.DEFAULT_EXPERIMENTS:
      _, without = ablation.variant_config(experiment, copy_paste=False)
      train_py_experiment, with_ = ablation.variant_config(experiment, copy_paste=True)
      self.assertEqual(train_py_experiment, experiment)
      self.assertTrue(with_.task.train_data.copy_paste.enabled)
      differences = [
        d.split(':')[0] for d in ablation.config_differences(without.as_dict(), with_.as_dict())
      ]
      self.assertEqual(differences, ['task.train_data.copy_paste.enabled'], msg=experiment)

  def test_the_demo_baseline_is_the_spinenet_demo(self):
    _, without = ablation.variant_config(ablation.COPY_PASTE_EXPERIMENT, copy_paste=False)
    spinenet_demo = exp_factory.get_exp_config('maskrcnn_spinenet_demo').as_dict()
    differences = list(ablation.config_differences(spinenet_demo, without.as_dict()))
    # The Copy-Paste demo's own settings: its block, room for pasted objects, its 10 epochs.
    own = ('task.train_data.parser.max_num_instances:', 'trainer.')
    self.assertEqual(
      [d for d in differences if 'copy_paste' not in d and not d.startswith(own)], []
    )

  def test_an_experiment_without_copy_paste_is_named(self):
    with self.assertRaisesRegex(ValueError, 'maskrcnn_spinenet_demo has no task.train_data'):
      ablation.variant_config('maskrcnn_spinenet_demo', copy_paste=True)

  def test_train_py_resolves_the_written_config_unchanged(self):
    for experiment in ablation.DEFAULT_EXPERIMENTS:
      train_py_experiment, config = ablation.variant_config(experiment, copy_paste=True)
      # Explicit paths, so that nothing generates the built-in data.
      config.task.train_data.input_path = '/data/train*'
      config.task.validation_data.input_path = '/data/validation*'
      config.task.annotation_file = '/data/validation.json'
      ablation.set_budget(config.trainer, 3)
      path = os.path.join(self.get_temp_dir(), f'{experiment}.yaml')
      hyperparams.save_params_dict_to_yaml(config, path)
      ablation.check_resolves_to(train_py_experiment, path, config)

  def test_a_config_file_train_py_would_change_fails(self):
    experiment, config = ablation.variant_config(ablation.COPY_PASTE_EXPERIMENT, True)
    path = os.path.join(self.get_temp_dir(), 'config.yaml')
    hyperparams.save_params_dict_to_yaml(config, path)
    config.task.train_data.input_path = '/data/train*'
    config.task.validation_data.input_path = '/data/validation*'
    config.task.annotation_file = '/data/validation.json'
    config.trainer.train_steps = 7  # Not what the file says.
    with self.assertRaisesRegex(SystemExit, r'trainer\.train_steps: 7 != '):
      ablation.check_resolves_to(experiment, path, config)

  def test_budget_sets_steps_schedule_and_one_full_evaluation(self):
    _, config = ablation.variant_config(ablation.COPY_PASTE_EXPERIMENT, True)
    ablation.set_budget(config.trainer, 6)
    trainer = config.trainer
    self.assertEqual(trainer.train_steps, 6)
    self.assertEqual(trainer.optimizer_config.learning_rate.cosine.decay_steps, 6)
    self.assertEqual(trainer.summary_interval % trainer.steps_per_loop, 0)
    self.assertEqual(trainer.train_steps % trainer.steps_per_loop, 0)
    self.assertEqual(trainer.validation_interval, 6)
    self.assertEqual(trainer.validation_steps, -1)


class SubsetTest(tf.test.TestCase):
  def _write(self, name, records):
    path = os.path.join(self.get_temp_dir(), name)
    with tf.io.TFRecordWriter(path) as writer:
      for record in records:
        writer.write(record)
    return path

  def test_first_fraction_of_the_records_in_file_order_written_once(self):
    files = [
      self._write('a-00000', [b'0', b'1', b'2', b'3']),
      self._write('a-00001', [b'4', b'5', b'6', b'7', b'8', b'9']),
    ]
    data_dir = os.path.join(self.get_temp_dir(), 'data')
    path, count, total = ablation.write_subset(files, 0.5, data_dir)
    self.assertEqual((count, total), (5, 10))
    self.assertEqual(
      [r.numpy() for r in tf.data.TFRecordDataset(path)], [b'0', b'1', b'2', b'3', b'4']
    )
    modified = os.path.getmtime(path)
    self.assertEqual(ablation.write_subset(files, 0.5, data_dir)[0], path)
    self.assertEqual(os.path.getmtime(path), modified)
    self.assertEqual(ablation.write_subset(files, 1.0, data_dir), (None, 10, 10))


class ReportTest(tf.test.TestCase):
  def test_cells_and_gains_paired_by_seed(self):
    demo = ablation.COPY_PASTE_EXPERIMENT
    results = [
      _result(demo, False, 0.1, 0, 0.10, 0.20),
      _result(demo, True, 0.1, 0, 0.15, 0.22),
      _result(demo, False, 0.1, 1, 0.12, 0.20),
      _result(demo, True, 0.1, 1, 0.19, 0.26),
      # A seed without its pair counts in its cell but not in the gain.
      _result(demo, True, 0.1, 2, 0.20, 0.30),
    ]
    cells, gains = ablation.summarize(results)
    self.assertEqual([c['seeds'] for c in cells], [[0, 1], [0, 1, 2]])
    self.assertEqual(gains[0]['seeds'], [0, 1])
    self.assertAllClose(gains[0]['mask_ap_gain'], [0.05, 0.07])
    text = ablation.report(cells, gains, 'a CPU')
    self.assertIn('11.0 ± 1.4 [10.0-12.0]', text)
    self.assertIn('+6.0 ± 1.4', text)
    self.assertIn('CPU: a CPU', text)

  def test_a_rerun_with_other_settings_is_refused(self):
    work_dir = self.get_temp_dir()
    ablation.check_settings(work_dir, {'train_steps': 100, 'params_override': ''})
    ablation.check_settings(work_dir, {'train_steps': 100, 'params_override': ''})
    with self.assertRaisesRegex(SystemExit, "holds runs made with .'train_steps': 100"):
      ablation.check_settings(work_dir, {'train_steps': 200, 'params_override': ''})

  def test_runs_with_results_are_not_trained_again(self):
    work_dir = self.get_temp_dir()
    experiments = [ablation.COPY_PASTE_EXPERIMENT]
    for run in ablation.planned_runs(experiments, [0.1, 1.0], seeds=1):
      run_dir = os.path.join(work_dir, 'runs', run.name)
      os.makedirs(run_dir)
      with open(os.path.join(run_dir, 'result.json'), 'w') as f:
        json.dump(_result(run.experiment, run.copy_paste, run.data_fraction, run.seed, 0.1, 0.2), f)
    with (
      mock.patch.object(ablation, 'training_files', return_value=['/data/train-0']),
      mock.patch.object(ablation, 'write_subset', return_value=(None, 2000, 2000)),
      mock.patch.object(ablation, 'train_run', side_effect=AssertionError('trained again')),
      contextlib.redirect_stdout(io.StringIO()) as output,
    ):
      ablation.main([f'--work_dir={work_dir}', f'--experiments={experiments[0]}', '--seeds=1'])
    self.assertIn('Gain from Copy-Paste', output.getvalue())
    with open(os.path.join(work_dir, 'ablation.json')) as f:
      self.assertLen(json.load(f)['runs'], 4)


if __name__ == '__main__':
  tf.test.main()
