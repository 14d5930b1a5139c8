"""Bazel entry point of `py_pytest` targets: runs the given test file under pytest."""

import os
import sys

import pytest

if __name__ == '__main__':
  # Bazel runs tests from the runfiles tree; pytest finds the repo's conftest.py and
  # pyproject.toml there, beside the test file.
  os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
  sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', *sys.argv[1:]]))
