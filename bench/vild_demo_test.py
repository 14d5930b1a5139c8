"""The ViLD demo benchmark compares the three variants with all else equal, pairs the novel-AP gains
by seed, prints and writes every run and resumes without training.

train.py's own part is faked here: `vild_train_test` runs `vild_demo` through train.py, and the
config each run writes is checked to resolve unchanged (`check_resolves_to`)."""

import contextlib
import dataclasses
import io
import json
import os
from unittest import mock

import tensorflow as tf
from official.modeling import hyperparams

from bench import copy_paste_ablation as training_runs
from bench import vild_demo
from projects.common.detection import open_vocab_evaluation

# Explicit paths: nothing generates the built-in data.
EXPLICIT_FILES = {
  'task': {
    'train_data': {'input_path': '/data/train*'},
    'validation_data': {'input_path': '/data/validation*'},
    'annotation_file': '/data/validation.json',
    'model': {'vild': {'text_embeddings_file': '/data/emb.npy'}},
  }
}


def _result(variant, seed, novel_box, base_box, novel_mask=0.1, base_mask=0.2):
  return {
    'variant': variant,
    'seed': seed,
    'name': vild_demo.Run(variant, seed).name,
    'label': vild_demo.VARIANTS[variant][0],
    'image_distillation_weight': 0.0 if variant == vild_demo.BASELINE else 0.5,
    'ensemble': variant == 'vild_ensemble',
    'train_steps': 500,
    'novel_categories': ['two', 'five', 'eight'],
    'novel_box_ap': novel_box,
    'base_box_ap': base_box,
    'novel_mask_ap': novel_mask,
    'base_mask_ap': base_mask,
  }


class VariantTest(tf.test.TestCase):
  def test_variants_differ_only_in_distillation_weight_and_ensemble(self):
    override = json.dumps(EXPLICIT_FILES)
    configs = {
      variant: vild_demo.run_config(vild_demo.Run(variant, 1), 10, override).as_dict()
      for variant in vild_demo.VARIANTS
    }
    text, vild, ensemble = (configs[v] for v in vild_demo.VARIANTS)
    self.assertEqual(
      [d.split(':')[0] for d in training_runs.config_differences(text, vild)],
      ['task.losses.image_distillation_weight'],
    )
    self.assertEqual(
      [d.split(':')[0] for d in training_runs.config_differences(vild, ensemble)],
      ['task.model.vild.ensemble'],
    )
    self.assertEqual(vild['task']['losses']['image_distillation_weight'], 0.5)
    self.assertEqual(vild['task']['train_data']['seed'], 1)
    self.assertEqual(vild['trainer']['train_steps'], 10)
    self.assertEqual(vild['trainer']['validation_steps'], -1)

  def test_an_override_that_changes_the_variant_is_refused(self):
    override = json.dumps(
      {'task': {**EXPLICIT_FILES['task'], 'losses': {'image_distillation_weight': 0.0}}}
    )
    with self.assertRaisesRegex(SystemExit, 'turns ViLD into another variant'):
      vild_demo.run_config(vild_demo.Run('vild', 0), None, override)


class ReportTest(tf.test.TestCase):
  def test_gains_paired_by_seed_and_missing_groups_shown(self):
    results = [
      _result('vild_text', 0, 0.02, 0.50),
      _result('vild_text', 1, 0.04, 0.52),
      _result('vild', 0, 0.10, 0.49),
      _result('vild', 1, 0.16, 0.51),
      _result('vild_ensemble', 0, 0.12, 0.50, novel_mask=None),
    ]
    variants, gains = vild_demo.summarize(results)
    self.assertEqual([v['label'] for v in variants], ['ViLD-text', 'ViLD', 'ViLD-ensemble'])
    self.assertEqual(gains[0]['novel_box_ap_gain']['seeds'], [0, 1])
    self.assertAllClose(gains[0]['novel_box_ap_gain']['values'], [0.08, 0.12])
    self.assertEqual(gains[1]['novel_mask_ap_gain']['seeds'], [])
    text = vild_demo.report(variants, gains, 'a CPU', ['two', 'five', 'eight'])
    self.assertIn('CPU: a CPU', text)
    self.assertIn('novel: two, five, eight', text)
    self.assertIn('3.0 ± 1.4 [2.0-4.0]', text)  # ViLD-text novel box AP
    self.assertIn('+10.0 ± 2.8', text)  # ViLD's novel box AP gain
    self.assertIn('n/a', text)


def _fake_train_py(run, experiment, config, run_dir, num_train_images):
  """What `training_runs.train_run` leaves behind, without training: the checked config, the
  task's report (novel AP by variant and seed) and `result.json`."""
  os.makedirs(run_dir, exist_ok=True)
  config_path = os.path.join(run_dir, 'config.yaml')
  hyperparams.save_params_dict_to_yaml(config, config_path)
  training_runs.check_resolves_to(experiment, config_path, config)
  novel_ap = {'vild_text': 0.01, 'vild': 0.05, 'vild_ensemble': 0.07}[run.variant] + 0.01 * run.seed
  groups = {
    'base': {'AP': 0.5, 'num_categories': 7},
    'novel': {'AP': novel_ap, 'num_categories': 3},
  }
  open_vocab_evaluation.add_to_report_file(run_dir, {'base_novel': {'box': groups, 'mask': groups}})
  result = {
    **dataclasses.asdict(run),
    'name': run.name,
    'train_steps': config.trainer.train_steps,
    'num_train_images': num_train_images,
    'seconds': 1.0,
  }
  with open(os.path.join(run_dir, 'result.json'), 'w') as f:
    json.dump(result, f)
  return result


class SmokeTest(tf.test.TestCase):
  """The benchmark's flow with train.py's part faked: every variant and seed, the table, the
  JSON, and a rerun that trains nothing (also after a stop before the figures were added)."""

  def test_table_json_and_resume(self):
    work_dir = os.path.join(self.get_temp_dir(), 'bench')
    argv = [
      f'--work_dir={work_dir}',
      '--seeds=2',
      '--train_steps=4',
      f'--params_override={json.dumps(EXPLICIT_FILES)}',
    ]
    with (
      mock.patch.object(vild_demo, 'num_training_images', return_value=2000),
      mock.patch.object(training_runs, 'train_run', side_effect=_fake_train_py),
      contextlib.redirect_stdout(io.StringIO()) as output,
    ):
      vild_demo.main(argv)
    text = output.getvalue()
    self.assertIn('CPU: ', text)
    self.assertIn('novel: two, five, eight', text)
    self.assertRegex(text, r'\nViLD-text +0 +4 +2  1\.5 ± 0\.7 \[1\.0-2\.0\] +50\.0 ± 0\.0')
    self.assertRegex(text, r'\nViLD +0\.5 +4 +2  5\.5 ± 0\.7')
    self.assertRegex(text, r'\nViLD-ensemble +0\.5 +4 +2  7\.5 ± 0\.7')
    self.assertRegex(text, r'\nViLD +2  \+4\.0 ± 0\.0 +\+4\.0 ± 0\.0')
    self.assertRegex(text, r'\nViLD-ensemble +2  \+6\.0 ± 0\.0')
    with open(os.path.join(work_dir, 'vild_demo.json')) as f:
      summary = json.load(f)
    self.assertEqual(summary['cpu'], text.split('CPU: ')[1].split('\n')[0])
    self.assertEqual(
      [(r['variant'], r['seed']) for r in summary['runs']],
      [(v, s) for s in (0, 1) for v in ('vild_text', 'vild', 'vild_ensemble')],
    )
    run = summary['runs'][2]
    self.assertEqual((run['image_distillation_weight'], run['ensemble']), (0.5, True))
    self.assertEqual(run['base_novel']['box']['novel']['num_categories'], 3)
    self.assertEqual([v['variant'] for v in summary['variants']], list(vild_demo.VARIANTS))
    self.assertEqual([g['variant'] for g in summary['gains']], ['vild', 'vild_ensemble'])

    # A run stopped after train.py but before its base / novel figures were added.
    result_path = os.path.join(work_dir, 'runs', 'vild_seed1', 'result.json')
    with open(result_path) as f:
      stopped = {k: v for k, v in json.load(f).items() if k != 'base_novel'}
    with open(result_path, 'w') as f:
      json.dump(stopped, f)
    with (
      mock.patch.object(training_runs, 'train_run', side_effect=AssertionError('trained again')),
      contextlib.redirect_stdout(io.StringIO()) as rerun,
    ):
      vild_demo.main(argv)
    self.assertEqual(rerun.getvalue(), text)


if __name__ == '__main__':
  tf.test.main()
