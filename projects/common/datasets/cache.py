"""The cache of generated built-in datasets: one folder per generation settings, published whole."""

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable

MANIFEST_NAME = 'manifest.json'


def default_cache_root() -> str:
  return os.environ.get('PROJECTS_DATA_DIR') or os.path.join(
    os.path.expanduser('~'), '.cache', 'projects_demo'
  )


def params_digest(params: dict) -> str:
  """A short name for generation settings (JSON-serializable), stable across processes."""
  return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def build_once(
  root: str, folder_name: str, params: dict, generate: Callable[[str], dict]
) -> tuple[str, dict]:
  """Generates a dataset into `root/folder_name` unless it is there, and returns (folder, manifest).

  `generate(folder)` writes the data into an empty folder and returns the manifest entries;
  `params` are stored in the manifest and checked on reuse. The folder is generated aside and
  published by one rename, so a reader (or another worker generating the same data at the same
  time) never sees a manifest next to partly written files, and an interrupted run leaves only a
  hidden staging folder behind.
  """
  directory = os.path.join(root, folder_name)
  manifest_path = os.path.join(directory, MANIFEST_NAME)
  if not os.path.exists(manifest_path):
    staging = os.path.join(root, f'.{folder_name}.{uuid.uuid4().hex}')
    os.makedirs(staging)
    try:
      manifest = {**generate(staging), 'params': params}
      with open(os.path.join(staging, MANIFEST_NAME), 'w') as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
      try:
        os.rename(staging, directory)
      except OSError as error:
        # Another process may have published the same (byte-identical) dataset first.
        if not os.path.exists(manifest_path):
          raise FileExistsError(
            f'cannot publish {directory}; if it exists without {MANIFEST_NAME}, delete it'
          ) from error
    finally:
      shutil.rmtree(staging, ignore_errors=True)

  with open(manifest_path) as f:
    manifest = json.load(f)
  if manifest['params'] != params:
    raise ValueError(
      f'{manifest_path} was built with {manifest["params"]}, expected {params}; delete the folder'
    )
  return directory, manifest
