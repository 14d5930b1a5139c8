"""Tests for tools/vertex_submit.py: dry-run requests against golden files, and flag errors.

After an intended change of the request, rewrite a golden file with
`UPDATE_GOLDEN=1 python -m pytest tools/vertex_submit_test.py`.
"""

import json
import os

import pytest

from tools import vertex_submit

TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'testdata')
# Absolute, so the test runs from any folder; the job names it relative to the repo.
CVRL_YAML = os.path.join(vertex_submit.REPO_ROOT, 'experiments', 'cvrl', 'k600_r3d50_200ep.yaml')

GPU_JOB_FLAGS = [
  '--experiment=cvrl_kinetics600',
  f'--config_file={CVRL_YAML}',
  '--params_override=task.train_data.global_batch_size=1024',
  '--image_uri=us-docker.pkg.dev/my-project/trainers/projects:latest',
  '--machine_type=a2-highgpu-8g',
  '--accelerator_type=NVIDIA_TESLA_A100',
  '--accelerator_count=8',
  '--replica_count=3',
  '--evaluator',
  '--project=my-project',
  '--region=europe-west4',
  '--staging_bucket=gs://my-bucket/jobs',
  '--display_name=cvrl-k600-r3d50',
  '--dry_run',
]
TPU_JOB_FLAGS = [
  '--experiment=resnet3d_rs50_kinetics400',
  '--image_uri=us-docker.pkg.dev/my-project/trainers/projects:latest',
  '--machine_type=ct5lp-hightpu-4t',
  '--accelerator_type=TPU_V5_LITEPOD',
  '--accelerator_count=4',
  '--tpu_topology=2x2',
  '--staging_bucket=gs://my-bucket/jobs/',
  '--display_name=rs50-k400',
  '--dry_run',
]


@pytest.mark.parametrize(
  'flags, golden',
  [(GPU_JOB_FLAGS, 'vertex_gpu_job.json'), (TPU_JOB_FLAGS, 'vertex_tpu_job.json')],
)
def test_dry_run_prints_the_golden_request(flags, golden, capsys):
  assert vertex_submit.main(flags) == 0
  printed = json.loads(capsys.readouterr().out)
  path = os.path.join(TESTDATA, golden)
  if os.environ.get('UPDATE_GOLDEN'):
    with open(path, 'w') as f:
      f.write(json.dumps(printed, indent=2, sort_keys=True) + '\n')
  with open(path) as f:
    assert printed == json.load(f)


def test_gpu_job_pools_and_strategies(capsys):
  vertex_submit.main(GPU_JOB_FLAGS)
  pools = json.loads(capsys.readouterr().out)['custom_job']['jobSpec']['workerPoolSpecs']
  assert [pool.get('replicaCount') for pool in pools] == ['1', '2', None, '1']
  chief_flags, evaluator_flags = (
    pools[0]['containerSpec']['args'],
    pools[3]['containerSpec']['args'],
  )
  assert '--mode=train' in chief_flags and '--mode=continuous_eval' in evaluator_flags
  assert '--model_dir=gs://my-bucket/jobs/cvrl-k600-r3d50/model' in chief_flags
  override = json.loads(
    next(f for f in chief_flags if f.startswith('--params_override=')).split('=', 1)[1]
  )
  assert override['runtime']['distribution_strategy'] == 'multi_worker_mirrored'
  assert override['task']['train_data']['global_batch_size'] == 1024


def test_user_runtime_override_wins(capsys):
  flags = [*TPU_JOB_FLAGS, '--params_override=runtime.mixed_precision_dtype=float32']
  assert vertex_submit.main(flags) == 0
  args = json.loads(capsys.readouterr().out)['custom_job']['jobSpec']['workerPoolSpecs'][0]
  override = json.loads(args['containerSpec']['args'][1].split('=', 1)[1])
  assert override['runtime'] == {
    'distribution_strategy': 'tpu',
    'mixed_precision_dtype': 'float32',
    'tpu': 'local',
  }


@pytest.mark.parametrize(
  'extra, message',
  [
    (['--replica_count=2'], 'use --replica_count=1'),
    (['--config_file=/tmp/mine.yaml'], "'/tmp/mine.yaml' is outside the repo"),
    (['--params_override=task.no_such_key=1'], "unknown config key 'task.no_such_key'"),
  ],
)
def test_bad_flags_are_named(extra, message, capsys):
  assert vertex_submit.main([*TPU_JOB_FLAGS, *extra]) == 2
  assert message in capsys.readouterr().err


def test_unknown_experiment_is_named(capsys):
  flags = [f for f in TPU_JOB_FLAGS if not f.startswith('--experiment')]
  assert vertex_submit.main([*flags, '--experiment=cvrl_kinetic600']) == 2
  assert "unknown experiment 'cvrl_kinetic600'" in capsys.readouterr().err
