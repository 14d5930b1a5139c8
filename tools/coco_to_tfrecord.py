r"""Converts COCO or LVIS instance annotations and their images into sharded detection TFRecords.

Usage (from the repo root; `python -m tools.coco_to_tfrecord` works the same):
  python tools/coco_to_tfrecord.py --image_dir=coco/val2017 \
    --object_annotations_file=coco/annotations/instances_val2017.json \
    --output_dir=/data/coco/val --include_masks

Flags are named as in Model Garden's official/vision/data/create_coco_tf_record.py. The records
are Model Garden's detection tf.Examples (what its RetinaNet and Mask R-CNN decoders read; layout
in projects/common/detection/coco_conversion.py). LVIS JSON works the same: images without
`file_name` are found as `<image_dir>/<split>/<name>` from their coco_url, or `<image_dir>/<name>`.

Output in `--output_dir`: `<annotations file stem>-0000i-of-0000N.tfrecord` shards,
`label_map.json` ({category id: name}), `categories.json` (category records, with LVIS
`frequency`), `errors.csv` (`input,kind,reason`: every image not written, and every annotation
left out of a written image, with the reason) and `summary.json` (counts). A rerun keeps the
shards whose images, annotations and settings are unchanged. Exit code 1 when any image was not
written (unless --allow_failures; dropped annotations alone exit 0), 2 for bad arguments or an
unusable annotation file or image folder.
"""

import argparse
import os
import sys
from collections.abc import Sequence

if __package__ in (None, ''):
  # Run as a script: make the repo root importable, as `python -m` would.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Each worker process imports TensorFlow; its start-up banner would repeat once per worker.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from projects.common import sharded_conversion
from projects.common.detection import coco_conversion


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    description=__doc__.split('\n', 1)[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--image_dir', required=True, help='folder holding the images')
  parser.add_argument(
    '--object_annotations_file', required=True, help='COCO or LVIS instances JSON'
  )
  parser.add_argument('--output_dir', required=True, help='folder for shards and reports')
  parser.add_argument(
    '--num_shards',
    type=int,
    help='default: one per 1000 images, at least 8 (at most one per image)',
  )
  parser.add_argument(
    '--include_masks', action='store_true', help='write instance masks (PNG, one per object)'
  )
  parser.add_argument(
    '--num_workers',
    '--num_processes',
    type=int,
    default=os.cpu_count(),
    help='processes (default: CPU count; 0 converts in this process)',
  )
  parser.add_argument(
    '--allow_failures', action='store_true', help='exit 0 even when some images were not written'
  )
  args = parser.parse_args(argv)
  if args.num_shards is not None and args.num_shards < 1:
    parser.error(f'--num_shards must be at least 1, got {args.num_shards}')
  if args.num_workers < 0:
    parser.error(f'--num_workers must be 0 or more, got {args.num_workers}')
  return args


def _print_summary(summary: sharded_conversion.ConversionSummary, output_dir: str) -> None:
  print(
    f'{summary.inputs} images: {summary.written} written, '
    f'{summary.not_written} not written, {summary.dropped} '
    f'annotations dropped; {len(summary.shard_paths)} shards ({summary.shards_reused} reused '
    f'from an earlier run) in {summary.seconds} s'
  )
  for (kind, reason), count in sorted(summary.counts_by_reason().items()):
    print(f'  {kind}, {reason}: {count}')
  print(
    f'wrote {coco_conversion.LABEL_MAP_FILE}, {coco_conversion.CATEGORIES_FILE}, '
    f'{sharded_conversion.ERRORS_FILE} and {sharded_conversion.SUMMARY_FILE} in {output_dir}'
  )


def main(argv: Sequence[str] | None = None) -> int:
  args = _parse_args(argv)
  try:
    summary = coco_conversion.convert_coco(
      args.image_dir,
      args.object_annotations_file,
      args.output_dir,
      num_shards=args.num_shards,
      include_masks=args.include_masks,
      num_workers=args.num_workers,
      allow_failures=args.allow_failures,
    )
  except coco_conversion.InputError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except sharded_conversion.ConversionFailed as e:
    _print_summary(e.summary, args.output_dir)
    print(f'error: {e}', file=sys.stderr)
    return 1
  _print_summary(summary, args.output_dir)
  return 0


if __name__ == '__main__':
  sys.exit(main())
