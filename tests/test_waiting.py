"""bnablate/waiting.py: a step that needs every run waits while another process's claims on them are live, goes on
when their records appear, trains the runs whose claim went stale, and gives up with RunsPending after the timeout."""

import pytest

from bnablate import waiting
from bnablate.errors import ConfigError, RunsPending
from bnablate.reporter import Reporter
from bnablate.results.claims import claim, release
from .fixtures import dead_claim

KEYS = ["a" * 16, "b" * 16]


class Other(Reporter):
    """Notes each waiting line; the other process finishes its run (a record, its claim released) when told to."""

    def __init__(self, done, lock=None):
        self.done, self.lock, self.lines = done, lock, []

    def waiting_for_runs(self, line):
        self.lines.append(line)
        if self.lock is not None:
            self.done.add(KEYS[1])
            release(self.lock)


@pytest.fixture
def done(monkeypatch):
    """The run keys with a record: the first one at the start."""
    recorded = {KEYS[0]}
    monkeypatch.setattr(waiting, "_recorded", lambda folders, key: key in recorded)
    return recorded


def never_trained(keys):
    raise AssertionError(f"{keys} have a live claim elsewhere: not trained here")


def test_waits_while_the_claim_is_live_then_goes_on(tmp_path, done):
    lock = claim(tmp_path, KEYS[1])  # held by this test's process: a live owner on this host
    other = Other(done, lock)
    waiting.await_runs(KEYS, [tmp_path], "runs of look 0", "not taken", never_trained, waiting.Wait(60, 0), other)
    assert len(other.lines) == 1  # one line per wait, not one per poll
    assert "1 of 2 runs of look 0" in other.lines[0] and f"{tmp_path}/records/*.lock" in other.lines[0]
    assert "up to 60 s (--wait-timeout)" in other.lines[0]


@pytest.mark.parametrize("timeout,why", [(0, "--wait-timeout 0 does not wait"),
                                         (0.01, "did not finish within --wait-timeout 0.01 s")])
def test_gives_up_after_the_timeout_naming_the_fix(tmp_path, done, timeout, why):
    lock = claim(tmp_path, KEYS[1])
    other = Other(done)  # the other process never finishes
    with pytest.raises(RunsPending, match=f"1 of 2 tuning runs have no record yet: .*{why}. Nothing was selected; "
                                          "rerun this command when they finish, or give a longer --wait-timeout"):
        waiting.await_runs(KEYS, [tmp_path], "tuning runs", "Nothing was selected", never_trained,
                           waiting.Wait(timeout, 0), other)
    assert len(other.lines) == (1 if timeout else 0)
    release(lock)


def test_a_stale_claim_is_trained_here_without_waiting(tmp_path, done):
    dead_claim(tmp_path, KEYS[1])
    trained = []

    def train(keys):
        trained.append(keys)
        done.update(keys)
    other = Other(done)
    waiting.await_runs(KEYS, [tmp_path], "runs", "not taken", train, waiting.Wait(60, 0), other)
    assert trained == [{KEYS[1]}] and other.lines == []


def test_a_run_trained_here_that_leaves_no_record_stops_rather_than_loops(tmp_path, done):
    trained = []
    with pytest.raises(RunsPending, match="1 of 2 runs"):
        waiting.await_runs(KEYS, [tmp_path], "runs", "not taken", trained.append, waiting.Wait(60, 0), Other(done))
    assert trained == [{KEYS[1]}]  # no claim at all: trained once, not again


@pytest.mark.parametrize("timeout", [-1, float("nan")])
def test_a_negative_timeout_is_refused(timeout):
    with pytest.raises(ConfigError, match="give seconds ≥ 0"):
        waiting.Wait(timeout)
