"""GitProvider against real repositories: local, file:// and a real ``git daemon``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import GitRepo

from aureacore_db.gitprovider import (
    DirtyWorktree,
    Diverged,
    GitProvider,
    GitProviderError,
    GitTimeout,
    PushRejected,
    RefConflict,
    RemoteUnreachable,
    TransferFailed,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GitDaemon:
    """``git daemon`` serving a folder of bare repositories on 127.0.0.1."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def start(self, deadline_s: float = 15.0) -> GitDaemon:
        """Start the daemon and wait until it answers the Git protocol.

        A bare TCP connect is no proof: on a port in the ephemeral range, connecting
        while nobody listens can connect the socket to itself (a TCP self-connect),
        which then holds the port so the daemon fails to bind and exits. So readiness
        is "the daemon process is alive and a real ``git ls-remote`` through it
        answers"; a daemon that died (port taken) is started again until the deadline.
        """
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                self.proc = subprocess.Popen(
                    ["git", "daemon", "--reuseaddr", f"--base-path={self.base}",
                     "--export-all", "--enable=receive-pack", f"--port={self.port}",
                     "--listen=127.0.0.1", str(self.base)],
                    start_new_session=True, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
            if self._answers():
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"git daemon on port {self.port} did not answer within "
                           f"{deadline_s:g}s")

    def _answers(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(1)
            try:
                sock.connect(("127.0.0.1", self.port))
            except OSError:
                return False
            if sock.getsockname() == sock.getpeername():
                return False  # connected to itself: nobody listens
        probe = next((p for p in sorted(self.base.glob("*.git"))), None)
        if probe is None:
            return self.proc is not None and self.proc.poll() is None
        try:
            answer = subprocess.run(["git", "ls-remote", self.url(probe.name)],
                                    capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return answer.returncode == 0 and self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the daemon and the upload/receive-pack children it forked."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@pytest.fixture
def daemon(tmp_path: Path):
    base = tmp_path / "served"
    base.mkdir()
    server = GitDaemon(base).start()
    yield server
    server.kill()


def bare_from(repo: GitRepo, target: Path) -> Path:
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(target)], check=True)
    return target


def git(path: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=path, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_commit_only_given_files_and_compare_and_swap(repo: GitRepo):
    repo.service("a")
    first = repo.commit("a")
    provider = GitProvider(repo.path)
    repo.service("b")  # new, uncommitted
    (repo.path / "notes.txt").write_text("work in progress")
    git(repo.path, "add", "notes.txt")  # staged by the user: must stay out of our commit
    sha = provider.commit_changes("add b", ["services/platform/b.yaml"], "Reg <reg@x.org>")
    assert git(repo.path, "rev-parse", "HEAD") == sha
    assert git(repo.path, "log", "-1", "--format=%an <%ae>|%s") == "Reg <reg@x.org>|add b"
    assert git(repo.path, "show", "--name-only", "--format=", sha) == "services/platform/b.yaml"
    assert git(repo.path, "status", "--porcelain") == "A  notes.txt"
    assert provider.commit_changes("nothing", ["services/platform/b.yaml"]) is None
    # the branch moved since `first`: compare-and-swap refuses
    (repo.path / "services/platform/b.yaml").write_text("name: b\nversion: 2.0.0\n")
    with pytest.raises(RefConflict, match="moved"):
        provider.commit_changes("stale", ["services/platform/b.yaml"], expected_tip=first)
    assert git(repo.path, "rev-parse", "HEAD") == sha
    # a Git process holding the ref lock
    lock = repo.path / ".git/refs/heads/main.lock"
    lock.write_text("")
    with pytest.raises(RefConflict, match="another process"):
        provider.commit_changes("locked", ["services/platform/b.yaml"])
    lock.unlink()
    third = provider.commit_changes("b 2", ["services/platform/b.yaml"])
    assert git(repo.path, "rev-parse", "HEAD") == third
    assert "b 2" in git(repo.path, "reflog", "-1")
    git(repo.path, "fsck", "--no-progress")


def test_file_url_clone_pull_push(repo: GitRepo, tmp_path: Path):
    repo.service("a")
    repo.commit("a")
    bare = bare_from(repo, tmp_path / "remote.git")
    one = GitProvider(f"file://{bare}", workdir=tmp_path / "one", timeout=20)
    two = GitProvider(f"file://{bare}", workdir=tmp_path / "two", timeout=20)
    assert one.clone_repo() == tmp_path / "one" and two.clone_repo()
    (one.workdir / "services/platform/c.yaml").write_text("name: c\nversion: 1.0.0\n")
    sha = one.commit_changes("c", ["services/platform/c.yaml"])
    one.push()
    assert git(bare, "rev-parse", "main") == sha
    pulled = two.pull_changes()
    assert pulled.changed and pulled.new_tip == sha
    assert (two.workdir / "services/platform/c.yaml").exists()
    assert git(two.workdir, "status", "--porcelain") == ""


def test_pull_refuses_to_clobber_uncommitted_work(repo: GitRepo, tmp_path: Path):
    repo.service("a")
    repo.commit("a")
    bare = bare_from(repo, tmp_path / "remote.git")
    mine = GitProvider(str(bare), workdir=tmp_path / "mine")
    mine.clone_repo()
    other = GitProvider(str(bare), workdir=tmp_path / "other")
    other.clone_repo()
    (other.workdir / "services/platform/a.yaml").write_text("name: a\nversion: 2.0.0\n")
    other.commit_changes("a 2", ["services/platform/a.yaml"])
    other.push()
    local = mine.workdir / "services/platform/a.yaml"
    local.write_text("name: a\nversion: 3.0.0  # my uncommitted edit\n")
    before = mine.tip()
    with pytest.raises(DirtyWorktree, match="uncommitted"):
        mine.pull_changes()
    assert mine.tip() == before and "my uncommitted edit" in local.read_text()
    git(mine.workdir, "checkout", "--", "services/platform/a.yaml")
    assert mine.pull_changes().new_tip == other.tip()
    assert "2.0.0" in local.read_text()
    # local and remote both move: no fast-forward either way
    (mine.workdir / "x.txt").write_text("x")
    mine.commit_changes("x", ["x.txt"])
    (other.workdir / "y.txt").write_text("y")
    other.commit_changes("y", ["y.txt"])
    other.push()
    with pytest.raises(Diverged):
        mine.pull_changes()


def test_git_daemon_push_rejected_then_retry(repo: GitRepo, daemon: GitDaemon,
                                             tmp_path: Path):
    repo.service("a")
    repo.commit("a")
    bare_from(repo, daemon.base / "configs.git")
    url = daemon.url("configs.git")
    one = GitProvider(url, workdir=tmp_path / "one", timeout=20)
    two = GitProvider(url, workdir=tmp_path / "two", timeout=20)
    one.clone_repo()
    two.clone_repo()
    (one.workdir / "one.txt").write_text("1")
    pushed = one.commit_changes("one", ["one.txt"])
    one.push()
    (two.workdir / "two.txt").write_text("2")
    two.commit_changes("two", ["two.txt"])
    with pytest.raises(PushRejected, match="fast-forward"):
        two.push()
    assert git(daemon.base / "configs.git", "rev-parse", "main") == pushed
    with pytest.raises(Diverged):
        two.pull_changes()


def test_unreachable_remotes(tmp_path: Path):
    closed = GitProvider(f"git://127.0.0.1:{free_port()}/x.git", workdir=tmp_path / "a",
                         timeout=10)
    with pytest.raises(RemoteUnreachable, match="Connection refused|failed to connect"):
        closed.clone_repo()
    assert not (tmp_path / "a").exists()
    missing = GitProvider(f"file://{tmp_path}/nope.git", workdir=tmp_path / "b", timeout=10)
    with pytest.raises(RemoteUnreachable):
        missing.clone_repo()


def test_silent_server_times_out(tmp_path: Path):
    """A server that accepts and never answers: a clear GitTimeout at the deadline."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        provider = GitProvider(f"git://127.0.0.1:{server.getsockname()[1]}/x.git",
                               workdir=tmp_path / "w", timeout=1.5)
        started = time.monotonic()
        with pytest.raises(GitTimeout, match="no answer within 1.5s"):
            provider.clone_repo()
        assert time.monotonic() - started < 5
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_daemon_killed_mid_fetch_then_retry(repo: GitRepo, daemon: GitDaemon,
                                            tmp_path: Path):
    repo.service("a")
    repo.commit("a")
    bare = bare_from(repo, daemon.base / "configs.git")
    mine = GitProvider(daemon.url("configs.git"), workdir=tmp_path / "mine", timeout=30)
    mine.clone_repo()
    before = mine.tip()
    # a big, incompressible commit: far more than the socket buffers hold
    repo.write("blob.bin", os.urandom(24 * 1024 * 1024))
    big = repo.commit("big")
    git(repo.path, "push", "-q", str(bare), "main")
    killed = []

    def progress(stats) -> None:
        if not killed and stats.received_bytes > 0:
            killed.append(stats.received_bytes)
            daemon.kill()

    mine.progress = progress
    with pytest.raises((TransferFailed, GitProviderError)) as info:
        mine.pull_changes()
    assert killed and not isinstance(info.value, GitTimeout)
    assert mine.tip() == before and not (mine.workdir / "blob.bin").exists()
    mine.progress = None
    daemon.start()
    assert mine.pull_changes().new_tip == big
    assert (mine.workdir / "blob.bin").stat().st_size == 24 * 1024 * 1024
