"""Test setup: every test writes runs and caches under its own tmp folder, never into the checkout or ~/.cache."""

import os

import pytest


def pytest_configure(config):
    # One torch thread per test process: `make test` runs one pytest-xdist worker per core, so two workers do not
    # fight over the same two cores (tiny models gain nothing from intra-op threads anyway); and threads=0 (auto)
    # never goes above the process's count (bnablate/train/threads.py), so a test comparing two runs bit for bit gets
    # the same thread count for both however busy the machine is
    import torch

    torch.set_num_threads(1)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # xdist's workers start with COLUMNS=80 and LINES=24 (execnet): rich would fix its consoles at 80 columns on
        # import; the per-test COLUMNS below is what the tests mean
        os.environ.pop("COLUMNS", None)
        os.environ.pop("LINES", None)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("BNABLATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BNABLATE_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")  # rich tables wide enough that assertions see whole cells
    monkeypatch.chdir(tmp_path)
    yield
