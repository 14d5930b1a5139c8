r"""Adds ViLD's proposals and image-teacher embeddings to detection TFRecords (the step the official
ViLD release left out).

Usage (from the repo root; `python -m tools.vild_precompute` works the same):
  python tools/vild_precompute.py --input_pattern='/data/coco/train/instances_train-*' \
    --output_dir=/data/coco/train_rois --image_encoder=/models/teacher.keras --num_proposals=20
  python tools/vild_precompute.py --input_pattern=... --output_dir=... \
    --image_encoder=/models/clip_image_saved_model --proposals=rpn_proposals.json

The input is Model Garden's detection tf.Examples (what tools/coco_to_tfrecord.py writes). For
each image, M proposals (`--num_proposals`) are cropped at 1x and 1.5x their size; the teacher
embeds both crops, and their mean, renormalised, is the proposal's embedding (ViLD, Sec. 3.3). The
record is written unchanged plus `image/roi/bbox/{ymin,xmin,ymax,xmax}` (normalised) and
`image/roi/feature` (M x D, row by row): M rows, zero-padded when an image has fewer proposals
(padding rows are all 0; ViLD-image's loss ignores them).

`--proposals`:
  jittered_groundtruth  (default) the demo's stand-in for a base-class RPN's proposals: every
                        groundtruth box, class-agnostic (labels are never read), jittered (centre
                        moved by up to 10% of the box size, sides scaled by up to e^±0.2), then
                        random boxes up to M.
  a .json file          proposals of your RPN: {"<image/source_id>": [[ymin, xmin, ymax, xmax],
                        ...]} normalised, best first; the first M usable boxes are kept.
Or, with `--rpn_checkpoint`, the class-agnostic proposals of a trained Mask R-CNN's RPN (ViLD's:
trained on base categories): `--rpn_experiment` (with `--rpn_config_file` /
`--rpn_params_override`, read as train.py reads them) names the model, `--rpn_checkpoint` a
train.py model_dir or checkpoint prefix. Its best M proposals per image are written to
`<output_dir>/rpn_proposals.json` first (one pass, redone on every run), then used as above.

`--image_encoder`: the teacher, a .keras / .h5 file or a SavedModel folder whose serving_default
signature maps float32 crops [N, S, S, 3] (pixel values 0..255) to [N, D] embeddings; S is read
from the model (`--crop_size` only for models taking any size). The matching text classifier comes
from tools/text_embeddings.py with the teacher's text encoder.

Output in `--output_dir`: `<input prefix>_rois-0000i-of-0000N.tfrecord` (N: `--num_shards`, default
the number of input files), `errors.csv` (`input,kind,reason`: every record not written, as
`<input file>:<record index>`, and every given proposal left out) and `summary.json`. A rerun keeps
the shards whose inputs, proposals, encoder and settings are unchanged. Exit code 1 when any image
was not written (unless --allow_failures), 2 for bad arguments or unusable inputs.
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
from projects.vild.teacher import precompute

RPN_PROPOSALS_FILE = 'rpn_proposals.json'


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    description=__doc__.split('\n\n', 1)[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--input_pattern', required=True, help='detection TFRecords (glob[,glob])')
  parser.add_argument('--output_dir', required=True, help='folder for shards and reports')
  parser.add_argument(
    '--image_encoder', required=True, help='the image teacher: .keras / .h5 or SavedModel folder'
  )
  parser.add_argument(
    '--proposals',
    default=precompute.JITTERED_GROUNDTRUTH,
    help=f'{precompute.JITTERED_GROUNDTRUTH} or a proposals .json (see above)',
  )
  parser.add_argument('--num_proposals', type=int, default=20, help='M rows per image')
  parser.add_argument('--rpn_checkpoint', help='train.py model_dir or prefix of a Mask R-CNN')
  parser.add_argument('--rpn_experiment', help='registered experiment of --rpn_checkpoint')
  parser.add_argument(
    '--rpn_config_file', action='append', default=[], help='YAML over --rpn_experiment'
  )
  parser.add_argument('--rpn_params_override', help='a.b=1,c=2 over --rpn_experiment')
  parser.add_argument('--crop_size', type=int, help='only for encoders taking any crop size')
  parser.add_argument('--seed', type=int, default=0, help='of the jittered groundtruth proposals')
  parser.add_argument('--num_shards', type=int, help='default: the number of input files')
  parser.add_argument(
    '--num_workers',
    type=int,
    default=0,
    help='processes, each loading the encoder (default 0: this process)',
  )
  parser.add_argument(
    '--allow_failures', action='store_true', help='exit 0 even when some images were not written'
  )
  args = parser.parse_args(argv)
  for name in ('num_proposals', 'num_shards', 'crop_size'):
    value = getattr(args, name)
    if value is not None and value < 1:
      parser.error(f'--{name} must be at least 1, got {value}')
  if args.num_workers < 0:
    parser.error(f'--num_workers must be 0 or more, got {args.num_workers}')
  if bool(args.rpn_checkpoint) != bool(args.rpn_experiment):
    parser.error('--rpn_checkpoint and --rpn_experiment go together')
  if args.rpn_checkpoint and args.proposals != precompute.JITTERED_GROUNDTRUTH:
    parser.error('give either --proposals or --rpn_checkpoint')
  return args


def _write_rpn_proposals(args: argparse.Namespace) -> str:
  """Runs the RPN over the inputs into `<output_dir>/rpn_proposals.json`; returns its path."""
  # Imported here: registering every experiment takes seconds that other runs need not wait.
  from projects import registry_imports  # noqa: F401
  from projects.common import experiment_config, video_features
  from projects.vild.teacher import rpn_proposals

  try:
    params = experiment_config.build_experiment_config(
      args.rpn_experiment, args.rpn_config_file, args.rpn_params_override
    )
    propose, source = rpn_proposals.rpn_proposer(params, args.rpn_checkpoint)
  except (experiment_config.ExperimentConfigError, video_features.CheckpointError, ValueError) as e:
    raise precompute.InputError(f'RPN of --rpn_experiment={args.rpn_experiment}: {e}') from None
  output_file = os.path.join(args.output_dir, RPN_PROPOSALS_FILE)
  written, skipped = rpn_proposals.write_proposals(
    precompute.input_files(args.input_pattern), propose, output_file, args.num_proposals
  )
  print(
    f'RPN of {source}: proposals for {written} images in {output_file} ({skipped} records '
    'unreadable, listed by the precompute)'
  )
  return output_file


def _print_summary(summary: sharded_conversion.ConversionSummary, output_dir: str) -> None:
  rate = summary.written / summary.seconds if summary.seconds else 0.0
  print(
    f'{summary.inputs} images: {summary.written} written, {summary.not_written} not written, '
    f'{summary.dropped} proposals dropped; {len(summary.shard_paths)} shards '
    f'({summary.shards_reused} reused from an earlier run) in {summary.seconds} s '
    f'({rate:.1f} images/s)'
  )
  for (kind, reason), count in sorted(summary.counts_by_reason().items()):
    print(f'  {kind}, {reason}: {count}')
  print(
    f'wrote {sharded_conversion.ERRORS_FILE} and {sharded_conversion.SUMMARY_FILE} in {output_dir}'
  )


def main(argv: Sequence[str] | None = None) -> int:
  args = _parse_args(argv)
  try:
    proposals = _write_rpn_proposals(args) if args.rpn_checkpoint else args.proposals
    summary = precompute.precompute_rois(
      args.input_pattern,
      args.output_dir,
      args.image_encoder,
      num_proposals=args.num_proposals,
      proposals=proposals,
      crop_size=args.crop_size,
      seed=args.seed,
      num_shards=args.num_shards,
      num_workers=args.num_workers,
      allow_failures=args.allow_failures,
    )
  except precompute.InputError as e:
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
