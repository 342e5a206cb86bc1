"""Git remotes with credentials, against real servers on 127.0.0.1: OpenSSH's sshd
(key pairs, known_hosts) and git http-backend behind lighttpd (TLS from a throwaway CA,
basic auth). Ingest (clone, then fetch), register, rollback, sync and push, with good
and bad credentials; every failure is one clear line with its own exit code."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GitRepo
from gitservers import (
    HTTP_BACKEND,
    LIGHTTPD,
    SSHD,
    HttpsServer,
    SshServer,
    bare_repo,
    missing,
)

CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not k.startswith("AUREACORE_") and k != "SSH_AUTH_SOCK"}

needs_sshd = pytest.mark.skipif(bool(missing(SSHD)),
                                reason=f"OpenSSH server not installed ({SSHD}); "
                                       "apt-get install openssh-server (.ci/run does)")
needs_https = pytest.mark.skipif(bool(missing(LIGHTTPD, HTTP_BACKEND)),
                                 reason="lighttpd or git http-backend not installed; "
                                        "apt-get install lighttpd git (.ci/run does)")


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aureacore_db.cli", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**CLEAN_ENV, **(env or {})})


def services(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("select id, version from services where removed = 0"))


def service_file(path: Path, name: str, version: str) -> Path:
    path.write_text(f"name: {name}\nnamespace: platform\nversion: {version}\n")
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> GitRepo:
    repo = GitRepo(tmp_path_factory.mktemp("src") / "configs")
    repo.service("auth-service", version="1.0.0")
    repo.commit("auth 1.0.0")
    repo.service("auth-service", version="2.0.0")
    repo.commit("auth 2.0.0")
    return repo


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if missing(SSHD):
        pytest.skip(f"OpenSSH server not installed ({SSHD})")
    server = SshServer(tmp_path_factory.mktemp("sshd"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def https(tmp_path_factory):
    if missing(LIGHTTPD, HTTP_BACKEND):
        pytest.skip("lighttpd or git http-backend not installed")
    server = HttpsServer(tmp_path_factory.mktemp("https"))
    yield server
    server.close()


@pytest.fixture
def ssh_remote(sshd, source, tmp_path):
    """A fresh bare repository served over SSH, its URL and a trusting environment."""
    bare = bare_repo(tmp_path / "remote.git", source.path)
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    env = {"AUREACORE_SSH_KEY": str(sshd.client_key), "AUREACORE_KNOWN_HOSTS": str(known)}
    return bare, sshd.url(bare), env


@pytest.fixture
def https_remote(https, source, tmp_path):
    name = f"{tmp_path.name}.git"
    bare = bare_repo(https.git_root / name, source.path)
    env = {"AUREACORE_GIT_TOKEN": https.password, "AUREACORE_GIT_USERNAME": https.user,
           "AUREACORE_CA_BUNDLE": str(https.ca_file)}
    return bare, https.url(name), env


def git_log(bare: Path) -> list[str]:
    return subprocess.run(["git", "-C", str(bare), "log", "--format=%s", "main"],
                          capture_output=True, text=True, check=True).stdout.splitlines()


def assert_clean_failure(done: subprocess.CompletedProcess[str], code: int, *words: str,
                         secrets: tuple[str, ...] = ()) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("Error: "), done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
    for secret in secrets:
        assert secret not in done.stderr + done.stdout


# -- SSH -------------------------------------------------------------------------------
@needs_sshd
def test_ssh_ingest_register_rollback_sync_with_a_key_file(ssh_remote, tmp_path):
    bare, url, env = ssh_remote
    db = tmp_path / "registry.db"
    done = cli("ingest", url, "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    assert services(db) == {"platform/auth-service": "2.0.0"}

    new = service_file(tmp_path / "billing.yaml", "billing", "1.0.0")
    done = cli("register", str(new), "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    assert git_log(bare)[0] == "Register platform/billing 1.0.0"  # pushed over SSH

    first = subprocess.run(["git", "-C", str(bare), "rev-list", "--max-parents=0", "main"],
                           capture_output=True, text=True, check=True).stdout.strip()
    done = cli("rollback", "platform/auth-service", "--to", first, "--db", str(db), "--yes",
               "--actor", "Alice <alice@example.com>", env=env)
    assert done.returncode == 0, done.stderr
    assert "pushed" in done.stdout
    author = subprocess.run(["git", "-C", str(bare), "log", "-1", "--format=%an <%ae>",
                             "main"], capture_output=True, text=True, check=True).stdout
    assert author.strip() == "Alice <alice@example.com>"
    assert services(db)["platform/auth-service"] == "1.0.0"

    done = cli("sync", "--db", str(db), env=env)  # nothing new: pulls only
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("0 new commit(s)")
    with sqlite3.connect(db) as conn:
        stored = " ".join(str(v) for row in conn.execute("select * from aureacore_meta")
                          for v in row)
    assert str(sshd_key := env["AUREACORE_SSH_KEY"]) not in stored and sshd_key


@needs_sshd
def test_ssh_scp_like_url_and_cli_options(sshd, source, tmp_path):
    """``user@host:path`` needs port 22, so the scp-like form is checked by parsing, and
    the options (not the environment) carry the key and known_hosts here."""
    from aureacore_db.credentials import parse_remote
    from aureacore_db.gitsource import is_url

    assert is_url("git@github.com:team/configs.git")
    remote = parse_remote("git@github.com:team/configs.git")
    assert (remote.scheme, remote.user, remote.host, remote.path) == (
        "ssh", "git", "github.com", "team/configs.git")
    assert not is_url("./a:b") and not is_url("folder/x@y:z")
    bare = bare_repo(tmp_path / "remote.git", source.path)
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    done = cli("ingest", sshd.url(bare), "--db", str(tmp_path / "r.db"), "--ssh-key",
               str(sshd.client_key), "--known-hosts", str(known))
    assert done.returncode == 0, done.stderr


@needs_sshd
def test_ssh_wrong_key_is_authentication_refused(ssh_remote, sshd, tmp_path):
    _, url, env = ssh_remote
    done = cli("ingest", url, "--db", str(tmp_path / "r.db"),
               env={**env, "AUREACORE_SSH_KEY": str(sshd.other_key)})
    assert_clean_failure(done, 3, "authentication refused", "--ssh-key")


@needs_sshd
def test_ssh_no_key_and_no_agent_says_so(ssh_remote, tmp_path):
    _, url, env = ssh_remote
    del env["AUREACORE_SSH_KEY"]
    done = cli("ingest", url, "--db", str(tmp_path / "r.db"), env=env)
    assert_clean_failure(done, 3, "ssh-agent")


@needs_sshd
def test_ssh_agent_key(ssh_remote, sshd, tmp_path):
    _, url, env = ssh_remote
    del env["AUREACORE_SSH_KEY"]
    agent = subprocess.run(["ssh-agent", "-s", "-a", str(tmp_path / "agent.sock")],
                           capture_output=True, text=True, check=True).stdout
    pid = agent.split("SSH_AGENT_PID=")[1].split(";")[0]
    try:
        env["SSH_AUTH_SOCK"] = str(tmp_path / "agent.sock")
        subprocess.run(["ssh-add", "-q", str(sshd.client_key)], check=True,
                       env={**os.environ, **env}, capture_output=True)
        done = cli("ingest", url, "--db", str(tmp_path / "r.db"), env=env)
        assert done.returncode == 0, done.stderr
    finally:
        subprocess.run(["kill", pid], check=False)


@needs_sshd
def test_ssh_unknown_host_is_refused_then_accepted_on_request(ssh_remote, sshd, tmp_path):
    _, url, env = ssh_remote
    known = Path(env["AUREACORE_KNOWN_HOSTS"])
    known.write_text("")
    db = tmp_path / "r.db"
    done = cli("ingest", url, "--db", str(db), env=env)
    assert_clean_failure(done, 4, "unknown SSH host", "--accept-new-host-key")
    assert not db.exists() or services(db) == {}

    done = cli("ingest", url, "--db", str(db), "--accept-new-host-key", env=env)
    assert done.returncode == 0, done.stderr
    assert known.read_text().split()[:2] == sshd.known_hosts_line().split()[:2]
    done = cli("sync", "--db", str(db), env=env)  # recorded: no opt-in needed any more
    assert done.returncode == 0, done.stderr


@needs_sshd
def test_ssh_changed_host_key_is_refused_even_with_accept_new(ssh_remote, sshd, tmp_path):
    _, url, env = ssh_remote
    other = sshd.other_key.with_suffix(".pub").read_text().split()
    Path(env["AUREACORE_KNOWN_HOSTS"]).write_text(
        f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
    done = cli("ingest", url, "--db", str(tmp_path / "r.db"), "--accept-new-host-key",
               env=env)
    assert_clean_failure(done, 5, "CHANGED")


@needs_sshd
def test_ssh_repository_not_found(ssh_remote, sshd, tmp_path):
    _, _, env = ssh_remote
    done = cli("ingest", sshd.url(tmp_path / "nope.git"), "--db", str(tmp_path / "r.db"),
               env=env)
    assert_clean_failure(done, 7, "repository not found")


def test_network_unreachable_has_its_own_code(tmp_path):
    from gitservers import free_port

    port = free_port()  # nothing listens there
    done = cli("ingest", f"https://127.0.0.1:{port}/git/x.git", "--db",
               str(tmp_path / "r.db"))
    assert_clean_failure(done, 8, "unreachable")


# -- HTTPS -----------------------------------------------------------------------------
@needs_https
def test_https_ingest_register_rollback_sync_with_a_token(https_remote, tmp_path):
    bare, url, env = https_remote
    db = tmp_path / "registry.db"
    done = cli("ingest", url, "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    assert services(db) == {"platform/auth-service": "2.0.0"}
    new = service_file(tmp_path / "billing.yaml", "billing", "1.0.0")
    done = cli("register", str(new), "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    assert git_log(bare)[0] == "Register platform/billing 1.0.0"
    first = subprocess.run(["git", "-C", str(bare), "rev-list", "--max-parents=0", "main"],
                           capture_output=True, text=True, check=True).stdout.strip()
    done = cli("rollback", "platform/auth-service", "--to", first, "--db", str(db), "--yes",
               env=env)
    assert done.returncode == 0, done.stderr
    assert git_log(bare)[0].startswith("Roll back platform/auth-service")
    done = cli("sync", "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    everything = db.read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".db")
    assert env["AUREACORE_GIT_TOKEN"].encode() not in everything


@needs_https
def test_https_bad_token_is_authentication_refused(https_remote, tmp_path):
    _, url, env = https_remote
    done = cli("ingest", url, "--db", str(tmp_path / "r.db"),
               env={**env, "AUREACORE_GIT_TOKEN": "wrong-token-123"})
    assert_clean_failure(done, 3, "authentication refused", "AUREACORE_GIT_TOKEN",
                         secrets=("wrong-token-123",))


@needs_https
def test_https_credentials_in_the_url_are_never_shown(https_remote, https, tmp_path):
    _, url, env = https_remote
    del env["AUREACORE_GIT_TOKEN"]
    secret_url = url.replace("https://", f"https://{https.user}:not-the-pass-77@")
    done = cli("ingest", secret_url, "--db", str(tmp_path / "r.db"), env=env)
    assert_clean_failure(done, 3, "authentication refused", secrets=("not-the-pass-77",))


def files_holding(folder: Path, secret: str) -> list[str]:
    """Every file under ``folder`` (config, logs/, FETCH_HEAD, packed-refs, objects, ...)
    whose bytes hold ``secret``."""
    return [str(p.relative_to(folder)) for p in sorted(folder.rglob("*"))
            if p.is_file() and secret.encode() in p.read_bytes()]


@needs_https
def test_https_password_in_the_url_is_given_to_git_but_never_kept(https_remote, https,
                                                                   tmp_path):
    """The URL's user:password authenticates that run (in memory only): the clone's
    config, reflogs and FETCH_HEAD hold a URL without them. A later run without them
    in the URL needs AUREACORE_GIT_TOKEN (or a credential helper), and says so."""
    _, url, env = https_remote
    del env["AUREACORE_GIT_TOKEN"], env["AUREACORE_GIT_USERNAME"]
    home = tmp_path / "home"
    home.mkdir()
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1")  # no credential helper
    secret_url = url.replace("https://", f"https://{https.user}:{https.password}@")
    db = tmp_path / "registry.db"
    cache = tmp_path / "registry.db.repos"
    for _ in range(2):  # the clone, then a fetch into it
        done = cli("ingest", secret_url, "--db", str(db), env=env)
        assert done.returncode == 0, done.stderr
        assert services(db) == {"platform/auth-service": "2.0.0"}
        assert files_holding(cache, https.password) == []
        assert https.password not in done.stdout + done.stderr
    (work,) = cache.iterdir()
    origin = subprocess.run(["git", "-C", str(work), "remote", "get-url", "origin"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert origin == url  # no userinfo at all (the user name may be a token too)

    with sqlite3.connect(db) as conn:
        stored = conn.execute("select value from aureacore_meta where key = 'source'"
                              ).fetchone()[0]
    assert https.password not in stored
    done = cli("ingest", stored, "--db", str(db), env=env)
    assert_clean_failure(done, 3, "AUREACORE_GIT_TOKEN", "credential helper")
    assert done.stderr.count("127.0.0.1") == 1, done.stderr  # the URL said once
    done = cli("ingest", stored, "--db", str(db),
               env={**env, "AUREACORE_GIT_TOKEN": https.password,
                    "AUREACORE_GIT_USERNAME": https.user})
    assert done.returncode == 0, done.stderr
    assert files_holding(cache, https.password) == []


@needs_https
def test_a_clone_keeping_a_password_in_its_origin_url_is_cleaned(https_remote, https,
                                                                 tmp_path):
    """A clone made by an earlier release (origin URL with user:password, reflog lines
    naming it) loses them on the next ingest, which still authenticates."""
    _, url, env = https_remote
    db = tmp_path / "registry.db"
    done = cli("ingest", url, "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    cache = tmp_path / "registry.db.repos"
    (work,) = cache.iterdir()
    old_url = url.replace("https://", f"https://{https.user}:{https.password}@")
    subprocess.run(["git", "-C", str(work), "remote", "set-url", "origin", old_url],
                   check=True)
    for log in (work / ".git" / "logs").rglob("*"):
        if log.is_file():
            log.write_text(log.read_text().replace(url, old_url))
    assert files_holding(cache, https.password)  # the state an earlier release left
    done = cli("ingest", url, "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    assert files_holding(cache, https.password) == []
    reflogs = "".join(p.read_text() for p in (work / ".git" / "logs").rglob("*")
                      if p.is_file())
    assert f"clone: from {url}" in reflogs  # the line is kept, its userinfo is not


@needs_https
def test_https_git_credential_helper(https_remote, https, tmp_path):
    """No token in the environment: Git's credential helper (a store file) answers."""
    _, url, env = https_remote
    del env["AUREACORE_GIT_TOKEN"], env["AUREACORE_GIT_USERNAME"]
    home = tmp_path / "home"
    home.mkdir()
    store = home / "creds"
    store.write_text(f"https://{https.user}:{https.password}@127.0.0.1:{https.port}\n")
    (home / ".gitconfig").write_text(f"[credential]\n\thelper = store --file {store}\n")
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1")
    db = tmp_path / "r.db"
    done = cli("ingest", url, "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    assert services(db) == {"platform/auth-service": "2.0.0"}


@needs_https
def test_https_no_credentials_at_all(https_remote, tmp_path):
    _, url, env = https_remote
    del env["AUREACORE_GIT_TOKEN"]
    home = tmp_path / "home"
    home.mkdir()
    done = cli("ingest", url, "--db", str(tmp_path / "r.db"),
               env={**env, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"})
    assert_clean_failure(done, 3, "AUREACORE_GIT_TOKEN", "credential helper")
    assert done.stderr.count("127.0.0.1") == 1, done.stderr  # the URL said once


@needs_https
def test_https_wrong_ca_is_refused(https_remote, https, tmp_path):
    _, url, env = https_remote
    for bundle in (None, str(https.other_ca)):
        run_env = {**env}
        if bundle is None:
            del run_env["AUREACORE_CA_BUNDLE"]
        else:
            run_env["AUREACORE_CA_BUNDLE"] = bundle
        done = cli("ingest", url, "--db", str(tmp_path / "r.db"), env=run_env)
        assert_clean_failure(done, 6, "not trusted", "--ca-bundle")
    done = cli("ingest", url, "--db", str(tmp_path / "r.db"), "--ca-bundle",
               str(https.ca_file), env={k: v for k, v in env.items()
                                        if k != "AUREACORE_CA_BUNDLE"})
    assert done.returncode == 0, done.stderr


@needs_https
def test_https_repository_not_found(https_remote, https, tmp_path):
    _, _, env = https_remote
    done = cli("ingest", https.url("missing.git"), "--db", str(tmp_path / "r.db"), env=env)
    assert_clean_failure(done, 7, "repository not found")


# -- sync pulls; push pushes -----------------------------------------------------------
def clone_of(url: str, db: Path) -> GitRepo:
    from aureacore_db.gitsource import clone_dir

    work = GitRepo.__new__(GitRepo)
    work.path, work._tick = clone_dir(url, db), 100
    work.git("config", "user.name", "Local Author")
    work.git("config", "user.email", "local@example.com")
    return work


def push_from_elsewhere(bare: Path, tmp_path: Path, rel: str, text: str) -> str:
    other = tmp_path / "elsewhere"
    subprocess.run(["git", "clone", "-q", str(bare), str(other)], check=True)
    repo = GitRepo.__new__(GitRepo)
    repo.path, repo._tick = other, 200
    repo.git("config", "user.name", "Bob")
    repo.git("config", "user.email", "bob@example.com")
    repo.write(rel, text)
    sha = repo.commit(f"remote change of {rel}")
    repo.git("push", "-q", "origin", "main")
    return sha


@needs_sshd
def test_sync_never_pushes_and_push_does(ssh_remote, tmp_path):
    bare, url, env = ssh_remote
    db = tmp_path / "registry.db"
    assert cli("ingest", url, "--db", str(db), env=env).returncode == 0
    work = clone_of(url, db)
    work.service("billing", version="1.0.0")
    local = work.commit("billing, committed while the remote was down")
    before = git_log(bare)

    done = cli("sync", "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    assert git_log(bare) == before  # sync pulled only
    assert "1 local commit(s) not pushed" in done.stderr and local[:12] in done.stderr

    done = cli("push", "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    assert f"pushed 1 commit(s): {local[:12]}" in done.stdout
    assert git_log(bare)[0] == "billing, committed while the remote was down"
    assert services(db)["platform/billing"] == "1.0.0"
    assert cli("push", "--db", str(db), env=env).stdout.startswith("nothing to push")


@needs_https
def test_push_replays_local_commits_onto_a_moved_remote(https_remote, tmp_path):
    bare, url, env = https_remote
    db = tmp_path / "registry.db"
    assert cli("ingest", url, "--db", str(db), env=env).returncode == 0
    work = clone_of(url, db)
    work.service("billing", version="1.0.0")
    local = work.commit("local: billing")
    theirs = push_from_elsewhere(bare, tmp_path, "services/platform/users.yaml",
                                 "name: users\nnamespace: platform\nversion: 3.0.0\n")
    done = cli("sync", "--db", str(db), env=env)  # the remote moved: sync still only pulls
    assert done.returncode == 12, done.stderr
    assert local[:12] in done.stderr and theirs[:12] in done.stderr
    assert git_log(bare)[0] == "remote change of services/platform/users.yaml"

    done = cli("push", "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    assert "1 replayed" in done.stdout
    log = subprocess.run(["git", "-C", str(bare), "log", "--format=%H %s %an", "main"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert log[0].endswith("local: billing Test Author") and not log[0].startswith(local)
    assert log[1].startswith(f"{theirs} remote change of services/platform/users.yaml")
    assert services(db) == {"platform/auth-service": "2.0.0", "platform/billing": "1.0.0",
                            "platform/users": "3.0.0"}


@needs_sshd
def test_push_with_both_sides_changing_a_file_reports_diverged(ssh_remote, tmp_path):
    bare, url, env = ssh_remote
    db = tmp_path / "registry.db"
    assert cli("ingest", url, "--db", str(db), env=env).returncode == 0
    work = clone_of(url, db)
    rel = "services/platform/auth-service.yaml"
    work.write(rel, "name: auth-service\nnamespace: platform\nversion: 2.1.0\n")
    local = work.commit("local: auth 2.1.0")
    theirs = push_from_elsewhere(bare, tmp_path, rel,
                                 "name: auth-service\nnamespace: platform\nversion: 2.2.0\n")
    done = cli("push", "--db", str(db), env=env)
    assert_clean_failure(done, 12, "diverged", local[:12], theirs[:12], rel,
                         "'local: auth 2.1.0'")
    assert work.head() == local  # nothing lost on either side
    assert subprocess.run(["git", "-C", str(bare), "rev-parse", "main"], capture_output=True,
                          text=True).stdout.strip() == theirs


def test_sync_with_a_non_bare_origin_pulls(tmp_path):
    """A working clone whose origin is another working repository (not bare): sync
    only pulls, so the checked-out branch of origin is never pushed to."""
    origin = GitRepo(tmp_path / "origin")
    origin.service("auth-service")
    origin.commit("auth")
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(origin.path), str(work)], check=True)
    db = tmp_path / "registry.db"
    assert cli("ingest", str(work), "--db", str(db)).returncode == 0
    clone = GitRepo.__new__(GitRepo)
    clone.path, clone._tick = work, 50
    clone.git("config", "user.name", "L")
    clone.git("config", "user.email", "l@example.com")
    clone.service("billing")
    clone.commit("local billing")
    origin.service("users")
    origin.commit("origin users")  # different file: sync reports, push would replay
    done = cli("sync", "--db", str(db))
    assert done.returncode == 12, done.stderr
    assert "Traceback" not in done.stderr and "diverged" in done.stderr


# -- the rollback author ---------------------------------------------------------------
def test_actor_signature_is_the_same_person_whichever_way():
    from aureacore_db.rollback import actor_signature, normalize_actor

    ways = [normalize_actor("Alice <alice@example.com>"),  # CLI --actor
            {"id": "alice", "name": "Alice", "email": "alice@example.com"},  # web actor
            {"id": "Alice <alice@example.com>"}]  # an id written as Git writes authors
    assert {(actor_signature(a).name, actor_signature(a).email) for a in ways} == {
        ("Alice", "alice@example.com")}
    plain = actor_signature(normalize_actor("alice"))
    assert (plain.name, plain.email) == ("alice", "alice@aureacore-db")
    with pytest.raises(ValueError, match="not like"):
        normalize_actor("Alice <alice@example.com")


def test_rollback_help_says_who_the_author_is_and_bad_actor_is_clean(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Carol Q\n\temail = carol@example.com\n")
    done = cli("rollback", "--help", env={"HOME": str(home)}, cwd=tmp_path)
    assert "Carol Q <carol@example.com>" in " ".join(done.stdout.split())
    source = GitRepo(tmp_path / "repo")
    source.service("auth-service")
    first = source.commit("one")
    source.service("auth-service", version="2.0.0")
    source.commit("two")
    db = tmp_path / "r.db"
    assert cli("ingest", str(source.path), "--db", str(db)).returncode == 0
    done = cli("rollback", "platform/auth-service", "--to", first, "--db", str(db), "--yes",
               "--actor", "Alice <alice@example.com")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "not like 'Name <email>'" in done.stderr


def test_split_userinfo_gives_git_a_url_without_secrets():
    from aureacore_db.urls import split_userinfo

    assert split_userinfo("https://alice:p%40ss@host:8443/team/configs.git?private_token=x#f"
                          ) == ("https://host:8443/team/configs.git", "alice", "p@ss")
    assert split_userinfo("https://ghp_TOKEN@github.com/team/configs.git") == (
        "https://github.com/team/configs.git", "ghp_TOKEN", None)  # a token as the user
    assert split_userinfo("https://***@host/configs.git") == (  # a source as stored
        "https://host/configs.git", None, None)
    assert split_userinfo("ssh://git:pw@host:2222/configs.git") == (  # SSH: keys only
        "ssh://git@host:2222/configs.git", "git", "pw")
    for as_is in ("git@host:team/configs.git", "/srv/configs", "file:///srv/configs"):
        assert split_userinfo(as_is) == (as_is, None, None)


@needs_https
def test_a_token_in_the_query_string_is_not_given_to_git(https_remote, https, tmp_path):
    _, url, env = https_remote
    del env["AUREACORE_GIT_TOKEN"]
    home = tmp_path / "home"
    home.mkdir()
    done = cli("ingest", f"{url}?private_token={https.password}", "--db",
               str(tmp_path / "r.db"), env={**env, "HOME": str(home),
                                           "GIT_CONFIG_NOSYSTEM": "1"})
    assert_clean_failure(done, 3, "query string is not given to Git", "AUREACORE_GIT_TOKEN",
                         secrets=(https.password,))
    assert files_holding(tmp_path, https.password) == []


@needs_https
def test_a_users_own_clone_keeps_its_origin_url(https_remote, https, tmp_path):
    """rollback --repo on the user's own working clone: its origin URL (with a password
    the user put there) is theirs, left as it is, and still authenticates the push."""
    bare, url, env = https_remote
    del env["AUREACORE_GIT_TOKEN"], env["AUREACORE_GIT_USERNAME"]
    home = tmp_path / "home"
    home.mkdir()
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1")
    own = tmp_path / "own"
    subprocess.run(["git", "clone", "-q", str(bare), str(own)], check=True)
    secret_url = url.replace("https://", f"https://{https.user}:{https.password}@")
    subprocess.run(["git", "-C", str(own), "remote", "set-url", "origin", secret_url],
                   check=True)
    db = tmp_path / "r.db"
    assert cli("ingest", str(own), "--db", str(db), env=env).returncode == 0
    first = subprocess.run(["git", "-C", str(own), "rev-list", "--max-parents=0", "main"],
                           capture_output=True, text=True, check=True).stdout.strip()
    done = cli("rollback", "platform/auth-service", "--to", first, "--db", str(db),
               "--repo", str(own), "--yes", env=env)
    assert done.returncode == 0, done.stderr
    assert git_log(bare)[0].startswith("Roll back platform/auth-service")  # pushed
    origin = subprocess.run(["git", "-C", str(own), "remote", "get-url", "origin"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert origin == secret_url
