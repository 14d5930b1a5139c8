r"""Submits a registered experiment as a Vertex AI custom training job (or prints the request).

Usage (from the repo root):
  python tools/vertex_submit.py --experiment=cvrl_kinetics600 \
    --config_file=experiments/cvrl/k600_r3d50_200ep.yaml \
    --image_uri=us-docker.pkg.dev/PROJECT/repo/trainer:latest \
    --machine_type=a2-highgpu-8g --accelerator_type=NVIDIA_TESLA_A100 --accelerator_count=8 \
    --replica_count=2 --evaluator --project=PROJECT --region=us-central1 \
    --staging_bucket=gs://BUCKET/jobs [--dry_run]

The image (built by the repo's Dockerfile) runs `train.py`. Each worker pool gets the training
flags, a `--model_dir` under the job's output directory (`<staging_bucket>/<display_name>/model`,
Vertex AI's `AIP_MODEL_DIR`), and a `--params_override` that sets the distribution strategy for
the machines asked for (`multi_worker_mirrored` over several replicas, `mirrored` over one
machine's GPUs, `tpu` on a TPU VM); the user's own `--params_override` is applied on top of it.
With `--evaluator`, a fourth pool runs `--mode=continuous_eval` beside the trainers. The
experiment and overrides are resolved here first, so a typo fails before anything is submitted.
`--dry_run` prints the CreateCustomJob request as JSON and needs no credentials or network.
"""

import argparse
import datetime
import json
import os
import sys
from collections.abc import Sequence

if __package__ in (None, ''):
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Vertex AI's pool order is fixed: chief, workers, parameter servers, evaluator; a skipped pool
# is an empty spec.
CHIEF, WORKERS, PARAMETER_SERVERS, EVALUATOR = range(4)


class SubmitError(ValueError):
  """The job cannot be built from these flags."""


def runtime_override(args: argparse.Namespace, evaluator: bool = False) -> dict:
  """The `runtime` settings that match the machines of one worker pool."""
  if args.accelerator_type.startswith('TPU'):
    # A Vertex AI TPU VM sees its TPU as 'local'; Model Garden trains TPUs in bfloat16.
    return {'distribution_strategy': 'tpu', 'tpu': 'local', 'mixed_precision_dtype': 'bfloat16'}
  num_gpus = args.accelerator_count if args.accelerator_type else 0
  if args.replica_count > 1 and not evaluator:
    return {'distribution_strategy': 'multi_worker_mirrored', 'num_gpus': num_gpus}
  if num_gpus:
    return {'distribution_strategy': 'mirrored', 'num_gpus': num_gpus}
  return {'distribution_strategy': 'one_device', 'num_gpus': 0}


def _merged(base: dict, override: dict) -> dict:
  merged = dict(base)
  for key, value in override.items():
    if isinstance(value, dict) and isinstance(merged.get(key), dict):
      merged[key] = _merged(merged[key], value)
    else:
      merged[key] = value
  return merged


def _repo_relative(path: str) -> str:
  absolute = os.path.abspath(path)
  relative = os.path.relpath(absolute, REPO_ROOT)
  if relative.startswith('..'):
    raise SubmitError(
      f'--config_file {path!r} is outside the repo, so it is not in the training image; '
      'put it under experiments/ and rebuild the image'
    )
  return relative


def job_output_dir(args: argparse.Namespace) -> str:
  """The job's base output directory; Vertex AI sets `AIP_MODEL_DIR` to its `model/` folder."""
  return f'{args.staging_bucket.rstrip("/")}/{args.display_name}'


def train_flags(args: argparse.Namespace, user_override: dict, evaluator: bool) -> list[str]:
  """`train.py` flags of one worker pool."""
  override = _merged({'runtime': runtime_override(args, evaluator)}, user_override)
  flags = [f'--experiment={args.experiment}']
  flags += [f'--config_file={_repo_relative(path)}' for path in args.config_file]
  flags += [
    f'--params_override={json.dumps(override, sort_keys=True)}',
    f'--mode={"continuous_eval" if evaluator else args.mode}',
    f'--model_dir={job_output_dir(args)}/model',
  ]
  return flags


def worker_pool_specs(args: argparse.Namespace, user_override: dict) -> list[dict]:
  """Vertex AI worker pool specs: chief, workers (replica_count - 1), and an optional evaluator."""
  machine_spec = {'machine_type': args.machine_type}
  if args.accelerator_type:
    machine_spec['accelerator_type'] = args.accelerator_type
    machine_spec['accelerator_count'] = args.accelerator_count
  if args.tpu_topology:
    machine_spec['tpu_topology'] = args.tpu_topology

  def pool(replicas: int, evaluator: bool = False) -> dict:
    return {
      'machine_spec': machine_spec,
      'replica_count': replicas,
      'container_spec': {
        'image_uri': args.image_uri,
        'args': train_flags(args, user_override, evaluator),
      },
      'disk_spec': {'boot_disk_type': 'pd-ssd', 'boot_disk_size_gb': args.boot_disk_size_gb},
    }

  pools = [pool(1)]
  if args.replica_count > 1:
    pools.append(pool(args.replica_count - 1))
  if args.evaluator:
    pools += [{}] * (EVALUATOR - len(pools))
    pools.append(pool(1, evaluator=True))
  return pools


def check_flags(args: argparse.Namespace) -> None:
  if args.replica_count < 1:
    raise SubmitError(f'--replica_count={args.replica_count}; it counts the chief, so it is >= 1')
  if args.accelerator_type and args.accelerator_count < 1:
    raise SubmitError(f'--accelerator_type={args.accelerator_type} needs --accelerator_count >= 1')
  is_tpu = args.accelerator_type.startswith('TPU')
  if args.tpu_topology and not is_tpu:
    raise SubmitError('--tpu_topology is for TPU accelerators (--accelerator_type=TPU_...)')
  if is_tpu and args.replica_count != 1:
    raise SubmitError(
      f'--replica_count={args.replica_count} with a TPU: one TPU VM (or a slice given by '
      '--tpu_topology) runs the whole job; use --replica_count=1'
    )
  if not args.staging_bucket.startswith('gs://'):
    raise SubmitError(f'--staging_bucket={args.staging_bucket!r} must be a gs:// path')
  for path in args.config_file:
    _repo_relative(path)
  if not args.dry_run and not args.project:
    raise SubmitError('--project is required to submit (or pass --dry_run)')


def resolve_user_override(args: argparse.Namespace) -> dict:
  """Resolves the experiment as the job will (a typo fails here) and returns the user's override."""
  from projects import registry_imports  # noqa: F401  (registers every experiment)
  from projects.common import experiment_config

  experiment_config.build_experiment_config(
    args.experiment, args.config_file, args.params_override, None
  )
  if not args.params_override:
    return {}
  return experiment_config.load_override(args.params_override, '--params_override')


def create_request(args: argparse.Namespace, user_override: dict) -> dict:
  """The CreateCustomJob request, checked against Vertex AI's own message types."""
  from google.cloud import aiplatform_v1

  job = {
    'display_name': args.display_name,
    'job_spec': {
      'worker_pool_specs': worker_pool_specs(args, user_override),
      'base_output_directory': {'output_uri_prefix': job_output_dir(args)},
    },
  }
  # Building the message rejects a misspelt field or an unknown accelerator before submitting.
  try:
    message = aiplatform_v1.CustomJob(job)
  except (ValueError, TypeError, KeyError) as e:
    raise SubmitError(f'not a valid Vertex AI CustomJob: {e}') from None
  return {
    'parent': f'projects/{args.project or "PROJECT"}/locations/{args.region}',
    'custom_job': json.loads(
      aiplatform_v1.CustomJob.to_json(
        message, use_integers_for_enums=False, always_print_fields_with_no_presence=False
      )
    ),
  }


def submit(args: argparse.Namespace, user_override: dict) -> str:
  from google.cloud import aiplatform

  aiplatform.init(project=args.project, location=args.region, staging_bucket=args.staging_bucket)
  job = aiplatform.CustomJob(
    display_name=args.display_name,
    worker_pool_specs=worker_pool_specs(args, user_override),
    base_output_dir=job_output_dir(args),
  )
  job.submit()
  return job.resource_name


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--experiment', required=True, help='Registered experiment name.')
  parser.add_argument('--config_file', action='append', default=[], help='YAML in this repo.')
  parser.add_argument('--params_override', default='', help='As train.py; applied last.')
  parser.add_argument(
    '--mode',
    default='',
    help="train.py's --mode for the trainers. Default: train with --evaluator, else train_and_eval.",
  )
  parser.add_argument('--image_uri', required=True, help='Training image built from Dockerfile.')
  parser.add_argument('--machine_type', default='n1-standard-8')
  parser.add_argument('--accelerator_type', default='', help='e.g. NVIDIA_TESLA_V100, TPU_V3.')
  parser.add_argument('--accelerator_count', type=int, default=0)
  parser.add_argument('--replica_count', type=int, default=1, help='Machines, chief included.')
  parser.add_argument('--tpu_topology', default='', help='e.g. 2x2 for a TPU slice.')
  parser.add_argument(
    '--evaluator', action='store_true', help='Add an evaluator pool running continuous_eval.'
  )
  parser.add_argument('--boot_disk_size_gb', type=int, default=100)
  parser.add_argument('--project', default='')
  parser.add_argument('--region', default='us-central1')
  parser.add_argument('--staging_bucket', required=True, help='gs:// folder for job outputs.')
  parser.add_argument('--display_name', default='', help='Default: EXPERIMENT-YYYYmmdd-HHMMSS.')
  parser.add_argument('--dry_run', action='store_true', help='Print the request; submit nothing.')
  args = parser.parse_args(argv)
  args.mode = args.mode or ('train' if args.evaluator else 'train_and_eval')
  if not args.display_name:
    stamp = datetime.datetime.now(datetime.UTC).strftime('%Y%m%d-%H%M%S')
    args.display_name = f'{args.experiment.replace("_", "-")}-{stamp}'
  return args


def main(argv: Sequence[str] | None = None) -> int:
  args = _parse_args(argv)
  try:
    check_flags(args)
    user_override = resolve_user_override(args)
    request = create_request(args, user_override)
  except (SubmitError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  if args.dry_run:
    print(json.dumps(request, indent=2, sort_keys=True))
    return 0
  print(f'submitted {submit(args, user_override)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
