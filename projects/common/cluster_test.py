"""Tests for the Vertex AI CLUSTER_SPEC -> TF_CONFIG translation."""

import json

import pytest

from projects.common import cluster

# As Vertex AI sets it on the second worker of a job with a chief, two workers and an evaluator.
VERTEX_CLUSTER_SPEC = {
  'cluster': {
    'workerpool0': ['cmle-training-workerpool0-1a2b-0:2222'],
    'workerpool1': [
      'cmle-training-workerpool1-1a2b-0:2222',
      'cmle-training-workerpool1-1a2b-1:2222',
    ],
    'workerpool3': ['cmle-training-workerpool3-1a2b-0:2222'],
  },
  'environment': 'cloud',
  'task': {'type': 'workerpool1', 'index': 1, 'trial': ''},
  'job': '{"python_module":"","package_uris":[],"job_args":[]}',
}


def test_worker_pools_become_task_types_without_the_evaluator():
  assert cluster.tf_config_from_cluster_spec(VERTEX_CLUSTER_SPEC) == {
    'cluster': {
      'chief': ['cmle-training-workerpool0-1a2b-0:2222'],
      'worker': ['cmle-training-workerpool1-1a2b-0:2222', 'cmle-training-workerpool1-1a2b-1:2222'],
    },
    'task': {'type': 'worker', 'index': 1},
  }


def test_evaluator_task_keeps_its_type():
  spec = {**VERTEX_CLUSTER_SPEC, 'task': {'type': 'workerpool3', 'index': 0}}
  assert cluster.tf_config_from_cluster_spec(spec)['task'] == {'type': 'evaluator', 'index': 0}


def test_ensure_tf_config_translates_only_when_tf_config_is_absent():
  environ = {'CLUSTER_SPEC': json.dumps(VERTEX_CLUSTER_SPEC)}
  assert cluster.ensure_tf_config(environ) == 'CLUSTER_SPEC'
  assert json.loads(environ['TF_CONFIG'])['task'] == {'type': 'worker', 'index': 1}

  given = {'TF_CONFIG': '{"cluster": {}}', 'CLUSTER_SPEC': json.dumps(VERTEX_CLUSTER_SPEC)}
  assert cluster.ensure_tf_config(given) == 'TF_CONFIG'
  assert given['TF_CONFIG'] == '{"cluster": {}}'

  assert cluster.ensure_tf_config({}) == ''


@pytest.mark.parametrize(
  'spec, message',
  [
    ({'task': {'type': 'workerpool0', 'index': 0}}, "missing or bad 'cluster'"),
    ({'cluster': {'pool9': ['a:1']}, 'task': {'type': 'pool9', 'index': 0}}, "['pool9']"),
  ],
)
def test_bad_cluster_spec_is_named(spec, message):
  with pytest.raises(
    cluster.ClusterSpecError, match=message.replace('[', r'\[').replace(']', r'\]')
  ):
    cluster.tf_config_from_cluster_spec(spec)


def test_cluster_spec_that_is_not_json():
  with pytest.raises(cluster.ClusterSpecError, match='CLUSTER_SPEC is not JSON'):
    cluster.ensure_tf_config({'CLUSTER_SPEC': '{workerpool0'})
