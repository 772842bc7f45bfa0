"""Test order: the Dask tests last. Their LocalCluster leaves threads in the pytest process
(distributed's event loop, pyarrow's jemalloc thread), and a process that forks while other threads
hold locks can deadlock in the child (seen once: a --jobs child stuck in a futex); the --jobs and
--jobs 2 tests fork, so they run before any Dask test has started those threads.

Hypothesis: no per-example deadline. CI machines are shared and sometimes brand new; the first
example of a test may import a library or warm a cache, and a slow example is not a wrong one (the
suite's time is watched as a whole)."""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("dissect", deadline=None)
settings.load_profile("dissect")

LAST = ("test_dask.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name in LAST)  # stable: the rest keep their order
