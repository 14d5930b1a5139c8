"""Our code stays our own: nothing under projects/ imports Model Garden's video_ssl, our peer."""

import ast
import os

import tensorflow as tf

PROJECTS = os.path.dirname(os.path.abspath(__file__))
FORBIDDEN = 'official.projects.video_ssl'


def _imported_modules(path: str) -> list[str]:
  with open(path) as f:
    tree = ast.parse(f.read(), filename=path)
  modules = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      modules += [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      modules += [node.module] + [f'{node.module}.{alias.name}' for alias in node.names]
  return modules


class BoundariesTest(tf.test.TestCase):
  def test_projects_never_import_the_peer(self):
    offenders = []
    for root, _, files in os.walk(PROJECTS):
      for name in files:
        if name.endswith('.py'):
          path = os.path.join(root, name)
          offenders += [
            f'{os.path.relpath(path, PROJECTS)}: {module}'
            for module in _imported_modules(path)
            if module == FORBIDDEN or module.startswith(FORBIDDEN + '.')
          ]
    self.assertEmpty(offenders)

  def test_the_check_sees_an_import(self):
    path = os.path.join(self.get_temp_dir(), 'bad.py')
    with open(path, 'w') as f:
      f.write('from official.projects.video_ssl.tasks import pretrain\n')
    self.assertIn(FORBIDDEN + '.tasks', _imported_modules(path))


if __name__ == '__main__':
  tf.test.main()
