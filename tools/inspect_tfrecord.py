r"""Summarizes video TFRecords (record count, labels, frames per clip) and draws a contact sheet.

Usage (from the repo root; `python -m tools.inspect_tfrecord` works the same):
  python tools/inspect_tfrecord.py --input_path='/data/k400/train/train-*' \
    --contact_sheet=/tmp/train.png --num_clips=4
"""

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence

if __package__ in (None, ''):
  # Run as a script: make the repo root importable, as `python -m` would.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

from projects.common import tfrecords


def _clip_stats(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
  example = tfrecords.parse_video_example(serialized)
  frames = example[tfrecords.IMAGE_KEY]
  return {
    'labels': example[tfrecords.LABEL_INDEX_KEY],
    'texts': example[tfrecords.LABEL_TEXT_KEY],
    'num_frames': tf.shape(frames)[0],
    # Reads the size from the JPEG header without decoding the frame.
    'frame_shape': tf.image.extract_jpeg_shape(frames[0]),
  }


def inspect(paths: Sequence[str], num_clips: int) -> tuple[dict, list[tf.Tensor]]:
  """Statistics over all records, and up to `num_clips` serialized records to draw.

  The clips drawn are the first of each label seen, topped up with other clips, so that a sheet
  shows as many classes as it has rows.
  """
  label_counts, label_texts, frame_counts, frame_shapes = Counter(), {}, [], Counter()
  first_of_label, others = [], []
  dataset = tf.data.TFRecordDataset(paths).map(
    lambda serialized: (serialized, _clip_stats(serialized)),
    num_parallel_calls=tf.data.AUTOTUNE,
  )
  for serialized, clip in dataset:
    labels = clip['labels'].numpy().tolist()
    texts = [t.decode('utf-8') for t in clip['texts'].numpy()]
    label_texts.update(zip(labels, texts, strict=False))
    is_new_label = any(label not in label_counts for label in labels)
    label_counts.update(labels)
    frame_counts.append(int(clip['num_frames']))
    frame_shapes[tuple(clip['frame_shape'].numpy()[:2].tolist())] += 1
    if is_new_label and len(first_of_label) < num_clips:
      first_of_label.append(serialized)
    elif len(others) < num_clips:
      others.append(serialized)
  stats = {
    'num_records': len(frame_counts),
    'label_counts': dict(sorted(label_counts.items())),
    'label_texts': label_texts,
    'frame_counts': frame_counts,
    'frame_shapes': dict(frame_shapes.most_common()),
  }
  return stats, (first_of_label + others)[:num_clips]


def format_stats(stats: dict, paths: Sequence[str]) -> str:
  lines = [f'files: {len(paths)}', f'records: {stats["num_records"]}']
  if stats['num_records']:
    lines.append(f'labels: {len(stats["label_counts"])}  (index  count  text)')
    for label, count in stats['label_counts'].items():
      lines.append(f'  {label:5d}  {count:5d}  {stats["label_texts"].get(label, "")}')
    counts = stats['frame_counts']
    lines.append(
      f'frames per clip: min {min(counts)}, mean {np.mean(counts):.1f}, max {max(counts)}'
    )
    shapes = ', '.join(f'{h}x{w} ({n} clips)' for (h, w), n in stats['frame_shapes'].items())
    lines.append(f'frame size (height x width, first frame): {shapes}')
  return '\n'.join(lines)


def draw_contact_sheet(records: Sequence[tf.Tensor], path: str, num_frames: int = 8) -> None:
  """Writes a PNG with one row per clip and `num_frames` evenly spaced frames per row."""
  clips = [tfrecords.parse_video_example(r) for r in records]
  figure = Figure(figsize=(1.6 * num_frames, 1.5 * len(clips)), layout='constrained')
  axes = figure.subplots(len(clips), num_frames, squeeze=False)
  for row, clip in zip(axes, clips, strict=True):
    frames = clip[tfrecords.IMAGE_KEY]
    picks = np.linspace(0, len(frames) - 1, num_frames).round().astype(int)
    texts = [t.decode('utf-8') for t in clip[tfrecords.LABEL_TEXT_KEY].numpy()]
    labels = clip[tfrecords.LABEL_INDEX_KEY].numpy().tolist()
    names = [f'{text} ({label})' for label, text in zip(labels, texts, strict=False)]
    title = ', '.join(names or map(str, labels))
    video_id = clip[tfrecords.VIDEO_ID_KEY].numpy().decode('utf-8')
    row[0].set_title(f'{title}   {video_id}', loc='left', fontsize=9)
    for ax, index in zip(row, picks, strict=True):
      ax.imshow(tf.io.decode_jpeg(frames[index], channels=3).numpy())
      ax.set_xlabel(f'frame {index}', fontsize=7)
      ax.set_xticks([])
      ax.set_yticks([])
  figure.savefig(path, dpi=100)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('--input_path', required=True, help='TFRecord file or glob, e.g. out/train-*')
  parser.add_argument('--contact_sheet', help='write a PNG of a few clips here')
  parser.add_argument('--num_clips', type=int, default=4, help='rows of the contact sheet')
  parser.add_argument('--num_frames', type=int, default=8, help='frames per contact sheet row')
  args = parser.parse_args(argv)
  paths = sorted(tf.io.gfile.glob(args.input_path))
  if not paths:
    print(f'error: no file matches --input_path {args.input_path!r}', file=sys.stderr)
    return 2
  stats, clips = inspect(paths, args.num_clips)
  print(format_stats(stats, paths))
  if args.contact_sheet and clips:
    draw_contact_sheet(clips, args.contact_sheet, args.num_frames)
    print(f'contact sheet: {args.contact_sheet} ({len(clips)} clips x {args.num_frames} frames)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
