"""The training cluster of a multi-worker job: TensorFlow's `TF_CONFIG`, or Vertex AI's `CLUSTER_SPEC`.

TensorFlow's multi-worker strategies read the cluster from `TF_CONFIG`. Vertex AI custom jobs
describe it in `CLUSTER_SPEC` by worker pool (`workerpool0` is the chief, `workerpool1` the
workers, `workerpool2` parameter servers, `workerpool3` evaluators). Where only `CLUSTER_SPEC` is
set, `ensure_tf_config` writes the equivalent `TF_CONFIG` before a strategy is built.
"""

import json
import os
import socket
from collections.abc import MutableMapping

# Vertex AI's worker pools, in their fixed order, as TensorFlow task types.
TASK_TYPE_OF_WORKER_POOL = {
  'workerpool0': 'chief',
  'workerpool1': 'worker',
  'workerpool2': 'ps',
  'workerpool3': 'evaluator',
}


class ClusterSpecError(ValueError):
  """`CLUSTER_SPEC` is not a Vertex AI cluster description."""


def tf_config_from_cluster_spec(cluster_spec: dict) -> dict:
  """`TF_CONFIG` for the task that a Vertex AI `CLUSTER_SPEC` describes.

  The evaluator stays out of the training cluster, as TensorFlow expects: it runs its own
  single-machine strategy next to the training job, reading the checkpoints the chief writes.
  """
  try:
    pools = cluster_spec['cluster']
    task_pool, task_index = cluster_spec['task']['type'], int(cluster_spec['task']['index'])
  except (KeyError, TypeError, ValueError) as e:
    raise ClusterSpecError(
      f'CLUSTER_SPEC needs cluster.workerpoolN and task.type/index; missing or bad {e}'
    ) from e
  unknown = sorted(set(pools) - set(TASK_TYPE_OF_WORKER_POOL))
  if task_pool not in TASK_TYPE_OF_WORKER_POOL or unknown:
    raise ClusterSpecError(
      f'CLUSTER_SPEC names worker pools {sorted({task_pool, *unknown})}; '
      f'expected some of {sorted(TASK_TYPE_OF_WORKER_POOL)}'
    )
  cluster = {
    TASK_TYPE_OF_WORKER_POOL[pool]: list(addresses)
    for pool, addresses in pools.items()
    if addresses and TASK_TYPE_OF_WORKER_POOL[pool] != 'evaluator'
  }
  return {
    'cluster': cluster,
    'task': {'type': TASK_TYPE_OF_WORKER_POOL[task_pool], 'index': task_index},
  }


def ensure_tf_config(environ: MutableMapping[str, str] = os.environ) -> str:
  """Sets `TF_CONFIG` from `CLUSTER_SPEC` when only the latter is set; says where it came from."""
  if environ.get('TF_CONFIG'):
    return 'TF_CONFIG'
  if not environ.get('CLUSTER_SPEC'):
    return ''
  try:
    cluster_spec = json.loads(environ['CLUSTER_SPEC'])
  except json.JSONDecodeError as e:
    raise ClusterSpecError(f'CLUSTER_SPEC is not JSON: {e}') from e
  environ['TF_CONFIG'] = json.dumps(tf_config_from_cluster_spec(cluster_spec))
  return 'CLUSTER_SPEC'


def loopback_cluster(num_workers: int) -> dict:
  """A `TF_CONFIG` cluster of `num_workers` workers on free ports of this machine (tests, bench)."""
  sockets = [socket.socket() for _ in range(num_workers)]
  for s in sockets:
    s.bind(('127.0.0.1', 0))
  addresses = [f'127.0.0.1:{s.getsockname()[1]}' for s in sockets]
  for s in sockets:
    s.close()
  return {'worker': addresses}
