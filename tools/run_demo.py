"""`make demo`: CVRL on the built-in moving digits, against a random backbone, in minutes on a CPU.

1. `cvrl_demo`: self-supervised pretraining of a slim R3D-10 (labels unused).
2. `cvrl_linear_eval_demo` from that checkpoint: a linear classifier on the frozen backbone.
3. `cvrl_linear_eval_demo` with no checkpoint: the same classifier on a frozen random backbone.
Each step runs `train.py` exactly as a user would; the two top-1 figures are printed together,
then the wall time and the CPU it was measured on (model, and whether bfloat16 is native: the
demos train in bfloat16 exactly where it is).
"""

import os
import re
import subprocess
import sys
import tempfile
import time

from projects.common.configs import runtime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_SEED = 0


def run_train(experiment: str, model_dir: str, *extra_args: str) -> dict[str, float]:
  """Runs train.py train_and_eval and returns its final evaluation metrics."""
  command = [
    sys.executable,
    os.path.join(REPO, 'train.py'),
    f'--experiment={experiment}',
    '--mode=train_and_eval',
    f'--model_dir={model_dir}',
    # The same draws every run, so the random-init baseline is one figure, not a spread.
    f'--seed={DEMO_SEED}',
    *extra_args,
  ]
  print('$ ' + ' '.join(command), flush=True)
  log_path = os.path.join(model_dir, 'train.log')
  os.makedirs(model_dir, exist_ok=True)
  with open(log_path, 'w') as log:
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True)
  sys.stdout.write(result.stdout)
  if result.returncode != 0:
    with open(log_path) as log:
      sys.stderr.write(''.join(log.readlines()[-40:]))
    raise SystemExit(f'{experiment} failed (exit {result.returncode}); full log: {log_path}')
  match = re.search(r'^final evaluation: (.*)$', result.stdout, re.MULTILINE)
  if not match:
    raise SystemExit(f'{experiment} printed no final evaluation; full log: {log_path}')
  return {k: float(v) for k, v in (item.split('=') for item in match.group(1).split(', '))}


def main() -> None:
  root = os.environ.get('DEMO_DIR') or tempfile.mkdtemp(prefix='demo_')
  start = time.time()
  pretrain_dir = os.path.join(root, 'cvrl_pretrain')
  pretrain = run_train('cvrl_demo', pretrain_dir)
  cvrl = run_train(
    'cvrl_linear_eval_demo',
    os.path.join(root, 'linear_eval_cvrl'),
    f'--params_override=task.init_checkpoint={pretrain_dir}',
  )
  random_init = run_train('cvrl_linear_eval_demo', os.path.join(root, 'linear_eval_random_init'))
  minutes = (time.time() - start) / 60
  print()
  print(f'CVRL pretraining: kNN top-1 {pretrain.get("knn_top1_accuracy", float("nan")):.1%}')
  print('Linear evaluation on the frozen backbone (validation top-1, chance 10.0%):')
  print(f'  CVRL-pretrained backbone: {cvrl["top_1_accuracy"]:.1%}')
  print(f'  random-init backbone:     {random_init["top_1_accuracy"]:.1%}')
  print(f'{minutes:.1f} min wall time in all (data generation included); runs in {root}')
  print(f'CPU: {runtime.cpu_summary()}')


if __name__ == '__main__':
  main()
