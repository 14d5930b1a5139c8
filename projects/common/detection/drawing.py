"""Draws detections (boxes, translucent masks, class names, scores) onto RGB images with Pillow."""

import colorsys
import io
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw, ImageFont
from pycocotools import mask as mask_api

MASK_ALPHA = 0.45


def category_color(category_id: int) -> tuple[int, int, int]:
  """A saturated colour per category, the same in every image; neighbouring ids differ in hue."""
  # Golden-ratio hue steps keep consecutive ids far apart on the colour wheel.
  hue = (category_id * 0.618033988749895) % 1.0
  red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
  return round(red * 255), round(green * 255), round(blue * 255)


def as_rgb(image: np.ndarray) -> np.ndarray:
  """`image` as a uint8 [height, width, 3] array (grey and RGBA images converted)."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise ValueError(f'image must be uint8, got {image.dtype}')
  if image.ndim == 2:
    image = image[..., None]
  if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
    raise ValueError(f'image must be [height, width, 1|3|4], got shape {list(image.shape)}')
  if image.shape[-1] == 1:
    return np.repeat(image, 3, axis=-1)
  return image[..., :3]


def _font(image_height: int, image_width: int) -> ImageFont.ImageFont:
  # About 1/30 of the short side: legible on 128 px thumbnails and on 1024 px photos alike.
  return ImageFont.load_default(size=max(9, min(image_height, image_width) // 30))


def _text_color(background: tuple[int, int, int]) -> tuple[int, int, int]:
  """Black on light label backgrounds, white on dark ones (ITU-R BT.601 luma)."""
  red, green, blue = background
  return (0, 0, 0) if 0.299 * red + 0.587 * green + 0.114 * blue >= 128 else (255, 255, 255)


def _mask_boundary(mask: np.ndarray) -> np.ndarray:
  """Pixels of `mask` with a 4-neighbour outside it."""
  padded = np.pad(mask, 1)
  interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
  return mask & ~interior


def draw_detections(
  image: np.ndarray,
  boxes_xywh: np.ndarray,
  category_ids: Sequence[int],
  category_names: Mapping[int, str] | None = None,
  scores: Sequence[float] | None = None,
  masks: np.ndarray | None = None,
) -> np.ndarray:
  """Returns a copy of `image` (uint8 RGB) with the detections drawn on it.

  Args:
    image: uint8 [height, width, 3] (or grey / RGBA, converted).
    boxes_xywh: [N, 4] boxes as COCO writes them: left, top, width, height in pixels.
    category_ids: N class ids; each class keeps one colour across images.
    category_names: id -> name for the labels; an id without a name is shown as the number.
    scores: N scores shown after the name (none for ground truth).
    masks: [N, height, width] instance masks at image size, blended translucently.
  """
  canvas = as_rgb(image).copy()
  boxes_xywh = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
  count = len(boxes_xywh)
  if len(category_ids) != count or (scores is not None and len(scores) != count):
    raise ValueError(
      f'{count} boxes but {len(category_ids)} category ids'
      + ('' if scores is None else f' and {len(scores)} scores')
    )
  colors = [np.array(category_color(int(c)), dtype=np.float32) for c in category_ids]
  if masks is not None:
    masks = np.asarray(masks).astype(bool)
    if masks.shape != (count, *canvas.shape[:2]):
      raise ValueError(
        f'masks must be [{count}, {canvas.shape[0]}, {canvas.shape[1]}] (one per box, at image '
        f'size), got {list(masks.shape)}'
      )
    blended = canvas.astype(np.float32)
    for mask, color in zip(masks, colors, strict=True):
      blended[mask] = (1 - MASK_ALPHA) * blended[mask] + MASK_ALPHA * color
      blended[_mask_boundary(mask)] = color
    canvas = np.round(blended).astype(np.uint8)

  picture = Image.fromarray(canvas)
  draw = ImageDraw.Draw(picture)
  font = _font(*canvas.shape[:2])
  line_width = max(1, min(canvas.shape[:2]) // 200)
  names = category_names or {}
  for index, (left, top, width, height) in enumerate(boxes_xywh):
    color = tuple(int(v) for v in colors[index])
    draw.rectangle([left, top, left + width, top + height], outline=color, width=line_width)
    category_id = int(category_ids[index])
    label = names.get(category_id, str(category_id))
    if scores is not None:
      label = f'{label} {float(scores[index]):.2f}'
    text_left, text_top, text_right, text_bottom = draw.textbbox((0, 0), label, font=font)
    text_width, text_height = text_right - text_left, text_bottom - text_top
    # Above the box when there is room, else just inside its top edge.
    label_top = top - text_height - 2 if top - text_height - 2 >= 0 else top
    draw.rectangle(
      [left, label_top, left + text_width + 3, label_top + text_height + 2], fill=color
    )
    draw.text((left + 1, label_top + 1 - text_top), label, fill=_text_color(color), font=font)
  return np.asarray(picture)


def draw_coco_annotations(
  image: np.ndarray,
  annotations: Sequence[Mapping],
  category_names: Mapping[int, str] | None = None,
  scale: int = 1,
) -> np.ndarray:
  """Draws COCO annotations or results (`bbox`, `category_id`, optional `score`/`segmentation`).

  A `segmentation` may be RLE (as results files and crowd annotations hold it) or polygons.
  `scale` > 1 first enlarges the image (and boxes and masks) that many times, pixels kept
  square, so that labels fit on small images such as the 128 px digit scenes.
  """
  if scale < 1:
    raise ValueError(f'scale must be a whole number >= 1, got {scale}')
  canvas = as_rgb(image)
  height, width = canvas.shape[:2]
  boxes = np.array([a['bbox'] for a in annotations], dtype=np.float64).reshape(-1, 4) * scale
  has_scores = bool(annotations) and all('score' in a for a in annotations)
  masks = None
  if annotations and all('segmentation' in a for a in annotations):
    masks = np.stack([_decode_segmentation(a['segmentation'], height, width) for a in annotations])
    masks = _enlarge(masks, scale, axes=(1, 2))
  canvas = _enlarge(canvas, scale, axes=(0, 1))
  return draw_detections(
    canvas,
    boxes,
    [a['category_id'] for a in annotations],
    category_names,
    scores=[a['score'] for a in annotations] if has_scores else None,
    masks=masks,
  )


def _enlarge(array: np.ndarray, scale: int, axes: tuple[int, int]) -> np.ndarray:
  """`array` with each pixel repeated `scale` times along both image `axes`."""
  for axis in axes:
    array = np.repeat(array, scale, axis=axis)
  return array


def _decode_segmentation(segmentation, height: int, width: int) -> np.ndarray:
  if isinstance(segmentation, list):  # Polygons.
    rles = mask_api.frPyObjects(segmentation, height, width)
    return mask_api.decode(mask_api.merge(rles)).astype(bool)
  rle = dict(segmentation)
  if list(rle['size']) != [height, width]:
    raise ValueError(f'segmentation of size {rle["size"]} on an image of {[height, width]}')
  if isinstance(rle['counts'], list):  # Uncompressed RLE.
    rle = mask_api.frPyObjects(rle, height, width)
  elif isinstance(rle['counts'], str):
    rle['counts'] = rle['counts'].encode('ascii')
  return mask_api.decode(rle).astype(bool)


def write_png(path: str, image: np.ndarray) -> None:
  """Writes a uint8 RGB image as PNG (any path tf.io.gfile opens, e.g. gs://)."""
  buffer = io.BytesIO()
  Image.fromarray(as_rgb(image)).save(buffer, format='PNG')
  with tf.io.gfile.GFile(path, 'wb') as f:
    f.write(buffer.getvalue())
