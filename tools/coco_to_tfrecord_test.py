"""Tests for tools/coco_to_tfrecord.py: exit codes, Model Garden flag names, printed summary."""

import os
import subprocess
import sys

import pytest

from projects.common.detection import tiny_coco
from tools import coco_to_tfrecord

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(image_dir, json_path, output_dir, *flags: str) -> int:
  return coco_to_tfrecord.main(
    [
      f'--image_dir={image_dir}',
      f'--object_annotations_file={json_path}',
      f'--output_dir={output_dir}',
      '--num_processes=0',
      *flags,
    ]
  )


def test_converts_and_prints_the_counts(tmp_path, capsys):
  image_dir, json_path = tiny_coco.write_dataset(str(tmp_path), tiny_coco.coco_dict())
  out = tmp_path / 'out'
  assert _run(image_dir, json_path, out, '--include_masks', '--num_shards=2') == 0
  printed = capsys.readouterr().out
  assert '3 images: 3 written, 0 not written, 0 annotations dropped; 2 shards' in printed
  assert sorted(os.listdir(out)) == [
    '.instances-00000-of-00002.tfrecord.done.json',
    '.instances-00001-of-00002.tfrecord.done.json',
    'categories.json',
    'errors.csv',
    'instances-00000-of-00002.tfrecord',
    'instances-00001-of-00002.tfrecord',
    'label_map.json',
    'summary.json',
  ]


def test_exits_1_when_an_image_is_not_written_unless_allowed(tmp_path, capsys):
  annotations = tiny_coco.coco_dict()
  annotations['annotations'][0]['category_id'] = 42
  image_dir, json_path = tiny_coco.write_dataset(str(tmp_path), annotations)
  os.remove(os.path.join(image_dir, 'c.jpg'))
  out = tmp_path / 'out'
  assert _run(image_dir, json_path, out) == 1
  captured = capsys.readouterr()
  assert '1 of 3 images were not written' in captured.err
  assert 'failed, missing file: 1' in captured.out
  assert 'dropped, unknown category id: 1' in captured.out
  assert _run(image_dir, json_path, out, '--allow_failures') == 0


def test_dropped_annotations_alone_exit_0(tmp_path):
  annotations = tiny_coco.coco_dict()
  annotations['annotations'][0]['bbox'] = [100, 100, 5, 5]
  image_dir, json_path = tiny_coco.write_dataset(str(tmp_path), annotations)
  assert _run(image_dir, json_path, tmp_path / 'out') == 0


@pytest.mark.parametrize('problem', ['malformed_json', 'missing_key', 'no_image_dir'])
def test_unusable_inputs_exit_2_naming_the_problem(tmp_path, capsys, problem):
  image_dir, json_path = tiny_coco.write_dataset(str(tmp_path), tiny_coco.coco_dict())
  expected = {
    'malformed_json': 'is not valid JSON',
    'missing_key': "no top-level key 'categories'",
    'no_image_dir': 'does not exist',
  }[problem]
  if problem == 'malformed_json':
    with open(json_path, 'a') as f:
      f.write('}')
  elif problem == 'missing_key':
    with open(json_path, 'w') as f:
      f.write('{"images": [], "annotations": []}')
  else:
    image_dir = str(tmp_path / 'nowhere')
  assert _run(image_dir, json_path, tmp_path / 'out') == 2
  assert expected in capsys.readouterr().err


def test_bad_flag_values_exit_2(tmp_path):
  with pytest.raises(SystemExit) as error:
    _run(tmp_path, tmp_path / 'a.json', tmp_path / 'out', '--num_shards=0')
  assert error.value.code == 2


def test_runs_as_a_script(tmp_path):
  image_dir, json_path = tiny_coco.write_dataset(str(tmp_path), tiny_coco.lvis_dict())
  script = os.path.join(_REPO_ROOT, 'tools', 'coco_to_tfrecord.py')
  result = subprocess.run(
    [
      sys.executable,
      script,
      f'--image_dir={image_dir}',
      f'--object_annotations_file={json_path}',
      f'--output_dir={tmp_path / "out"}',
      '--num_workers=0',
    ],
    capture_output=True,
    text=True,
  )
  assert result.returncode == 0, result.stderr
  assert '3 images: 3 written' in result.stdout
