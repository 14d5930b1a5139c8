"""The ViLD demo's built-in data: digit scenes with a teacher trained here and its RoI embeddings.

`build_vild_digit_scenes` (registered as the built-in dataset `vild_digit_scenes`) generates, once
per settings, into the cache of `projects/common/datasets`:
1. digit scenes (`projects/common/datasets/digit_scenes.py`);
2. the teacher: the 10 category names embedded by all-MiniLM-L6-v2 with ViLD's prompt ensemble
   (`text_embeddings.npy` + `text_embeddings.names.json`, as tools/text_embeddings.py writes them),
   and a small image encoder trained contrastively against those embeddings on object crops of
   ALL classes of the train split (`image_encoder.keras`): the stand-in for a web-scale image-text
   model that has seen everything, novel classes included;
3. the train split's TFRecords with proposals and the teacher's embeddings of them (what
   tools/vild_precompute.py writes, jittered-groundtruth proposals).
"""

import argparse
import dataclasses
import json
import os
import re
from collections.abc import Sequence

import numpy as np
from absl import logging

from projects.common.datasets import builtin, cache, digit_scenes
from projects.vild.modeling import text_encoder
from projects.vild.teacher import contrastive, image_encoder, precompute

# Bump whenever the teacher or the precompute changes, so stale caches land in other folders.
VERSION = 1
TEXT_EMBEDDINGS_FILE = 'text_embeddings.npy'
IMAGE_ENCODER_FILE = 'image_encoder.keras'
DATASET_NAME = 'vild_digit_scenes'
# The teacher's CNN and training: 1000 steps of 128 crops reach 89% zero-shot accuracy on the
# validation crops (10 classes) in about 110 CPU-seconds (2-core AMD EPYC).
TEACHER_WIDTHS = (16, 32, 64)
TEACHER_BATCH_SIZE = 128
TEACHER_LEARNING_RATE = 3e-3


@dataclasses.dataclass(frozen=True)
class VildDigitScenesInfo:
  """Where the ViLD demo data lives. Category ids 1..10 are `category_names` in order; row i of
  the text embeddings is category id i + 1."""

  train_pattern: str  # Train TFRecords with the RoI fields.
  validation_pattern: str
  train_annotation_file: str
  validation_annotation_file: str
  category_names: tuple[str, ...]
  text_embeddings_file: str  # float32 [10, 384], names beside it (category_names_file).
  image_encoder_file: str
  teacher_zero_shot_accuracy: float  # On the validation split's object crops, 10-way.
  num_proposals: int
  embedding_dim: int
  directory: str


def _train_teacher(directory: str, scenes: digit_scenes.DigitScenesInfo, params: dict) -> dict:
  """Writes the text embeddings and the trained image encoder into `directory`."""
  names = list(scenes.class_names)
  encoder = text_encoder.load_text_encoder(text_encoder.MINILM)
  text_embeddings = text_encoder.embed_categories(encoder, names, text_encoder.VILD_TEMPLATES)
  embeddings_file = os.path.join(directory, TEXT_EMBEDDINGS_FILE)
  np.save(embeddings_file, text_embeddings)
  with open(text_encoder.category_names_file(embeddings_file), 'w') as f:
    json.dump(names, f, indent=2)
  result = contrastive.train_image_teacher(
    contrastive.load_coco_crop_set(scenes.train_annotation_file, scenes.train_image_dir),
    text_embeddings,
    crop_size=params['crop_size'],
    widths=params['widths'],
    steps=params['steps'],
    batch_size=params['batch_size'],
    learning_rate=params['learning_rate'],
    seed=params['seed'],
  )
  result.model.save(os.path.join(directory, IMAGE_ENCODER_FILE))
  accuracy = contrastive.zero_shot_accuracy(
    image_encoder.load_image_encoder(result.model),
    contrastive.load_coco_crop_set(scenes.validation_annotation_file, scenes.validation_image_dir),
    text_embeddings,
  )
  logging.info(
    'ViLD demo image teacher: %.1f%% zero-shot accuracy on the validation crops (%d steps in '
    '%.0f s)',
    100 * accuracy,
    params['steps'],
    result.seconds,
  )
  return {
    'zero_shot_accuracy': accuracy,
    'embedding_dim': int(text_embeddings.shape[1]),
    'logit_scale': result.logit_scale,
    'losses': result.losses,
    'train_seconds': round(result.seconds, 1),
  }


def build_vild_digit_scenes(
  cache_dir: str | None = None,
  num_train: int = 2000,
  num_validation: int = 300,
  image_size: int = 128,
  digit_size_range_px: Sequence[int] = (20, 64),
  teacher_steps: int = 1000,
  teacher_crop_size: int = image_encoder.DEFAULT_CROP_SIZE,
  num_proposals: int = 20,
  seed: int = 0,
) -> VildDigitScenesInfo:
  """Generates the ViLD demo data once into `cache_dir` (reused afterwards); see the module doc.

  The scene settings go to `digit_scenes.build_digit_scenes` (its other settings keep their
  defaults); the teacher trains `teacher_steps` steps on `teacher_crop_size` crops; each train
  image gets `num_proposals` proposals (jittered groundtruth boxes, then random boxes).
  """
  root = cache_dir or cache.default_cache_root()
  scenes = digit_scenes.build_digit_scenes(
    root,
    num_train=num_train,
    num_validation=num_validation,
    image_size=image_size,
    digit_size_range_px=digit_size_range_px,
    seed=seed,
  )
  teacher_params = {
    'version': VERSION,
    'digit_scenes': os.path.basename(scenes.directory),
    'text_encoder': text_encoder.MINILM,
    'templates': 'vild',
    'crop_size': teacher_crop_size,
    'widths': list(TEACHER_WIDTHS),
    'steps': teacher_steps,
    'batch_size': TEACHER_BATCH_SIZE,
    'learning_rate': TEACHER_LEARNING_RATE,
    'seed': seed,
  }
  teacher_dir, teacher = cache.build_once(
    root,
    f'vild_teacher_v{VERSION}_{cache.params_digest(teacher_params)}',
    teacher_params,
    lambda staging: _train_teacher(staging, scenes, teacher_params),
  )
  encoder_path = os.path.join(teacher_dir, IMAGE_ENCODER_FILE)
  roi_params = {
    'version': VERSION,
    'teacher': os.path.basename(teacher_dir),
    'proposals': precompute.JITTERED_GROUNDTRUTH,
    'num_proposals': num_proposals,
    'seed': seed,
  }

  def write_rois(staging: str) -> dict:
    summary = precompute.precompute_rois(
      scenes.train_pattern,
      os.path.join(staging, 'train'),
      encoder_path,
      num_proposals=num_proposals,
      seed=seed,
    )
    first_shard = os.path.relpath(summary.shard_paths[0], staging)
    return {
      'images': summary.written,
      'seconds': summary.seconds,
      'train_pattern': re.sub(r'-\d{5}-of-', '-*-of-', first_shard),
    }

  roi_dir, rois = cache.build_once(
    root, f'vild_digit_scenes_v{VERSION}_{cache.params_digest(roi_params)}', roi_params, write_rois
  )
  return VildDigitScenesInfo(
    train_pattern=os.path.join(roi_dir, rois['train_pattern']),
    validation_pattern=scenes.validation_pattern,
    train_annotation_file=scenes.train_annotation_file,
    validation_annotation_file=scenes.validation_annotation_file,
    category_names=scenes.class_names,
    text_embeddings_file=os.path.join(teacher_dir, TEXT_EMBEDDINGS_FILE),
    image_encoder_file=encoder_path,
    teacher_zero_shot_accuracy=teacher['zero_shot_accuracy'],
    num_proposals=num_proposals,
    embedding_dim=teacher['embedding_dim'],
    directory=roi_dir,
  )


builtin.register_builtin_dataset(DATASET_NAME, build_vild_digit_scenes)


def main(argv: Sequence[str] | None = None) -> None:
  # Flags left out fall back to `build_vild_digit_scenes`'s own defaults.
  parser = argparse.ArgumentParser(description=__doc__, argument_default=argparse.SUPPRESS)
  parser.add_argument(
    '--cache_dir', help='cache root; default $PROJECTS_DATA_DIR, else ~/.cache/projects_demo'
  )
  for name in (
    'num_train',
    'num_validation',
    'image_size',
    'teacher_steps',
    'teacher_crop_size',
    'num_proposals',
    'seed',
  ):
    parser.add_argument(f'--{name}', type=int)
  parser.add_argument('--digit_size_range_px', type=int, nargs=2, metavar=('SMALLEST', 'LARGEST'))
  info = build_vild_digit_scenes(**vars(parser.parse_args(argv)))
  print(json.dumps(dataclasses.asdict(info), indent=2))


if __name__ == '__main__':
  main()
