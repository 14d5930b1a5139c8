"""`make test` (pytest on pyproject.toml's settings) runs every *_test.py of the repo, only those."""

import os
import shutil
import subprocess
import sys

import tensorflow as tf

REPO = os.path.dirname(os.path.abspath(__file__))
# Folders that hold copies of tests or other packages' tests: never collected.
DECOYS = ('.venv/lib/site-packages/pkg', 'bazel-out/k8-fastbuild/bin/projects')
ENV_CHECK = "import os\n\n\ndef test_env():\n  assert os.environ['TF_ENABLE_ONEDNN_OPTS'] == '1'\n"


def repo_files(suffix: str) -> list[str]:
  """Repo-relative paths of the files ending in `suffix`, outside hidden and Bazel folders."""
  found = []
  for folder, dirs, files in os.walk(REPO):
    dirs[:] = [d for d in dirs if not d.startswith(('.', 'bazel-', '__'))]
    found += [os.path.relpath(os.path.join(folder, f), REPO) for f in files if f.endswith(suffix)]
  return sorted(found)


class PytestCollectionTest(tf.test.TestCase):
  def test_every_test_file_runs_under_the_root_conftest(self):
    tests = repo_files('_test.py')
    if 'train_test.py' not in tests:
      self.skipTest('the repo is not beside this file (Bazel runfiles)')
    # The repo's layout with a one-line test in place of each test file (so this is quick), and
    # a test in each folder that must be skipped.
    root = self.get_temp_dir()
    for name in ('pyproject.toml', 'conftest.py'):
      shutil.copy(os.path.join(REPO, name), root)
    for relative in repo_files('__init__.py') + tests + [f'{d}/copied_test.py' for d in DECOYS]:
      path = os.path.join(root, relative)
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path, 'w') as f:
        f.write(ENV_CHECK if relative.endswith('_test.py') else '')
    env = {k: v for k, v in os.environ.items() if k != 'TF_ENABLE_ONEDNN_OPTS'}
    result = subprocess.run(
      [sys.executable, '-m', 'pytest', '-v', '-p', 'no:xdist'],
      cwd=root,
      capture_output=True,
      text=True,
      env=env,
      timeout=300,
    )
    self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-2000:])
    passed = sorted(
      line.split('::')[0]
      for line in result.stdout.splitlines()
      if line.endswith('PASSED') or ' PASSED ' in line
    )
    self.assertEqual(passed, tests)


if __name__ == '__main__':
  tf.test.main()
