"""Property test: whatever commit metadata and path bytes Git accepts, ingest stores it
without an exception, and a second ingest adds nothing.

Each example builds a real repository with the git CLI (``hash-object``,
``update-index --index-info``, ``write-tree``, a commit object written byte for byte)
and ingests it commit by commit, as a user following a branch would.
"""

from __future__ import annotations

import sqlite3
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from aureacore_db.ingest import ingest

NO_LINE = bytes(range(1, 256)).replace(b"\n", b"").replace(b"<", b"").replace(b">", b"")
ENCODINGS = [None, "UTF-8", "ISO-8859-1", "latin-1", "cp1252", "utf-16", "shift_jis",
             "base64", "rot13", "nonsense-codec", "x" * 60, "unicode_escape"]
VALID = b'name: svc\nversion: "1.0.0"\n'


def text_bytes(alphabet: bytes, min_size: int = 0, max_size: int = 20) -> st.SearchStrategy:
    return st.lists(st.sampled_from(list(alphabet)), min_size=min_size,
                    max_size=max_size).map(bytes)


name = text_bytes(NO_LINE, 1).map(lambda b: b.strip() or b"x")
segment = text_bytes(bytes(range(1, 256)).replace(b"/", b""), 1, 12)
path = st.tuples(st.lists(segment, max_size=2), segment,
                 st.sampled_from([b".yaml", b".yml", b".json", b""])).map(
    lambda t: b"/".join([b"services", *t[0], t[1] + t[2]]))
content = st.one_of(st.just(VALID), st.binary(max_size=40),
                    st.builds(lambda v: b'name: a\nversion: "%d.0.0"\n' % v,
                              st.integers(0, 9)))
commit = st.fixed_dictionaries({
    "author": name, "email": text_bytes(NO_LINE.replace(b" ", b""), 0, 15),
    "message": st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"")),
    "encoding": st.sampled_from(ENCODINGS),
    "time": st.one_of(st.integers(-(10 ** 11), 10 ** 15), st.sampled_from(
        [0, -1, 253402300799, 253402300800, -62135596801])),
    "tz": st.builds(lambda sign, h, m: f"{sign}{h:02d}{m:02d}".encode(),
                    st.sampled_from("+-"), st.integers(0, 99), st.integers(0, 99)),
    "files": st.dictionaries(path, content, max_size=3),
    "remove": st.booleans(),
})


def git(repo: Path, *args: str | bytes, data: bytes | None = None) -> bytes:
    done = subprocess.run(["git", *args], cwd=repo, input=data, capture_output=True)
    if done.returncode != 0:
        raise ValueError(done.stderr.decode(errors="replace"))
    return done.stdout.strip()


def add_commit(repo: Path, spec: dict, parent: str | None) -> str:
    if spec["remove"] and parent:
        git(repo, "read-tree", "--empty")
    lines = b""
    for rel, data in spec["files"].items():
        blob = git(repo, "hash-object", "-w", "--stdin", data=data)
        lines += b"100644 blob " + blob + b"\t" + rel + b"\0"
    git(repo, "update-index", "-z", "--index-info", data=lines)
    tree = git(repo, "write-tree")
    who = spec["author"] + b" <" + spec["email"] + b"> " + str(spec["time"]).encode() + \
        b" " + spec["tz"]
    body = b"tree " + tree + b"\n" + (b"parent " + parent.encode() + b"\n" if parent else b"")
    body += b"author " + who + b"\ncommitter " + who + b"\n"
    if spec["encoding"]:
        body += b"encoding " + spec["encoding"].encode() + b"\n"
    body += b"\n" + spec["message"]
    sha = git(repo, "hash-object", "-t", "commit", "-w", "--stdin", data=body).decode()
    git(repo, "update-ref", "refs/heads/main", sha)
    return sha


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(commit, min_size=1, max_size=3))
def test_any_commit_git_accepts_is_ingested(commits):
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch) / "repo"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        db = Path(scratch) / "registry.db"
        parent = None
        for spec in commits:
            try:
                parent = add_commit(repo, spec, parent)
            except ValueError:
                reject()  # git itself refuses this commit or path
            assert ingest(repo, db).commits_added == 1
            assert ingest(repo, db).commits_added == 0
        conn = sqlite3.connect(db)
        conn.text_factory = bytes
        try:
            for table in ("commits", "services", "history", "status", "configs"):
                for row in conn.execute(f"select * from {table}"):
                    for value in row:
                        if isinstance(value, bytes):
                            value.decode("utf-8")  # valid text, no lone surrogates
            assert conn.execute("select count(*) from commits").fetchone()[0] == len(commits)
        finally:
            conn.close()
