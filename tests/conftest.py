"""Shared fixtures: real Git repositories built with the git CLI in temp folders."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import settings

from aureacore_db.ingest import ingest

# Property-based tests (tests/test_fuzz.py): quick by default, thorough on request with
# ``pytest --hypothesis-profile=long``.
settings.register_profile("default", max_examples=40, deadline=None)
settings.register_profile("long", max_examples=2000, deadline=None)
settings.load_profile("default")


class GitRepo:
    """A throwaway config repository driven through the git CLI."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tick = 0
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", "Test Author")
        self.git("config", "user.email", "author@example.com")
        self.git("config", "commit.gpgsign", "false")

    @classmethod
    def clone(cls, source: Path, path: Path, branch: str = "main") -> GitRepo:
        """A clone of ``source`` (its ``origin``) with ``branch`` checked out."""
        subprocess.run(["git", "clone", "-q", "-b", branch, str(source), str(path)],
                       check=True)
        return cls(path)  # `git init` again only sets the test identity

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        full_env = {**os.environ, **(env or {})}
        return subprocess.run(["git", *args], cwd=self.path, check=True, capture_output=True,
                              text=True, env=full_env).stdout.strip()

    def write(self, rel: str, content: Any) -> None:
        """Write a file: bytes as they are, str as text, anything else as YAML."""
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        elif isinstance(content, str):
            target.write_text(content)
        else:
            target.write_text(yaml.safe_dump(content, sort_keys=False))

    def service(self, name: str, namespace: str = "platform", version: str = "1.0.0",
                rel: str | None = None, **fields: Any) -> str:
        """Write a valid service file; returns its path."""
        rel = rel or f"services/{namespace}/{name}.yaml"
        doc = {"name": name, "namespace": namespace, "version": version, **fields}
        self.write(rel, doc)
        return rel

    def rm(self, rel: str) -> None:
        self.git("rm", "-q", "-r", rel)

    def commit(self, message: str, author: str = "Test Author <author@example.com>") -> str:
        self._tick += 1
        date = f"2025-01-01T00:{self._tick // 60:02d}:{self._tick % 60:02d}Z"
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message, f"--author={author}",
                 env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "configs")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "registry.db"


def rows(db_path: Path, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def wait_for(condition: Any, what: str, timeout: float = 30.0, every: float = 0.02) -> Any:
    """Poll ``condition()`` until it returns something truthy (returned); fail after
    ``timeout`` seconds saying what was awaited. A poll interval, not a wait for readiness."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def run_ingest(repo: GitRepo, db_path: Path, **kwargs: Any):
    return ingest(repo.path, db_path, **kwargs)


class LocalServer:
    """A real HTTP server on 127.0.0.1 (a free port), serving ``handler`` in a thread."""

    def __init__(self, handler: type) -> None:
        import threading
        from http.server import ThreadingHTTPServer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
