"""``aureacore-db sync --watch``: the real CLI polling a real origin, surviving it being
down, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import GitRepo, rows
from conftest import wait_for as shared_wait_for

from aureacore_db.ingest import ingest
from aureacore_db.watch import parse_interval


def wait_for(condition, what: str, timeout: float = 60.0):
    """A subprocess that polls its remote: a longer deadline than the shared default."""
    return shared_wait_for(condition, what, timeout, every=0.05)


def test_watch_syncs_pushes_survives_a_down_remote_and_stops_on_sigterm(tmp_path: Path):
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    dev = GitRepo(tmp_path / "dev")
    dev.service("auth", version="1.0.0")
    dev.commit("add auth")
    dev.git("remote", "add", "origin", str(origin))
    dev.git("push", "-q", "origin", "main")
    configs = tmp_path / "configs"
    subprocess.run(["git", "clone", "-q", str(origin), str(configs)], check=True)
    db = tmp_path / "registry.db"
    ingest(configs, db)

    def tip() -> str:
        return rows(db, "select value from aureacore_meta where key = 'tip'")[0]["value"]

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "aureacore_db.cli", "sync", "--watch",
                             "200ms", "--db", str(db), "--repo", str(configs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(iter(proc.stderr.readline, "")),
                              daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(line.startswith("watching ") for line in log), "the watcher")
        dev.service("auth", version="1.1.0")
        first = dev.commit("release 1.1.0")
        dev.git("push", "-q", "origin", "main")
        wait_for(lambda: tip() == first, "the first push in the database")

        origin.rename(tmp_path / "away.git")  # the remote goes down
        wait_for(lambda: any("sync failed" in line for line in log), "a logged failure")
        (tmp_path / "away.git").rename(origin)  # and comes back
        dev.service("auth", version="1.2.0")
        second = dev.commit("release 1.2.0")
        dev.git("push", "-q", "origin", "main")
        wait_for(lambda: tip() == second, "the second push after the remote recovered")
        wait_for(lambda: any(line.startswith(f"synced {second[:12]}") for line in log),
                 "the sync to be reported")
        assert any("sync recovered after" in line for line in log)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        reader.join(timeout=10)
        assert "stopped after" in log[-1]
        assert not any("Traceback" in line for line in log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("text,seconds", [("30", 30.0), ("30s", 30.0), ("500ms", 0.5),
                                          ("5m", 300.0), ("1h", 3600.0)])
def test_intervals(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "fast", "10ms", "-1s", "5 minutes"])
def test_bad_intervals_are_refused(text):
    with pytest.raises(ValueError):
        parse_interval(text)
