"""Hardening of the web area (issue 8): secrets never reach a visitor, the plugin's pages
cannot be abused, and outbound requests are bounded. Everything is driven as a user
would: the CLI, the Datasette test client, real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import base64
import html
import os
import sqlite3
import subprocess
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import GitRepo, LocalServer, rows, run_ingest, wait_for

from aureacore_db.cli import cli
from aureacore_db.ingest import ingest

TOKEN = "TOKEN-9f8e7d6c5b4a"


def _dump(db_path: Path) -> str:
    """Every value of every table of the database, as one text."""
    conn = sqlite3.connect(db_path)
    try:
        names = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]
        return "\n".join(repr(row) for name in names
                         for row in conn.execute(f"select * from [{name}]"))
    finally:
        conn.close()


# -- credentials in repository URLs ----------------------------------------------------
class GitHTTP(BaseHTTPRequestHandler):
    """A smart-HTTP Git server (``git http-backend``) that wants Basic auth user:TOKEN."""

    root = "."
    auth = "Basic " + base64.b64encode(f"user:{TOKEN}".encode()).decode()

    def log_message(self, *args: object) -> None:
        pass

    def _serve(self) -> None:
        if self.headers.get("Authorization") != self.auth:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {**os.environ, "GIT_PROJECT_ROOT": self.root, "GIT_HTTP_EXPORT_ALL": "1",
               "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": "user"}
        out = subprocess.run(["git", "http-backend"], input=body, env=env,
                             capture_output=True, check=False).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)

    do_GET = do_POST = _serve


@pytest.fixture
def git_server(repo: GitRepo):
    handler = type("Handler", (GitHTTP,), {"root": str(repo.path.parent)})
    server = LocalServer(handler)
    yield server
    server.close()


def test_a_token_in_the_repository_url_is_used_by_git_but_never_stored_or_shown(
        repo, db_path, git_server, monkeypatch):
    repo.service("auth")
    repo.commit("add auth")
    url = git_server.base.replace("http://", f"http://user:{TOKEN}@") + "/configs/.git"
    result = CliRunner().invoke(cli, ["ingest", url, "--db", str(db_path), "--json"])
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
    assert rows(db_path, "select id from services") == [{"id": "platform/auth"}]
    assert TOKEN not in _dump(db_path)
    [meta] = rows(db_path, "select value from aureacore_meta where key = 'source'")
    assert meta["value"].startswith("http://***@127.0.0.1:")

    from aureacore_db.gitsource import SourceError

    # the clone keeps no credential either: a later run from the stored (credential-free)
    # source authenticates with the environment's token (README: Remotes and credentials)
    clone = db_path.parent / f"{db_path.name}.repos"
    assert not [p for p in clone.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    repo.service("billing")
    repo.commit("add billing")
    monkeypatch.setenv("HOME", str(db_path.parent))  # no git credential helper
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("AUREACORE_GIT_TOKEN", "AUREACORE_GIT_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SourceError, match="AUREACORE_GIT_TOKEN") as failed:
        ingest(meta["value"], db_path)
    assert failed.value.exit_code == 3 and TOKEN not in str(failed.value)
    monkeypatch.setenv("AUREACORE_GIT_TOKEN", TOKEN)
    monkeypatch.setenv("AUREACORE_GIT_USERNAME", "user")
    ingest(meta["value"], db_path)
    assert len(rows(db_path, "select id from services")) == 2
    assert TOKEN not in _dump(db_path)

    from aureacore_db.web import make_datasette

    client = make_datasette(db_path).client
    for path in ("/-/aureacore", "/-/aureacore.json", "/registry/ingest_runs.json",
                 "/registry/aureacore_meta.csv"):
        page = _get(client, path)
        assert page.status_code == 200 and TOKEN not in page.text, path


def _get(client, path: str, **kwargs):
    import asyncio

    return asyncio.run(client.get(path, **kwargs))


@pytest.mark.parametrize("url", [
    f"https://user:{TOKEN}@127.0.0.1:1/x.git",
    f"https://127.0.0.1:1/x.git?private_token={TOKEN}",
])
def test_an_unreachable_url_fails_without_showing_its_token(tmp_path, url):
    db = tmp_path / "registry.db"
    result = CliRunner().invoke(cli, ["ingest", url, "--db", str(db)])
    assert result.exit_code == 8  # network unreachable (README: Remotes and credentials)
    assert "cannot fetch https://" in result.output and TOKEN not in result.output
    assert not db.exists() or TOKEN not in _dump(db)
    assert TOKEN not in "".join(str(p) for p in tmp_path.rglob("*"))  # no folder named so


def test_a_failed_run_records_no_token(repo, db_path, git_server):
    repo.service("auth")
    repo.commit("add auth")
    run_ingest(repo, db_path)  # the database holds this repository
    url = git_server.base.replace("http://", f"http://user:{TOKEN}@") + "/configs/.git"
    result = CliRunner().invoke(cli, ["ingest", url, "--db", str(db_path), "--branch",
                                      "nope"])
    assert result.exit_code == 1 and TOKEN not in result.output
    assert TOKEN not in _dump(db_path)


# -- webhook secrets -------------------------------------------------------------------
SECRET = "hmac-SECRET-0c1d2e3f"
URL_PASS = "urlpass-7a6b5c4d"


def _client(db_path: Path, actor: dict | None = None, **kwargs):
    """A Datasette test client on the database; ``actor`` is signed into its cookie."""
    from aureacore_db.web import make_datasette

    ds = make_datasette(db_path, **kwargs)
    cookies = {"ds_actor": ds.sign({"a": actor}, "actor")} if actor else {}

    def get(path: str):
        return _get(ds.client, path, cookies=cookies)

    return ds, get


LEAKY_SQL = [
    "select * from webhook_secrets",
    "select secret from webhook_secrets",
    "select (select secret from webhook_secrets limit 1) as s",
    "select * from webhooks w join webhook_secrets s on s.webhook_id = w.id",
    "with x as (select * from webhook_secrets) select * from x",
    "select group_concat(url || secret) from webhook_secrets",
    "select * from leak",
    "select sql from sqlite_master",
    "select * from pragma_table_info('webhook_secrets')",
]


@pytest.mark.parametrize("actor", [None, {"id": "alice"}, {"id": "root"}])
def test_webhook_secrets_are_not_readable_through_datasette(repo, db_path, actor):
    repo.service("auth")
    repo.commit("add auth")
    run_ingest(repo, db_path)
    added = CliRunner().invoke(cli, [
        "webhooks", "add", f"http://hook:{URL_PASS}@127.0.0.1:9/in", "--name", "ops",
        "--secret", SECRET, "--db", str(db_path)])
    assert added.exit_code == 0, added.output
    assert SECRET not in added.output and URL_PASS not in added.output
    conn = sqlite3.connect(db_path)  # a view someone made over the secrets
    conn.execute("create view leak as select * from webhook_secrets")
    conn.commit()
    conn.close()
    metadata = {"plugins": {"aureacore": {"rollback": {"allow": {"id": "root"}}}}}
    _, get = _client(db_path, actor, metadata=metadata)
    from urllib.parse import quote

    pages = ["/registry", "/registry.json", "/registry/webhooks", "/registry/webhooks.json",
             "/registry/webhooks.csv", "/registry/webhook_secrets",
             "/registry/webhook_secrets.json", "/registry/webhook_secrets.csv",
             "/registry/webhook_secrets/1.json", "/registry/leak.json", "/registry/leak.csv",
             "/-/aureacore.json"]
    pages += [f"/registry.json?sql={quote(sql)}" for sql in LEAKY_SQL]
    pages += [f"/registry.csv?sql={quote(sql)}" for sql in LEAKY_SQL]
    for path in pages:
        page = get(path)
        assert page.status_code < 500, path
        assert SECRET not in page.text and URL_PASS not in page.text, path
    assert get("/registry/webhook_secrets.json").status_code == 403
    assert "webhook_secrets" not in get("/registry").text  # not listed either
    refused = get(f"/registry.json?sql={quote('select * from webhook_secrets')}").json()
    assert refused["ok"] is False and "is prohibited" in refused["error"]
    hooks = get("/registry/webhooks.json?_shape=array").json()
    assert [(h["name"], h["url"]) for h in hooks] == [("ops", "http://***@127.0.0.1:9/in")]


class Receiver(BaseHTTPRequestHandler):
    """Records what it is sent; answers 200."""

    seen: list = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_an_older_database_has_its_secrets_moved_and_still_signs(repo, db_path):
    from aureacore_db.webhooks import verify_signature

    repo.service("auth")
    repo.commit("add auth")
    run_ingest(repo, db_path)
    receiver = LocalServer(type("R", (Receiver,), {"seen": []}))
    try:
        conn = sqlite3.connect(db_path)  # the webhooks table as the first release made it
        conn.execute("drop table webhooks")  # (a database from before migrations)
        conn.execute("drop table webhook_secrets")
        conn.execute("drop table _sqlite_migrations")
        conn.execute("create table webhooks (id integer primary key, name text, url text, "
                     "kinds text, secret text, secret_env text, active integer, source text, "
                     "cursor integer, created_at text, updated_at text, last_run_at text, "
                     "last_error text)")
        url = receiver.base.replace("http://", f"http://hook:{URL_PASS}@") + "/in"
        conn.execute("insert into webhooks (name, url, secret, active, source, cursor) "
                     "values ('ops', ?, ?, 1, 'db', 0)", [url, SECRET])
        conn.commit()
        conn.close()
        _, get = _client(db_path)
        assert get("/-/aureacore").status_code == 200  # startup moves the secret
        assert SECRET not in get("/registry/webhooks.json").text
        assert "secret" not in [c[1] for c in sqlite3.connect(db_path).execute(
            "pragma table_info(webhooks)")]
        result = CliRunner().invoke(cli, ["deliver", "--db", str(db_path)])
        assert result.exit_code == 0, result.output
        path, headers, body = receiver.server.RequestHandlerClass.seen[0]
        assert path == "/in"
        assert headers["Authorization"] == "Basic " + base64.b64encode(
            f"hook:{URL_PASS}".encode()).decode()
        assert verify_signature(SECRET, body, headers["X-AureaCore-Signature"])
    finally:
        receiver.close()


def test_secret_env_signs_with_a_secret_never_stored(repo, db_path, monkeypatch):
    from aureacore_db.webhooks import verify_signature

    repo.service("auth")
    repo.commit("add auth")
    run_ingest(repo, db_path)
    receiver = LocalServer(type("R", (Receiver,), {"seen": []}))
    try:
        added = CliRunner().invoke(cli, [
            "webhooks", "add", receiver.base + "/in", "--name", "ops", "--from-start",
            "--secret-env", "OPS_SECRET", "--db", str(db_path)])
        assert added.exit_code == 0, added.output
        monkeypatch.setenv("OPS_SECRET", SECRET)
        result = CliRunner().invoke(cli, ["deliver", "--db", str(db_path)])
        assert result.exit_code == 0, result.output
        _, headers, body = receiver.server.RequestHandlerClass.seen[0]
        assert verify_signature(SECRET, body, headers["X-AureaCore-Signature"])
        assert SECRET not in _dump(db_path)
    finally:
        receiver.close()


# -- bounded outbound requests ---------------------------------------------------------
HUGE = 300 * 1024 * 1024


class Hostile(BaseHTTPRequestHandler):
    """``/trickle``: the status line one byte a second; ``/huge``: a 300 MiB answer as
    fast as the client reads it. Counts the bytes it managed to send per path."""

    sent: dict = {}
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        sent = 0
        try:
            if self.path.startswith("/trickle"):
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    sent += 1
                    time.sleep(1)  # the hostile server's pace, not a wait in the test
            else:
                self.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Length: {HUGE}\r\n\r\n".encode())
                chunk = b"x" * 65536
                while sent < HUGE:
                    self.wfile.write(chunk)
                    sent += len(chunk)
        except OSError:
            pass  # the client hung up: what the test wants
        finally:
            self.sent[self.path] = sent
        self.close_connection = True

    do_GET = do_POST = _answer


@pytest.fixture
def hostile():
    server = LocalServer(type("H", (Hostile,), {"sent": {}}))
    yield server
    server.close()


def _sent(server, path: str) -> int:
    """Bytes the server sent on ``path``, once its handler has finished."""
    sent = server.server.RequestHandlerClass.sent
    wait_for(lambda: path in sent, f"the handler of {path} to finish", timeout=20)
    return sent[path]


@pytest.mark.timeout(60)
def test_deliver_timeout_bounds_a_trickling_receiver(repo, db_path, hostile):
    repo.service("auth")
    repo.commit("add auth")
    run_ingest(repo, db_path)
    db = ["--db", str(db_path)]
    CliRunner().invoke(cli, ["webhooks", "add", hostile.base + "/trickle", "--from-start", *db])
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["deliver", "--timeout", "2", "--max-attempts", "1", *db])
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert "no answer within 2s" in result.output
    assert elapsed < 5, elapsed
    assert _sent(hostile, "/trickle") <= 4  # it was cut off after about 2 bytes


@pytest.mark.timeout(60)
def test_deliver_reads_only_the_start_of_a_huge_reply(repo, db_path, hostile):
    repo.service("auth")
    repo.commit("add auth")
    run_ingest(repo, db_path)
    db = ["--db", str(db_path)]
    CliRunner().invoke(cli, ["webhooks", "add", hostile.base + "/huge", "--from-start", *db])
    result = CliRunner().invoke(cli, ["deliver", "--timeout", "20", *db])
    assert result.exit_code == 0, result.output
    assert {r["status"] for r in rows(db_path, "select status from webhook_deliveries")} == {
        "delivered"}
    assert _sent(hostile, "/huge") < 32 * 1024 * 1024  # hung up early, not after 300 MiB


@pytest.mark.timeout(60)
def test_health_timeout_is_a_ceiling_and_replies_are_capped(repo, db_path, hostile):
    repo.service("slow", health_check={"url": hostile.base + "/trickle", "timeout_s": 100000})
    repo.service("big", health_check={"url": hostile.base + "/huge"})
    repo.commit("add services")
    run_ingest(repo, db_path)
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["health", "--timeout", "1.5", "--json", "--db",
                                      str(db_path)])
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert elapsed < 5, elapsed
    states = {r["service_id"]: (r["state"], r["error"]) for r in rows(
        db_path, "select service_id, state, error from health_checks")}
    assert states == {"platform/slow": ("critical", "no answer within 1.5s"),
                      "platform/big": ("passing", None)}
    assert _sent(hostile, "/huge") < 32 * 1024 * 1024


# -- the web layer ---------------------------------------------------------------------
ROOT = {"id": "root"}
EVIL_NAME = "q'+alert(document.domain)+'"
EVIL = {
    "description": "<script>alert('description')</script>",
    "owner": '"><img src=x onerror=alert(1)>',
    "documentation_url": "javascript:alert(1)",
}
EVIL_AUTHOR = 'Eve "><script>alert(2)</script> <eve@example.com>'


@pytest.fixture
def evil(tmp_path):
    """A registry whose service has a hostile name, fields, commit message and author,
    and a version to roll back to; a client on it."""
    from test_web_pages import Client

    from aureacore_db.web import make_datasette

    repo = GitRepo(tmp_path / "configs")
    rel = "services/x/evil.yaml"
    repo.service(EVIL_NAME, namespace="x", rel=rel, **EVIL)
    first = repo.commit("<script>alert('message')</script>\n\njavascript:alert(3)",
                        author=EVIL_AUTHOR)
    repo.git("branch", "staging", first)  # a second environment, behind: drift to show
    repo.service(EVIL_NAME, namespace="x", version="2.0.0", rel=rel, **EVIL)
    repo.commit("'); alert(4); ('", author=EVIL_AUTHOR)
    db = tmp_path / "registry.db"
    ingest(repo.path, db, environments=[("main", "main"), ("staging", "staging")])
    client = Client(make_datasette(db))
    yield {"client": client, "db": db, "repo": repo, "first": first,
           "sid": rows(db, "select id from services")[0]["id"]}
    client.close()


class _Audit:
    """Every attribute and script of an HTML page (html.parser)."""

    def __init__(self, text: str) -> None:
        from html.parser import HTMLParser

        self.attributes: list[tuple[str, str, str]] = []
        self.scripts: list[tuple[dict, str]] = []
        audit = self

        class Parser(HTMLParser):
            in_script: dict | None = None

            def handle_starttag(self, tag, attrs):
                for name, value in attrs:
                    audit.attributes.append((tag, name, value or ""))
                if tag == "script":
                    self.in_script = dict(attrs)
                    audit.scripts.append((self.in_script, ""))

            def handle_data(self, data):
                if self.in_script is not None:
                    attrs, body = audit.scripts[-1]
                    audit.scripts[-1] = (attrs, body + data)

            def handle_endtag(self, tag):
                if tag == "script":
                    self.in_script = None

        Parser().feed(text)


def _assert_harmless(text: str, where: str, *, own_scripts_only: bool) -> None:
    audit = _Audit(text)
    for tag, name, value in audit.attributes:
        assert not name.startswith("on"), (where, tag, name, value)
        if name in ("href", "src", "action", "formaction", "xlink:href"):
            scheme = value.strip().lower().replace("\t", "").replace("\n", "")
            assert not scheme.startswith(("javascript:", "data:", "vbscript:")), (where, value)
    for attrs, body in audit.scripts:
        assert "alert" not in body, (where, body)
        if own_scripts_only:  # the plugin's pages: no inline script at all but Datasette's
            assert attrs.get("src") or "details" in body, (where, attrs, body)


def test_every_plugin_page_renders_hostile_values_harmlessly(evil):
    from urllib.parse import quote

    from datasette.utils import tilde_encode

    client, sid, first = evil["client"], evil["sid"], evil["first"]
    assert EVIL_NAME in sid
    cookies = client.actor_cookies(ROOT)
    tip = rows(evil["db"], "select value from aureacore_meta where key = 'tip'")[0]["value"]
    service = f"/-/aureacore/services/{quote(sid, safe='/')}"
    pages = ["/-/aureacore", service, f"{service}/diff", f"{service}/diff?from={first}",
             f"/-/aureacore/commits/{first}", f"/-/aureacore/commits/{tip}",
             f"/-/aureacore/deps/{quote(sid, safe='/')}", "/-/aureacore/environments",
             f"{service}?env=staging", "/-/aureacore?env=staging",
             f"{service}/diff?from_env=main&to_env=staging"]
    for path in pages:
        page = client.get(path, cookies=cookies)
        assert page.status_code == 200, (path, page.text[:300])
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        _assert_harmless(page.text, path, own_scripts_only=True)
        base, _, query = path.partition("?")
        data = client.get(f"{base}.json" + (f"?{query}" if query else ""), cookies=cookies)
        assert data.status_code == 200 and data.json(), path
    matrix = client.get("/-/aureacore/environments", cookies=cookies).text
    assert "Promote to staging" in matrix and "≠" in matrix  # the drifted cell, escaped
    assert sid in html.unescape(matrix) and sid not in matrix  # shown, escaped
    page = client.get(service, cookies=cookies).text
    assert "Roll back to this version" in page  # the button leads to the confirm page:
    confirm = client.get(f"{service}/rollback?to={first}", cookies=cookies)
    assert confirm.status_code == 200 and "rollback-confirm" in confirm.text
    csp = confirm.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    _assert_harmless(confirm.text, "confirm page", own_scripts_only=True)
    assert EVIL_NAME in html.unescape(confirm.text.split("<h1>", 1)[1].split("</h1>")[0])
    for path in ("/registry/services", "/registry/commits", "/registry/history",
                 f"/registry/services/{tilde_encode(sid)}"):
        page = client.get(path, cookies=cookies)
        assert page.status_code == 200, path
        _assert_harmless(page.text, path, own_scripts_only=False)


def _post(client, path: str, actor: dict | None, form: dict | bytes, page: str = ""):
    """POST ``form`` (a dict, or raw bytes after the CSRF token) to ``path`` as ``actor``
    (with the CSRF token of ``page``, by default the service page)."""
    token, cookies = client.form(page or path.rsplit("/rollback", 1)[0], ROOT)
    cookies = {"ds_csrftoken": cookies["ds_csrftoken"], **client.actor_cookies(actor)}
    if isinstance(form, bytes):
        body = b"csrftoken=" + token.encode() + b"&" + form
        return client.post(path, content=body, cookies=cookies, headers={
            "content-type": "application/x-www-form-urlencoded"})
    return client.post(path, data={"csrftoken": token, **form}, cookies=cookies)


def test_refused_and_malformed_rollbacks_write_nothing(evil):
    from urllib.parse import quote

    client, db, first = evil["client"], evil["db"], evil["first"]
    post = f"/-/aureacore/services/{quote(evil['sid'], safe='/')}/rollback"
    head = evil["repo"].head()
    size = db.stat().st_size
    big = "x" * 3_000_000
    for actor in (None, {"id": "mallory"}):  # no permission, or too big: nothing written
        refused = _post(client, post, actor, {"to": big, "expected_head": big})
        assert refused.status_code == 413, refused.text[:200]
        refused = _post(client, post, actor, {"to": first, "expected_head": head})
        assert refused.status_code == 403, refused.text[:200]
        assert _post(client, post + ".json", actor, {"to": first}).json()["outcome"] == (
            "forbidden")
    cases = [
        ({"to": big, "expected_head": head}, 413),
        ({"to": first}, 400),                                # no expected_head
        ({"to": first, "expected_head": head[:1]}, 400),     # a prefix is not enough
        ({"to": first, "expected_head": head[:39] + "z"}, 400),
        ({"to": first, "expected_head": head, "comment": "x" * 100}, 400),
        (b"to=%ff%fe&expected_head=" + head.encode(), 400),   # not UTF-8 once decoded
        (b"to=\xff\xfe\x00&expected_head=" + head.encode(), 400),  # not UTF-8 at all
    ]
    for form, status in cases:
        answer = _post(client, post, ROOT, form)
        assert answer.status_code == status, (form if isinstance(form, bytes) else
                                              {k: v[:50] for k, v in form.items()},
                                              answer.text[:200])
    unknown = _post(client, "/-/aureacore/services/x/nope/rollback.json", ROOT,
                    {"to": first, "expected_head": head}, page=post.rsplit("/", 1)[0])
    assert unknown.status_code == 404 and "no service" in unknown.json()["error"]
    assert rows(db, "select count(*) as n from rollbacks") == [{"n": 0}]
    assert evil["repo"].head() == head
    assert db.stat().st_size - size < 64 * 1024


def test_bad_requests_get_4xx_with_a_message(evil):
    client = evil["client"]
    for path in ["/-/aureacore/deps/x/y?database=_internal",
                 f"/-/aureacore/deps/{evil['sid']}?database=_internal",
                 "/-/aureacore/deps/x/y?database=_memory",
                 "/-/aureacore/deps/x/y?database=nope",
                 "/-/aureacore/deps/x/nope", "/-/aureacore/deps/x/nope.json",
                 "/-/aureacore/services/x/nope", "/-/aureacore/services/x/nope.json",
                 "/-/aureacore/services/nope", "/-/aureacore/services/x/nope/diff",
                 "/-/aureacore/services/x/nope/diff.json?from=zz&to=%ff",
                 "/-/aureacore/services/%ff%fe/x", "/-/aureacore/commits/abcd",
                 "/-/aureacore/commits/abcd.json", "/-/aureacore/services/x/nope/rollback"]:
        answer = client.get(path)
        assert 400 <= answer.status_code < 500 or answer.status_code in (301, 302), (
            path, answer.status_code, answer.text[:300])
        assert answer.status_code in (301, 302) or answer.text.strip(), path
