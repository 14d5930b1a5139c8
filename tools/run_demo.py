"""`make demo`: trains the video classification demo on the built-in moving digits.

Runs `train.py` exactly as a user would, then prints the validation top-1 against chance.
"""

import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_train(experiment: str, model_dir: str, *extra_args: str) -> dict[str, float]:
  """Runs train.py train_and_eval and returns its final evaluation metrics."""
  command = [
    sys.executable,
    os.path.join(REPO, 'train.py'),
    f'--experiment={experiment}',
    '--mode=train_and_eval',
    f'--model_dir={model_dir}',
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
  metrics = run_train('video_classification_demo', os.path.join(root, 'video_classification'))
  minutes = (time.time() - start) / 60
  print()
  print(
    f'video_classification_demo: validation top-1 {metrics["top_1_accuracy"]:.1%} '
    f'(chance 10.0%), top-5 {metrics["top_5_accuracy"]:.1%}, {minutes:.1f} min; '
    f'runs in {root}'
  )


if __name__ == '__main__':
  main()
