"""Real Git servers on 127.0.0.1 for the remote tests: OpenSSH's sshd and git
http-backend behind lighttpd with TLS (a throwaway CA) and basic auth.

Each server runs from a temp folder with throwaway keys, is polled until it answers
(never a fixed sleep) and is stopped by the fixture that started it.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

SSHD = "/usr/sbin/sshd"
LIGHTTPD = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"


def missing(*binaries: str) -> list[str]:
    return [b for b in binaries if not (os.path.isfile(b) and os.access(b, os.X_OK))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout


def wait_until(check, what: str, proc: subprocess.Popen, deadline: float = 20.0) -> None:
    """Poll ``check()`` until it is true; fail with the server's output otherwise."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}: {out}")
        if check():
            return
        time.sleep(0.02)  # a poll interval, not a wait for readiness
    raise RuntimeError(f"{what} not ready within {deadline}s")


def bare_repo(path: Path, source: Path) -> Path:
    """A bare copy of the working repository ``source`` that accepts pushes."""
    run("git", "clone", "-q", "--bare", str(source), str(path))
    run("git", "-C", str(path), "config", "http.receivepack", "true")
    return path


class SshServer:
    """sshd on 127.0.0.1:<port> as the current user, with a throwaway host key and an
    authorized_keys for one throwaway client key (``client_key``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        self.host_key = root / "host_ed25519"
        self.client_key = root / "client_ed25519"
        self.other_key = root / "other_ed25519"  # not authorized
        for key in (self.host_key, self.client_key, self.other_key):
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key.name, "-f", str(key))
        authorized = root / "authorized_keys"
        authorized.write_text(self.client_key.with_suffix(".pub").read_text())
        authorized.chmod(0o600)
        self.port = free_port()
        config = root / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"PidFile {root / 'sshd.pid'}\nAuthorizedKeysFile {authorized}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nUsePAM no\n"
            "StrictModes no\nLogLevel ERROR\n")
        try:
            Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation folder (as root)
        except OSError:
            pass  # not root: sshd runs unprivileged and needs none
        self.user = os.environ.get("USER") or run("id", "-un").strip()
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        wait_until(self._banner, "sshd", self.proc)

    def _banner(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                return sock.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    def known_hosts_line(self) -> str:
        key = self.host_key.with_suffix(".pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {key[0]} {key[1]}\n"

    def url(self, path: Path, scp_like: bool = False) -> str:
        if scp_like:  # no port in scp-like syntax: only for port 22
            return f"{self.user}@127.0.0.1:{path}"
        return f"ssh://{self.user}@127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()


class HttpsServer:
    """lighttpd serving ``git http-backend`` for the repositories under ``root/git``
    over TLS (certificate from a throwaway CA, ``ca_file``) with basic auth."""

    def __init__(self, root: Path, user: str = "alice", password: str = "s3cret-pass") -> None:
        self.root = root
        self.git_root = root / "git"
        self.git_root.mkdir(parents=True, exist_ok=True)
        self.user, self.password = user, password
        self.ca_file, cert = make_ca_and_cert(root)
        self.other_ca, _ = make_ca_and_cert(root / "other")
        (root / "htpasswd").write_text(f"{user}:{password}\n")
        self.port = free_port()
        config = root / "lighttpd.conf"
        config.write_text(f"""
server.modules = ("mod_auth", "mod_authn_file", "mod_cgi", "mod_openssl", "mod_setenv",
                  "mod_alias")
server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {self.port}
server.errorlog = "{root}/error.log"
ssl.engine = "enable"
ssl.pemfile = "{cert}"
alias.url = ("/git/" => "{HTTP_BACKEND}/")
cgi.assign = ("" => "")
setenv.add-environment = ("GIT_PROJECT_ROOT" => "{self.git_root}",
                          "GIT_HTTP_EXPORT_ALL" => "1")
auth.backend = "plain"
auth.backend.plain.userfile = "{root}/htpasswd"
auth.require = ("/git/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
""")
        self.proc = subprocess.Popen([LIGHTTPD, "-D", "-f", str(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        wait_until(self._answers, "lighttpd", self.proc)

    def _answers(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        token = b64encode(f"{self.user}:{self.password}".encode()).decode()
        request = urllib.request.Request(
            f"https://127.0.0.1:{self.port}/git/none.git/info/refs?service=git-upload-pack",
            headers={"Authorization": f"Basic {token}"})
        try:
            urllib.request.urlopen(request, context=context, timeout=2)
        except urllib.error.HTTPError:
            return True  # a real answer (404 for the missing repository)
        except OSError:
            return False
        return True

    def url(self, name: str) -> str:
        return f"https://127.0.0.1:{self.port}/git/{name}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()


def make_ca_and_cert(folder: Path) -> tuple[Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it (openssl CLI);
    returns (CA certificate, server key+certificate PEM)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (folder / n for n in
                                  ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=aureacore test CA", "-keyout", str(ca_key), "-out", str(ca))
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr))
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                   "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
    pem = folder / "server.pem"
    pem.write_text(cert.read_text() + key.read_text())
    return ca, pem
