"""Our code stays our own: nothing under projects/ imports Model Garden's video_ssl, our peer."""

import os

import tensorflow as tf

from tools import update_build_files

PROJECTS = os.path.dirname(os.path.abspath(__file__))
FORBIDDEN = 'official.projects.video_ssl'


class BoundariesTest(tf.test.TestCase):
  def test_projects_never_import_the_peer(self):
    sources = [
      os.path.join(root, name)
      for root, _, files in os.walk(PROJECTS)
      for name in files
      if name.endswith('.py')
    ]
    if os.path.join(PROJECTS, 'cvrl', 'tasks', 'pretrain.py') not in sources:
      self.skipTest('the projects/ sources are not beside this file (Bazel runfiles)')
    offenders = []
    for path in sources:
      offenders += [
        f'{os.path.relpath(path, PROJECTS)}: {module}'
        for module in update_build_files.imported_names(path)
        if module == FORBIDDEN or module.startswith(FORBIDDEN + '.')
      ]
    self.assertEmpty(offenders)

  def test_the_check_sees_an_import(self):
    path = os.path.join(self.get_temp_dir(), 'bad.py')
    with open(path, 'w') as f:
      f.write('from official.projects.video_ssl.tasks import pretrain\n')
    self.assertIn(FORBIDDEN + '.tasks', update_build_files.imported_names(path))


if __name__ == '__main__':
  tf.test.main()
