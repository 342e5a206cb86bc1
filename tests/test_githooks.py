"""Git push webhooks: GitHub, GitLab and Gitea/Forgejo deliveries signed the way each forge
signs them, against the Datasette app; the sync they trigger pulls a real local origin."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from conftest import GitRepo, rows, wait_for
from test_web_pages import Client

from aureacore_db.githooks import MAX_BODY, SECRET_ENV, HookSyncer, receive, run_sync
from aureacore_db.ingest import ingest
from aureacore_db.web import make_datasette

SECRET = "s3cret-for-tests"
HOOK = "/-/aureacore/hooks/git"


def signed(forge: str, body: bytes, secret: str = SECRET, *, event: str | None = None,
           delivery: str | None = None) -> dict[str, str]:
    """The headers ``forge`` sends with a push webhook (its documented format)."""
    delivery = delivery or str(uuid.uuid4())
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json"}
    if forge == "github":
        headers.update({"X-GitHub-Event": event or "push", "X-GitHub-Delivery": delivery,
                        "X-Hub-Signature-256": f"sha256={digest}"})
    elif forge == "gitlab":
        headers.update({"X-Gitlab-Event": event or "Push Hook", "X-Gitlab-Token": secret,
                        "X-Gitlab-Event-UUID": delivery})
    else:  # gitea / forgejo (which send GitHub's event header too)
        name = forge.capitalize()
        headers.update({f"X-{name}-Event": event or "push", f"X-{name}-Delivery": delivery,
                        f"X-{name}-Signature": digest, "X-GitHub-Event": event or "push"})
    return headers


def push_payload(ref: str = "refs/heads/main", after: str = "0" * 40) -> bytes:
    return json.dumps({"ref": ref, "before": "0" * 40, "after": after,
                       "repository": {"full_name": "team/configs"}}).encode()


class Forge:
    """A bare origin, the database's working clone of it, a developer's clone that
    pushes, and the Datasette app serving the database."""

    def __init__(self, base: Path) -> None:
        self.origin = base / "origin.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.origin)],
                       check=True)
        self.dev = GitRepo(base / "dev")
        self.dev.service("auth", version="1.0.0")
        self.dev.commit("add auth")
        self.dev.git("remote", "add", "origin", str(self.origin))
        self.dev.git("push", "-q", "origin", "main")
        subprocess.run(["git", "clone", "-q", str(self.origin), str(base / "configs")],
                       check=True)
        self.db = base / "registry.db"
        ingest(base / "configs", self.db)
        self.client = Client(make_datasette(self.db))
        self.releases = 1

    def push(self) -> str:
        self.releases += 1
        self.dev.service("auth", version=f"1.{self.releases}.0")
        sha = self.dev.commit(f"release 1.{self.releases}.0")
        self.dev.git("push", "-q", "origin", "main")
        return sha

    def post(self, headers: dict[str, str], body: bytes, path: str = HOOK, **kw):
        return self.client.post(path, content=body, headers=headers, **kw)

    def tip(self) -> str:
        return rows(self.db, "select value from aureacore_meta where key = 'tip'")[0]["value"]

    def deliveries(self) -> list[dict]:
        return rows(self.db, "select * from git_hook_deliveries order by id")

    def wait_for(self, condition, what: str, timeout: float = 30.0):
        return wait_for(condition, what, timeout)


@pytest.fixture
def forge(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    f = Forge(tmp_path)
    yield f
    f.client.close()


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea", "forgejo"])
def test_a_signed_push_is_answered_202_and_synced_in_the_background(forge, kind):
    sha = forge.push()
    body = push_payload(after=sha)
    headers = signed(kind, body)
    response = forge.post(headers, body)
    assert response.status_code == 202, response.text
    assert response.json()["outcome"] == "accepted"
    forge.wait_for(lambda: forge.tip() == sha, "the pushed commit in the database")
    row = forge.wait_for(lambda: [d for d in forge.deliveries() if d["outcome"] == "synced"],
                         "the delivery to be marked synced")[0]
    assert (row["forge"], row["ref"]) == (kind, "refs/heads/main")
    assert row["delivery_id"] == next(v for k, v in headers.items()
                                      if k.endswith(("Delivery", "UUID")))
    assert row["sync_result"].startswith("1 new commit(s), 1 service change(s)")
    assert rows(forge.db, "select version from services where id = 'platform/auth'"
                )[0]["version"] == f"1.{forge.releases}.0"
    dump = "\n".join(sqlite_dump(forge.db))
    assert SECRET not in dump
    assert hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest() not in dump


def sqlite_dump(db: Path) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea", "forgejo"])
def test_a_wrong_signature_is_refused_and_logged(forge, kind):
    tip = forge.tip()
    forge.push()
    body = push_payload()
    response = forge.post(signed(kind, body, secret="not-the-secret"), body)
    assert response.status_code == 401
    [row] = forge.deliveries()
    assert row["outcome"] == "refused" and "does not match" in row["reason"]
    assert row["forge"] == kind
    assert forge.tip() == tip


def test_a_body_changed_after_signing_is_refused(forge):
    body = push_payload()
    response = forge.post(signed("github", body), push_payload(ref="refs/heads/other"))
    assert response.status_code == 401
    assert forge.deliveries()[0]["reason"] == \
        "X-Hub-Signature-256 does not match the body signed with the secret"


def test_without_a_secret_every_delivery_is_refused(forge, monkeypatch):
    monkeypatch.delenv(SECRET_ENV)
    body = push_payload()
    response = forge.post(signed("github", body), body)
    assert response.status_code == 403
    assert f"no {SECRET_ENV} is set" in response.json()["reason"]
    assert forge.deliveries()[0]["outcome"] == "refused"


def test_a_replayed_delivery_is_refused_and_logged(forge):
    sha = forge.push()
    body = push_payload(after=sha)
    headers = signed("github", body)
    assert forge.post(headers, body).status_code == 202
    again = forge.post(headers, body)
    assert again.status_code == 409
    assert "replay" in again.json()["reason"]
    assert [d["outcome"] for d in forge.wait_for(
        lambda: [d for d in forge.deliveries() if d["outcome"] != "accepted"]
        if len(forge.deliveries()) == 2 and forge.deliveries()[0]["outcome"] != "accepted"
        else None, "the first delivery to be synced")] == ["synced", "refused"]


def test_pushes_to_other_branches_and_other_events_are_ignored(forge):
    tip = forge.tip()
    body = push_payload(ref="refs/heads/feature")
    response = forge.post(signed("gitlab", body), body)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    ping = json.dumps({"zen": "Keep it logically awesome."}).encode()
    assert forge.post(signed("github", ping, event="ping"), ping).status_code == 200
    tag = push_payload(ref="refs/tags/v1")
    assert forge.post(signed("gitea", tag), tag).json()["outcome"] == "ignored"
    reasons = [d["reason"] for d in forge.deliveries()]
    assert reasons == ["push to refs/heads/feature; this database follows refs/heads/main",
                       "event 'ping' is not a push",
                       "push to refs/tags/v1; this database follows refs/heads/main"]
    assert forge.tip() == tip


def test_the_route_needs_no_csrf_token_and_no_actor(forge):
    """A forge sends cookies of no Datasette session and no CSRF token."""
    sha = forge.push()
    body = push_payload(after=sha)
    response = forge.post(signed("github", body), body, cookies={"some": "cookie"})
    assert response.status_code == 202, response.text
    forge.wait_for(lambda: forge.tip() == sha, "the sync")


def test_the_body_is_bounded(forge):
    body = b"{" + b" " * MAX_BODY + b"}"
    response = forge.post(signed("github", body), body)
    assert response.status_code == 413
    assert forge.deliveries()[0]["reason"] == f"the body is larger than {MAX_BODY} bytes"
    assert forge.client.get(HOOK).status_code == 405


def test_a_given_registry_is_named_in_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    first, second = Forge(tmp_path / "a"), Forge(tmp_path / "b")
    (tmp_path / "b" / "registry.db").rename(tmp_path / "b" / "other.db")
    second.db = tmp_path / "b" / "other.db"
    client = Client(make_datasette([first.db, second.db]))
    try:
        sha = second.push()
        body = push_payload(after=sha)
        response = client.post(f"/other{HOOK}", content=body, headers=signed("github", body))
        assert response.status_code == 202 and response.json()["database"] == "other"
        second.wait_for(lambda: second.tip() == sha, "the second registry's sync")
        assert not rows(first.db, "select id from git_hook_deliveries")
    finally:
        for c in (client, first.client, second.client):
            c.close()


def test_a_burst_of_pushes_is_one_sync_after_the_running_one(forge):
    """Pushes that arrive while a sync runs are served together by the next one."""
    started, release = threading.Event(), threading.Event()

    def gated_sync() -> str:
        started.set()
        assert release.wait(30)
        return run_sync(forge.db)

    def accepted() -> int:
        body = push_payload(after=forge.push())
        verdict, row = receive(forge.db, {k.lower(): v for k, v in
                                          signed("github", body).items()}, body, SECRET)
        assert verdict.outcome == "accepted"
        return row

    syncer = HookSyncer(forge.db, gated_sync)
    syncer.submit(accepted())
    assert started.wait(30)
    for _ in range(4):
        syncer.submit(accepted())
    release.set()
    forge.wait_for(lambda: all(d["outcome"] == "synced" for d in forge.deliveries()),
                   "every delivery to be synced")
    assert syncer.runs == 2
    assert forge.tip() == forge.dev.head()
    results = [d["sync_result"][:16] for d in forge.deliveries()]
    # the running sync pulled after all five pushes; the four queued ones shared one more
    assert results == ["5 new commit(s),"] + ["0 new commit(s),"] * 4


def test_the_route_comes_with_the_plugins_one_entry_point():
    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    points = tomllib.loads(pyproject.read_text())["project"]["entry-points"]["datasette"]
    assert points == {"aureacore": "datasette_aureacore"}
