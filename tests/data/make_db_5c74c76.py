"""Make ``db_5c74c76.sql`` and ``repo_5c74c76.bundle``: a database written by release
5c74c76 (the last one before environments) and the config repository it follows.

Run with the old release's code (not this checkout's), from a worktree of it::

    git worktree add /tmp/old-5c74c76 5c74c76
    PYTHONPATH=/tmp/old-5c74c76 python tests/data/make_db_5c74c76.py tests/data

The repository (git CLI, fixed dates) has a merged side branch, so its mainline is not
all of its commits. The old CLI then ingests it and does what people do and ingest never
redoes: a rollback, a registration, a webhook with a secret and a delivery to a local
receiver, and a health probe of a local endpoint.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aureacore_db

AUTHOR = "Ann Admin <ann@example.com>"


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


def _git(repo: Path, *args: str, tick: int = 0) -> str:
    date = f"2025-01-01T00:00:{tick:02d}Z"
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date,
           "GIT_AUTHOR_NAME": "Test Author", "GIT_AUTHOR_EMAIL": "author@example.com",
           "GIT_COMMITTER_NAME": "Test Author", "GIT_COMMITTER_EMAIL": "author@example.com"}
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def _service(repo: Path, name: str, version: str, extra: str = "") -> None:
    path = repo / "services" / "platform" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"name: {name}\nnamespace: platform\nversion: {version}\n{extra}")


def _cli(db: Path, *args: str) -> str:
    """The old release's CLI (run in the database's folder: ``python -c`` puts the current
    folder first on ``sys.path``, which must not be a newer checkout)."""
    run = subprocess.run([sys.executable, "-c", "from aureacore_db.cli import cli; cli()",
                          *args], capture_output=True, text=True, cwd=db.parent)
    if run.returncode:
        raise SystemExit(f"{args}: {run.stdout}{run.stderr}")
    return run.stdout


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _dump(db: Path) -> str:
    """The database as SQL that ``executescript`` loads (``iterdump`` writes full-text
    tables through ``sqlite_master``, which a script cannot read back): tables and rows,
    full-text tables created and rebuilt from their content, then indexes, triggers and
    views, in the order the database has them."""
    conn = sqlite3.connect(db)
    master = conn.execute("select type, name, sql from sqlite_master "
                          "where sql is not null order by rowid").fetchall()
    virtual = [name for kind, name, sql in master if sql.upper().startswith("CREATE VIRTUAL")]
    lines = ["BEGIN TRANSACTION;"]
    for kind, name, sql in master:
        if kind != "table" or name.startswith("sqlite_") or \
                any(name.startswith(f"{v}_") for v in virtual):
            continue
        lines.append(f"{sql};")
        if name not in virtual:
            for row in conn.execute(f'select * from "{name}"'):
                lines.append(f'INSERT INTO "{name}" VALUES({",".join(map(_literal, row))});')
    lines.append("DELETE FROM sqlite_sequence;")  # the inserts above made rows of it
    for name, seq in conn.execute("select name, seq from sqlite_sequence"):
        lines.append(f"INSERT INTO sqlite_sequence VALUES({_literal(name)},{seq});")
    lines += [f'INSERT INTO "{v}"("{v}") VALUES(\'rebuild\');' for v in virtual]
    lines += [f"{sql};" for kind, name, sql in master if kind in ("index", "trigger", "view")]
    conn.close()
    return "\n".join([*lines, "COMMIT;"]) + "\n"


def build(out: Path) -> None:
    """Write the dump and the bundle into ``out``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        repo, db = Path(tmp) / "configs", Path(tmp) / "registry.db"
        repo.mkdir()
        _git(repo, "init", "-q", "-b", "main")
        _service(repo, "auth", "1.0.0", f"health_check:\n  url: {url}/healthz\n")
        _service(repo, "users", "1.0.0")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "two services", tick=1)
        _service(repo, "users", "1.1.0")
        _git(repo, "commit", "-qam", "users 1.1.0", tick=2)
        _git(repo, "checkout", "-q", "-b", "side")
        _service(repo, "auth", "1.1.0", f"health_check:\n  url: {url}/healthz\n")
        _git(repo, "commit", "-qam", "auth 1.1.0 on a side branch", tick=3)
        _git(repo, "checkout", "-q", "main")
        _service(repo, "users", "1.2.0")
        _git(repo, "commit", "-qam", "users 1.2.0", tick=4)
        _git(repo, "merge", "-q", "--no-ff", "side", "-m", "Merge branch 'side'", tick=5)
        _git(repo, "branch", "-q", "-D", "side")
        first = _git(repo, "rev-list", "--max-parents=0", "HEAD")

        _cli(db, "ingest", str(repo), "--db", str(db), "--branch", "main", "--quiet")
        _cli(db, "webhooks", "add", f"{url}/hook", "--db", str(db), "--name", "ops",
             "--secret", "s3cret", "--from-start")
        _cli(db, "rollback", "platform/users", "--to", first, "--db", str(db), "--yes",
             "--actor", AUTHOR)
        new = Path(tmp) / "billing.yaml"
        new.write_text("name: billing\nnamespace: payments\nversion: 0.1.0\n")
        _cli(db, "register", str(new), "--db", str(db), "--yes", "--author", AUTHOR,
             "-m", "Register payments/billing")
        _cli(db, "deliver", "--db", str(db))
        _cli(db, "health", "--db", str(db), "--once")

        dump = _dump(db)
        assert "CREATE TABLE [environments]" not in dump, "made by a release with environments"
        server.shutdown()
        (out / "db_5c74c76.sql").write_text(
            f"-- made by tests/data/make_db_5c74c76.py with aureacore-db "
            f"{aureacore_db.__version__} (5c74c76)\n" + dump)
        _git(repo, "bundle", "create", str((out / "repo_5c74c76.bundle").resolve()), "--all")


if __name__ == "__main__":
    build(Path(sys.argv[1]))
