"""The demos' runtime: bfloat16 exactly where the CPU has native bfloat16."""

import os

import pytest
from official.core import exp_factory

from projects import registry_imports  # noqa: F401  (registers the experiments)
from projects.common import experiment_config
from projects.common.configs import runtime

# Abridged /proc/cpuinfo of two machines: a Sapphire Rapids Xeon and an AVX2-only EPYC.
XEON_AMX = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C
flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile
"""
EPYC_AVX2 = """processor\t: 0
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse2 avx2 fma
"""
DEMO_EXPERIMENTS = [
  name for name in experiment_config.registered_experiments() if name.endswith('_demo')
]


def write_cpuinfo(tmp_path, text: str) -> str:
  path = os.path.join(tmp_path, 'cpuinfo')
  with open(path, 'w') as cpuinfo:
    cpuinfo.write(text)
  return path


@pytest.mark.parametrize(
  'cpuinfo, flags, dtype',
  [(XEON_AMX, ['amx_bf16', 'avx512_bf16'], 'bfloat16'), (EPYC_AVX2, [], 'float32')],
)
def test_bfloat16_exactly_where_the_cpu_has_it(tmp_path, cpuinfo, flags, dtype):
  path = write_cpuinfo(tmp_path, cpuinfo)
  assert runtime.native_bfloat16_flags(path) == flags
  config = runtime.cpu_runtime(path)
  assert config.mixed_precision_dtype == dtype
  assert config.distribution_strategy == 'one_device'
  assert config.num_gpus == 0


@pytest.mark.parametrize(
  'cpuinfo, summary',
  [
    (XEON_AMX, 'Intel(R) Xeon(R) Platinum 8481C, native bfloat16 (amx_bf16, avx512_bf16)'),
    (EPYC_AVX2, 'AMD EPYC 7B12, no native bfloat16'),
  ],
)
def test_cpu_summary_names_the_model_and_bfloat16(tmp_path, cpuinfo, summary):
  assert runtime.cpu_summary(write_cpuinfo(tmp_path, cpuinfo)) == summary


def test_no_cpuinfo_means_float32(tmp_path):
  config = runtime.cpu_runtime(os.path.join(tmp_path, 'missing'))
  assert config.mixed_precision_dtype == 'float32'
  assert runtime.cpu_summary(os.path.join(tmp_path, 'missing')) == 'unknown CPU, no native bfloat16'


def test_every_demo_runs_in_this_machines_precision():
  assert {'cvrl_demo', 'cvrl_linear_eval_demo'} <= set(DEMO_EXPERIMENTS)
  expected = runtime.cpu_runtime().as_dict()
  for name in DEMO_EXPERIMENTS:
    assert exp_factory.get_exp_config(name).runtime.as_dict() == expected, name
