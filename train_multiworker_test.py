"""Two worker processes on loopback ports, each with its own TF_CONFIG: multi-worker for real."""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import tensorflow as tf
from official.core import task_factory

from projects import registry_imports  # noqa: F401  (registers cvrl_demo)
from projects.common import cluster as cluster_lib
from projects.common import experiment_config
from projects.common.testing import tiny_data
from projects.cvrl.losses.contrastive_test import numpy_nt_xent
from train_test import REPO

NUM_WORKERS = 2
LOCAL_VIDEOS = 3

# Each worker computes CVRL's loss on its own share of one global batch of clip pairs.
_CONTRASTIVE_WORKER = textwrap.dedent(
  f"""
  import json, os
  import numpy as np
  import tensorflow as tf
  from projects.cvrl.losses import contrastive

  strategy = tf.distribute.MultiWorkerMirroredStrategy()
  index = json.loads(os.environ['TF_CONFIG'])['task']['index']
  rng = np.random.default_rng(0)
  global_a = rng.normal(size=({NUM_WORKERS * LOCAL_VIDEOS}, 8)).astype(np.float32)
  global_b = (global_a + rng.normal(size=global_a.shape)).astype(np.float32)
  mine = slice(index * {LOCAL_VIDEOS}, (index + 1) * {LOCAL_VIDEOS})
  loss, _ = strategy.run(
    contrastive.contrastive_loss, args=(tf.constant(global_a[mine]), tf.constant(global_b[mine]))
  )
  print(json.dumps({{'loss': float(strategy.experimental_local_results(loss)[0])}}))
  """
)


def run_workers(command: list[str]) -> list[subprocess.CompletedProcess]:
  """Runs `command` once per worker, concurrently, each with its own TF_CONFIG."""
  cluster = cluster_lib.loopback_cluster(NUM_WORKERS)
  with contextlib.ExitStack() as stack:
    processes, outputs = [], []
    for index in range(NUM_WORKERS):
      tf_config = {'cluster': cluster, 'task': {'type': 'worker', 'index': index}}
      env = dict(
        os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2', TF_CONFIG=json.dumps(tf_config)
      )
      # Files, not pipes: a worker blocked on a full pipe (a detection model's trace logs
      # hundreds of all-reduces) while the test waits on the other would stall both in their
      # collectives.
      stdout, stderr = (stack.enter_context(tempfile.TemporaryFile('w+')) for _ in range(2))
      outputs.append((stdout, stderr))
      processes.append(
        subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True, env=env, cwd=REPO)
      )
    try:
      for process in processes:
        # Only a guard against a hung collective: a detection demo's two workers took 5.5 min
        # on 2 cores shared with other jobs.
        process.wait(timeout=900)
    finally:
      for process in processes:
        if process.poll() is None:
          process.kill()
    results = []
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
      stdout.seek(0)
      stderr.seek(0)
      results.append(
        subprocess.CompletedProcess(process.args, process.returncode, stdout.read(), stderr.read())
      )
  return results


class MultiWorkerTest(tf.test.TestCase):
  def test_contrastive_negatives_come_from_both_workers(self):
    results = run_workers([sys.executable, '-c', _CONTRASTIVE_WORKER])
    for result in results:
      self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    losses = [json.loads(r.stdout.strip().splitlines()[-1])['loss'] for r in results]

    rng = np.random.default_rng(0)
    global_a = rng.normal(size=(NUM_WORKERS * LOCAL_VIDEOS, 8)).astype(np.float32)
    global_b = (global_a + rng.normal(size=global_a.shape)).astype(np.float32)
    global_loss, _, _ = numpy_nt_xent(global_a, global_b, temperature=0.1)
    # With equal shares, the workers' mean loss is the loss of the whole batch of both workers...
    self.assertAllClose(np.mean(losses), global_loss, rtol=1e-4)
    # ...and not what a worker would see with its own clips as the only negatives.
    local_loss, _, _ = numpy_nt_xent(
      global_a[:LOCAL_VIDEOS], global_b[:LOCAL_VIDEOS], temperature=0.1
    )
    self.assertNotAllClose(losses[0], local_loss, rtol=1e-2)

  def _train_on_two_workers(self, experiment: str, override: str) -> str:
    """Runs `train.py --mode=train` of `experiment` on two workers; returns its model_dir.

    Checks that both workers exit 0, that only the chief wrote model_dir (one summary writer,
    checkpoints up to step 2) and that its last checkpoint restores into a fresh model.
    """
    model_dir = os.path.join(self.get_temp_dir(), 'run')
    override = f'runtime.distribution_strategy=multi_worker_mirrored,{override}'
    results = run_workers(
      [
        sys.executable,
        os.path.join(REPO, 'train.py'),
        f'--experiment={experiment}',
        '--mode=train',
        f'--model_dir={model_dir}',
        f'--params_override={override}',
      ]
    )
    for index, result in enumerate(results):
      self.assertEqual(result.returncode, 0, f'worker {index}: {result.stderr[-3000:]}')

    # Worker 0 is the chief; worker 1 saves nothing (checkpoint, config, gin) there.
    self.assertNotIn(f'to {model_dir}', results[1].stderr)
    self.assertLen(tf.io.gfile.listdir(os.path.join(model_dir, 'train')), 1)
    latest = tf.train.latest_checkpoint(model_dir)
    self.assertEqual(latest.rsplit('-', 1)[-1], '2')
    params = experiment_config.build_experiment_config(experiment, params_override=override)
    model = task_factory.get_task(params.task).build_model()
    self.assertNotEmpty(model.variables)
    global_step = tf.Variable(0, dtype=tf.int64)
    restored = tf.train.Checkpoint(model=model, global_step=global_step).read(latest)
    restored.assert_existing_objects_matched()
    self.assertEqual(int(global_step.numpy()), 2)
    return model_dir

  def test_cvrl_demo_trains_on_two_workers(self):
    info = tiny_data.tiny_moving_mnist(os.path.join(self.get_temp_dir(), 'data'))
    override = ','.join(
      [
        f'task.train_data.input_path={info.train_pattern}',
        f'task.validation_data.input_path={info.validation_pattern}',
        'task.train_data.global_batch_size=4',
        'trainer.train_steps=2',
        'trainer.steps_per_loop=1',
        'trainer.checkpoint_interval=1',
      ]
    )
    self._train_on_two_workers('cvrl_demo', override)
