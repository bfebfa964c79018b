"""Test setup: every test writes runs and caches under its own tmp folder, never into the checkout or ~/.cache."""

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("BNABLATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BNABLATE_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")  # rich tables wide enough that assertions see whole cells
    monkeypatch.chdir(tmp_path)
    yield
