"""Tests for tools/text_embeddings.py with a small hashed SavedModel text encoder."""

import contextlib
import io
import json
import os

import numpy as np
import tensorflow as tf

from projects.vild.data import lvis_categories
from projects.vild.modeling import text_encoder
from projects.vild.modeling.text_encoder_test import export_hashed_text_encoder
from tools import text_embeddings


def run_main(*args: str) -> tuple[int, str, str]:
  """Runs the tool in process: (exit code, stdout, stderr)."""
  stdout, stderr = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
    code = text_embeddings.main(list(args))
  return code, stdout.getvalue(), stderr.getvalue()


class TextEmbeddingsTest(tf.test.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.encoder_path = export_hashed_text_encoder(
      os.path.join(tf.compat.v1.test.get_temp_dir(), 'hashed_text_encoder')
    )

  def write(self, name: str, content: str) -> str:
    path = os.path.join(self.get_temp_dir(), name)
    with open(path, 'w') as f:
      f.write(content)
    return path

  def run_tool(self, *args: str) -> tuple[np.ndarray, list[str]]:
    output = os.path.join(self.get_temp_dir(), 'out', 'emb.npy')
    code, stdout, stderr = run_main(
      f'--text_encoder={self.encoder_path}', f'--output={output}', *args
    )
    self.assertEqual(code, 0, stderr)
    self.assertIn(output, stdout)
    with open(os.path.join(self.get_temp_dir(), 'out', 'emb.names.json')) as f:
      return np.load(output), json.load(f)

  def assert_user_error(self, expected: str, *args: str):
    output = os.path.join(self.get_temp_dir(), 'error.npy')
    code, _, stderr = run_main(f'--text_encoder={self.encoder_path}', f'--output={output}', *args)
    self.assertEqual(code, 2, stderr)
    self.assertLen(stderr.strip().splitlines(), 1, stderr)
    self.assertIn(expected, stderr)
    self.assertFalse(os.path.exists(output))

  def test_comma_list_with_vild_templates(self):
    embeddings, names = self.run_tool('--categories=dog, traffic_light,apple')
    self.assertEqual(names, ['dog', 'traffic_light', 'apple'])
    self.assertEqual(embeddings.dtype, np.float32)
    self.assertEqual(embeddings.shape, (3, 8))
    self.assertAllClose(np.linalg.norm(embeddings, axis=1), np.ones(3), atol=1e-6)
    encoder = text_encoder.load_text_encoder(self.encoder_path)
    expected = text_encoder.embed_categories(encoder, names, text_encoder.VILD_TEMPLATES)
    self.assertAllClose(embeddings, expected, atol=1e-6)

  def test_names_file_and_template_file(self):
    categories = self.write('names.txt', 'dog\n\ncat\n')
    templates = self.write('templates.txt', 'a photo of {article} {}.\n{} in the scene.\n')
    embeddings, names = self.run_tool(f'--categories={categories}', f'--templates={templates}')
    self.assertEqual(names, ['dog', 'cat'])
    encoder = text_encoder.load_text_encoder(self.encoder_path)
    prompts = encoder.encode(['a photo of a cat.', 'cat in the scene.'])
    expected = prompts.mean(axis=0) / np.linalg.norm(prompts.mean(axis=0))
    self.assertAllClose(embeddings[1], expected, atol=1e-6)

  def test_annotations_json_categories_sorted_by_id(self):
    annotations = {'categories': [{'id': 7, 'name': 'zebra'}, {'id': 2, 'name': 'aerosol_can'}]}
    categories = self.write('lvis.json', json.dumps(annotations))
    embeddings, names = self.run_tool(f'--categories={categories}', '--templates=simple')
    self.assertEqual(names, ['aerosol_can', 'zebra'])
    self.assertEqual(embeddings.shape, (2, 8))

  def test_lvis_is_the_shipped_lvis_v1_list(self):
    names = text_embeddings.read_category_names('lvis')
    self.assertLen(names, 1203)
    self.assertEqual(names, lvis_categories.lvis_v1_category_names())
    self.assertEqual((names[0], names[-1]), ('aerosol_can', 'zucchini'))

  def test_user_errors(self):
    self.assert_user_error('no such file', '--categories=/no/names.txt')
    self.assert_user_error('more than once', '--categories=dog,cat,dog')
    self.assert_user_error('--templates nearest', '--categories=dog', '--templates=nearest')
    templates = self.write('templates.txt', 'a photo of a {}.\na photo\n')
    self.assert_user_error("'a photo' has no `{}`", '--categories=dog', f'--templates={templates}')
    self.assert_user_error(
      "text encoder '/no/model'", '--categories=dog', '--text_encoder=/no/model'
    )
    bad_json = self.write('bad.json', '{"images": []}')
    self.assert_user_error('JSON list of names', f'--categories={bad_json}')
    code, _, stderr = run_main('--categories=dog', '--output=emb.npz')
    self.assertEqual(code, 2)
    self.assertIn('expected a .npy file', stderr)


if __name__ == '__main__':
  tf.test.main()
