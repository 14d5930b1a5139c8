"""`py_pytest`: a py_test that runs one test file under pytest (plain or unittest-style tests)."""

def py_pytest(name, srcs, deps = [], data = [], **kwargs):
    native.py_test(
        name = name,
        srcs = srcs + ["//tools:pytest_main.py"],
        main = "//tools:pytest_main.py",
        args = ["$(location %s)" % srcs[0]],
        data = data + ["//:conftest.py", "//:pyproject.toml"],
        deps = deps,
        python_version = "PY3",
        **kwargs
    )
