"""Tiny COCO- and LVIS-style datasets (a few small JPEGs and their JSON) for converter tests.

Masks come in every form COCO uses: polygons, uncompressed RLE (crowd) and compressed RLE.
"""

import json
import os

import numpy as np
import tensorflow as tf

from projects.common.detection import coco_conversion

IMAGE_HEIGHT = 30
IMAGE_WIDTH = 40
CATEGORIES = [
  {'id': 1, 'name': 'digit', 'supercategory': 'thing'},
  {'id': 3, 'name': 'letter', 'supercategory': 'thing'},
]


def write_jpeg(path: str, height: int = IMAGE_HEIGHT, width: int = IMAGE_WIDTH, seed: int = 0):
  """A smooth colour gradient (small, and it decodes the same everywhere)."""
  ys, xs = np.mgrid[0:height, 0:width]
  image = np.stack([xs * 255 // width, ys * 255 // height, np.full_like(xs, 40 * seed)], axis=-1)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(tf.io.encode_jpeg(image.astype(np.uint8)).numpy())


def block_mask(top: int, left: int, bottom: int, right: int) -> np.ndarray:
  """A [IMAGE_HEIGHT, IMAGE_WIDTH] 0/1 mask with rows top..bottom-1, columns left..right-1 set."""
  mask = np.zeros((IMAGE_HEIGHT, IMAGE_WIDTH), np.uint8)
  mask[top:bottom, left:right] = 1
  return mask


def uncompressed_rle(mask: np.ndarray) -> dict:
  """COCO's list form of RLE: run lengths of 0s and 1s in column-major order, 0s first."""
  flat = mask.flatten(order='F')
  changes = np.flatnonzero(np.diff(flat)) + 1
  runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
  if flat[0]:
    runs = [0, *runs]
  return {'size': list(mask.shape), 'counts': runs}


def coco_dict() -> dict:
  """Three images: polygons + a crowd RLE, a compressed RLE + a polygon, and no annotations."""
  images = [
    {'id': 11, 'file_name': 'a.jpg', 'height': IMAGE_HEIGHT, 'width': IMAGE_WIDTH},
    {'id': 12, 'file_name': 'b.jpg', 'height': IMAGE_HEIGHT, 'width': IMAGE_WIDTH},
    {'id': 13, 'file_name': 'c.jpg', 'height': IMAGE_HEIGHT, 'width': IMAGE_WIDTH},
  ]
  annotations = [
    _annotation(101, 11, 1, [2, 3, 10, 8], [[2, 3, 12, 3, 12, 11, 2, 11]]),
    # Two polygons for one instance, as COCO has for occluded objects.
    _annotation(
      102, 11, 3, [20, 5, 15, 20], [[20, 5, 26, 5, 26, 12], [28, 14, 35, 14, 35, 25, 28, 25]]
    ),
    _annotation(103, 11, 1, [0, 20, 8, 10], uncompressed_rle(block_mask(20, 0, 30, 8)), crowd=1),
    _annotation(
      104, 12, 3, [5, 5, 20, 10], coco_conversion.compressed_rle(block_mask(5, 5, 15, 25))
    ),
    _annotation(105, 12, 1, [30.5, 0.5, 9.5, 29.5], [[30.5, 0.5, 40, 0.5, 40, 30, 30.5, 30]]),
  ]
  return {'images': images, 'annotations': annotations, 'categories': CATEGORIES}


def lvis_dict() -> dict:
  """coco_dict() as LVIS has it: coco_url instead of file_name, federated image lists,
  category frequencies, no iscrowd (so no crowd annotation)."""
  coco = coco_dict()
  images = []
  for image in coco['images']:
    lvis_image = {k: v for k, v in image.items() if k != 'file_name'}
    lvis_image['coco_url'] = f'http://images.cocodataset.org/train2017/{image["file_name"]}'
    lvis_image['neg_category_ids'] = [3] if image['id'] == 13 else []
    lvis_image['not_exhaustive_category_ids'] = [1] if image['id'] == 12 else []
    images.append(lvis_image)
  annotations = [
    {k: v for k, v in a.items() if k != 'iscrowd'} for a in coco['annotations'] if not a['iscrowd']
  ]
  categories = [
    {**c, 'synset': f'{c["name"]}.n.01', 'frequency': f}
    for c, f in zip(CATEGORIES, ['f', 'r'], strict=True)
  ]
  return {'images': images, 'annotations': annotations, 'categories': categories}


def _annotation(annotation_id, image_id, category_id, box, segmentation, crowd=0) -> dict:
  return {
    'id': annotation_id,
    'image_id': image_id,
    'category_id': category_id,
    'bbox': box,
    'area': float(box[2] * box[3]),
    'segmentation': segmentation,
    'iscrowd': crowd,
  }


def write_dataset(root: str, annotations: dict, image_subdir: str = '') -> tuple[str, str]:
  """Writes the JSON and an IMAGE_HEIGHT x IMAGE_WIDTH JPEG for each image it names (whatever
  size the JSON says); returns (image_dir, json_path)."""
  image_dir = os.path.join(root, 'images')
  for seed, image in enumerate(annotations['images']):
    name = image.get('file_name') or image['coco_url'].rsplit('/', 1)[-1]
    write_jpeg(os.path.join(image_dir, image_subdir, name), seed=seed)
  json_path = os.path.join(root, 'instances.json')
  with open(json_path, 'w') as f:
    json.dump(annotations, f)
  return image_dir, json_path
