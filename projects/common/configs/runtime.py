"""The runtime of the CPU demos: one device, in bfloat16 where the CPU computes it natively."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
  from official.core import config_definitions as cfg

# x86 flags of native bfloat16 arithmetic, which oneDNN uses for bfloat16 convolutions and
# matmuls. Without AVX-512 TensorFlow leaves bfloat16 to Eigen's generic kernels and a CVRL R3D-50
# step runs about 20x slower than in float32 (bench/cvrl_throughput.py on an AVX2 EPYC); with
# AVX-512 but neither flag, oneDNN emulates bfloat16 with float32 arithmetic (not measured here).
NATIVE_BFLOAT16_CPU_FLAGS = frozenset({'avx512_bf16', 'amx_bf16'})
CPUINFO_PATH = '/proc/cpuinfo'


def first_cpu_fields(cpuinfo_path: str = CPUINFO_PATH) -> dict[str, str]:
  """The first processor's fields in /proc/cpuinfo ('model name', 'flags', ...); {} if absent."""
  fields = {}
  try:
    with open(cpuinfo_path) as cpuinfo:
      for line in cpuinfo:
        key, _, value = line.partition(':')
        if not key.strip():
          break
        fields[key.strip()] = value.strip()
  except OSError:
    pass
  return fields


def native_bfloat16_flags(cpuinfo_path: str = CPUINFO_PATH) -> list[str]:
  """The CPU's native-bfloat16 flags, sorted; empty if bfloat16 would be slower than float32."""
  flags = set(first_cpu_fields(cpuinfo_path).get('flags', '').split())
  return sorted(flags & NATIVE_BFLOAT16_CPU_FLAGS)


def cpu_runtime(cpuinfo_path: str = CPUINFO_PATH) -> 'cfg.RuntimeConfig':
  """One device, with `mixed_precision_dtype` bfloat16 if the CPU has it natively, else float32.

  So the demos take the fast precision of the machine they are configured on; `--print_config`
  shows which, and `runtime.mixed_precision_dtype=...` overrides it.
  """
  # Imported here so that reading the CPU (tools/run_demo.py) does not load TensorFlow.
  from official.core import config_definitions as cfg

  dtype = 'bfloat16' if native_bfloat16_flags(cpuinfo_path) else 'float32'
  return cfg.RuntimeConfig(
    distribution_strategy='one_device', num_gpus=0, mixed_precision_dtype=dtype
  )


def cpu_summary(cpuinfo_path: str = CPUINFO_PATH) -> str:
  """The CPU's model name and whether it computes bfloat16 natively, in one line for run logs."""
  model = first_cpu_fields(cpuinfo_path).get('model name', 'unknown CPU')
  flags = native_bfloat16_flags(cpuinfo_path)
  bfloat16 = f'native bfloat16 ({", ".join(flags)})' if flags else 'no native bfloat16'
  return f'{model}, {bfloat16}'
