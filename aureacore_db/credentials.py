"""Credentials for Git remotes, kept the way Git users already keep them.

* **SSH** (``ssh://user@host:port/path`` or scp-like ``user@host:path``): a key file
  (``AUREACORE_SSH_KEY``, passphrase in ``AUREACORE_SSH_KEY_PASSPHRASE``) or else the
  running ssh-agent. The host key is checked by libgit2 against ``known_hosts``
  (``~/.ssh/known_hosts``, or ``AUREACORE_KNOWN_HOSTS``); an unknown host is refused
  unless ``AUREACORE_ACCEPT_NEW_HOST_KEY=1`` (``--accept-new-host-key``), which records
  the key first, like ssh's ``StrictHostKeyChecking=accept-new``; a changed key is
  always refused.
* **HTTPS**: a token from ``AUREACORE_GIT_TOKEN`` (user ``AUREACORE_GIT_USERNAME``,
  default ``x-access-token``, which GitHub and Gitea accept; GitLab takes ``oauth2``),
  else the username/password of the URL the user passed (held here, in memory, for
  that run: Git itself only ever gets the URL without them, see
  :func:`aureacore_db.urls.split_userinfo`), else Git's credential helpers
  (``git credential fill``, never prompting). A custom CA bundle comes from
  ``AUREACORE_CA_BUNDLE`` (``--ca-bundle``).

Secrets live in this object only (``repr`` hides them); they are never stored, logged
or put into a message.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pygit2
from pygit2.enums import CredentialType

ENV_SSH_KEY = "AUREACORE_SSH_KEY"
ENV_SSH_PASSPHRASE = "AUREACORE_SSH_KEY_PASSPHRASE"
ENV_KNOWN_HOSTS = "AUREACORE_KNOWN_HOSTS"
ENV_ACCEPT_NEW = "AUREACORE_ACCEPT_NEW_HOST_KEY"
ENV_TOKEN = "AUREACORE_GIT_TOKEN"
ENV_USERNAME = "AUREACORE_GIT_USERNAME"
ENV_CA_BUNDLE = "AUREACORE_CA_BUNDLE"
DEFAULT_TOKEN_USER = "x-access-token"

_HOMEDIR_LOCK = threading.Lock()  # libgit2's home folder is one per process


@dataclass(frozen=True)
class Remote:
    """Where a Git URL points: scheme (ssh / https / ...), user, host and port."""

    scheme: str
    host: str
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    path: str = ""

    @property
    def known_hosts_name(self) -> str:
        """The host as known_hosts names it: ``host``, or ``[host]:port`` off port 22."""
        return self.host if self.port in (None, 22) else f"[{self.host}]:{self.port}"


def parse_remote(url: str) -> Remote | None:
    """The parts of a Git URL (``ssh://``, ``https://``, scp-like ``user@host:path``);
    None for a local path or ``file://`` URL."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme == "file" or not parts.hostname:
            return None
        return Remote(parts.scheme, parts.hostname, parts.port,
                      unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password else None, parts.path)
    if is_scp_like(url):
        userhost, path = url.split(":", 1)
        user, _, host = userhost.rpartition("@")
        return Remote("ssh", host, None, user or None, None, path)
    return None


def is_scp_like(url: str) -> bool:
    """``user@host:path`` (Git's scp-like SSH syntax)."""
    if "://" in url or ":" not in url:
        return False
    head = url.split(":", 1)[0]
    return "@" in head and "/" not in head and bool(head.rpartition("@")[2])


class HostKeyError(Exception):
    """The SSH host key could not be checked or recorded (see ``kind``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "unknown", "changed" or "unreachable"


@dataclass(frozen=True)
class Credentials:
    """What to authenticate with; :meth:`from_env` reads the environment."""

    ssh_key: Path | None = None
    ssh_passphrase: str | None = field(default=None, repr=False)
    known_hosts: Path | None = None
    accept_new_host_key: bool = False
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    ca_bundle: Path | None = None
    credential_helper: bool = True
    url_username: str | None = None  # the userinfo of the URL passed for this run
    url_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Credentials:
        env = os.environ if environ is None else environ

        def path(name: str) -> Path | None:
            value = env.get(name)
            return Path(value).expanduser() if value else None

        return cls(ssh_key=path(ENV_SSH_KEY), ssh_passphrase=env.get(ENV_SSH_PASSPHRASE),
                   known_hosts=path(ENV_KNOWN_HOSTS),
                   accept_new_host_key=env.get(ENV_ACCEPT_NEW, "").lower()
                   in ("1", "true", "yes"),
                   token=env.get(ENV_TOKEN) or None, username=env.get(ENV_USERNAME) or None,
                   ca_bundle=path(ENV_CA_BUNDLE))

    def with_login(self, username: str | None, password: str | None) -> Credentials:
        """These credentials with the user name and password from a URL's userinfo."""
        if username is None and password is None:
            return self
        return replace(self, url_username=username, url_password=password)

    def with_options(self, **options: object) -> Credentials:
        """These credentials with the options that are set (not None) replaced."""
        return replace(self, **{k: v for k, v in options.items() if v is not None})

    @property
    def known_hosts_file(self) -> Path:
        return self.known_hosts or Path("~/.ssh/known_hosts").expanduser()

    # -- what libgit2 asks for --------------------------------------------------------
    def for_ssh(self, username: str) -> pygit2.Keypair | pygit2.KeypairFromAgent:
        if self.ssh_key is not None:
            if not self.ssh_key.is_file():
                raise FileNotFoundError(f"SSH key {self.ssh_key} does not exist "
                                        f"(--ssh-key / {ENV_SSH_KEY})")
            public = self.ssh_key.with_name(self.ssh_key.name + ".pub")
            return pygit2.Keypair(username, str(public) if public.is_file() else None,
                                  str(self.ssh_key), self.ssh_passphrase or "")
        return pygit2.KeypairFromAgent(username)

    def for_https(self, url: str, username: str | None) -> pygit2.UserPass | None:
        """A token from the environment, the password of the URL passed for this run
        (:meth:`with_login`), or a credential helper's."""
        remote = parse_remote(url)
        username = username or self.url_username
        if self.token:
            return pygit2.UserPass(self.username or username or DEFAULT_TOKEN_USER,
                                   self.token)
        if self.url_password:
            return pygit2.UserPass(username or "", self.url_password)
        if self.credential_helper and remote is not None:
            found = credential_fill(remote, username or self.username)
            if found is not None:
                return pygit2.UserPass(*found)
        return None

    # -- host keys ---------------------------------------------------------------------
    def prepare_ssh(self, remote: Remote, timeout: float) -> None:
        """With ``accept_new_host_key``: record the host key of a host not yet known
        (a known host keeps its recorded key; libgit2 then checks the connection)."""
        if not self.accept_new_host_key or known_host(self.known_hosts_file, remote):
            return
        key_type, key_b64 = fetch_host_key(remote, timeout)
        target = self.known_hosts_file
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        prefix = "" if not target.exists() or target.read_bytes().endswith(b"\n") \
            or target.stat().st_size == 0 else "\n"
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(f"{prefix}{remote.known_hosts_name} {key_type} {key_b64}\n")

    @contextmanager
    def host_key_checks(self) -> Iterator[None]:
        """libgit2 reads ``<home>/.ssh/known_hosts``: with another known_hosts file, point
        its home at a folder holding that file for the duration (one at a time)."""
        if self.known_hosts is None:
            yield
            return
        import tempfile

        with _HOMEDIR_LOCK, tempfile.TemporaryDirectory(prefix="aureacore-ssh-") as home:
            (Path(home) / ".ssh").mkdir()
            if self.known_hosts.is_file():
                (Path(home) / ".ssh" / "known_hosts").write_bytes(
                    self.known_hosts.read_bytes())
            before = pygit2.settings.homedir
            pygit2.settings.homedir = home
            try:
                yield
            finally:
                pygit2.settings.homedir = before

    def apply_ca_bundle(self) -> None:
        """Trust ``ca_bundle`` too (process-wide, in addition to the system's CAs)."""
        if self.ca_bundle is not None:
            if not self.ca_bundle.is_file():
                raise FileNotFoundError(f"CA bundle {self.ca_bundle} does not exist "
                                        f"(--ca-bundle / {ENV_CA_BUNDLE})")
            pygit2.settings.set_ssl_cert_locations(str(self.ca_bundle), None)


def default_ssh_user() -> str:
    return getpass.getuser()


def credential_fill(remote: Remote, username: str | None,
                    timeout: float = 20.0) -> tuple[str, str] | None:
    """Ask Git's credential helpers (``git credential fill``) without ever prompting."""
    host = remote.host + (f":{remote.port}" if remote.port else "")
    request = f"protocol={remote.scheme}\nhost={host}\npath={remote.path.lstrip('/')}\n"
    if username:
        request += f"username={username}\n"
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
    try:
        done = subprocess.run(["git", "credential", "fill"], input=request + "\n",
                              capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    answer = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    if not answer.get("password"):
        return None
    return answer.get("username") or username or "", answer["password"]


def known_host(path: Path, remote: Remote) -> bool:
    """Whether ``path`` (a known_hosts file) has any key for the remote's host and port
    (plain or hashed ``|1|salt|hash`` names)."""
    name = remote.known_hosts_name
    for hosts in _known_host_names(path):
        for entry in hosts.split(","):
            if entry.startswith("|1|"):
                try:
                    _, _, salt, digest = entry.split("|", 3)
                    mac = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1)
                    if hmac.compare_digest(mac.digest(), base64.b64decode(digest)):
                        return True
                except (ValueError, TypeError):
                    continue
            elif entry == name:
                return True
    return False


def _known_host_names(path: Path) -> Iterator[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0].startswith("@"):  # @cert-authority / @revoked markers
            if fields[0] == "@revoked" or len(fields) < 2:
                continue
            fields = fields[1:]
        yield fields[0]


def fetch_host_key(remote: Remote, timeout: float) -> tuple[str, str]:
    """The server's host key (type, base64) from an SSH handshake (paramiko)."""
    import paramiko

    port = remote.port or 22
    try:
        sock = socket.create_connection((remote.host, port), timeout=timeout)
    except OSError as exc:
        raise HostKeyError("unreachable", f"cannot connect to {remote.host}:{port} to read "
                           f"its host key: {exc.strerror or exc}") from None
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        return key.get_name(), key.get_base64()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise HostKeyError("unreachable", f"cannot read the host key of {remote.host}:{port}"
                           f": {exc}") from None
    finally:
        transport.close()


def wanted(allowed: int, kind: CredentialType) -> bool:
    return bool(allowed & kind)
