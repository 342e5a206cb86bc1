"""Resuming from the stored state of an environment's tip (one-commit runs): the files,
ids, dependency edges and cycles come from stored rows, and every run must still equal
a fresh full ingest."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import GitRepo, rows, run_ingest
from test_walk import assert_same_db

from aureacore_db.tree import TreeState


def _one_commit_at_a_time(repo: GitRepo, tmp_path: Path, steps) -> Path:
    """Commit each step, ingest it into one database one commit at a time, and compare
    with a fresh full ingest after every commit."""
    incremental = tmp_path / "incremental.db"
    for number, (message, change) in enumerate(steps):
        change()
        repo.commit(message)
        result = run_ingest(repo, incremental)
        assert result.commits_added == 1, message
        full = tmp_path / f"full-{number}.db"
        run_ingest(repo, full)
        assert_same_db(incremental, full)
    return incremental


def _statuses(db: Path) -> dict[str, str]:
    return {r["id"]: r["status"] for r in rows(
        db, "select id, status from services where removed = 0")}


def test_a_stored_cycle_broken_or_kept_by_the_next_commit(repo, tmp_path):
    def initial():
        repo.service("ping", dependencies=[{"service": "pong"}])
        repo.service("pong", dependencies=[{"service": "ping"}])
        repo.service("a", dependencies=[{"service": "b"}])
        repo.service("b", version="1.0.0", dependencies=[{"service": "a"}])
        repo.service("c", dependencies=[{"service": "b", "version_constraint": ">=1.0.0"}])

    db = _one_commit_at_a_time(repo, tmp_path, [
        ("two cycles", initial),
        # b's version changes: its dependents are judged again, the cycle still there
        ("b 2.0, still in its cycle", lambda: repo.service(
            "b", version="2.0.0", dependencies=[{"service": "a"}])),
        ("pong drops ping: one cycle broken, ping's file unchanged",
         lambda: repo.service("pong")),
        ("pong needs ping again", lambda: repo.service(
            "pong", dependencies=[{"service": "ping"}])),
    ])
    assert _statuses(db) == {s: "ERROR" for s in (
        "platform/ping", "platform/pong", "platform/a", "platform/b")} | {
        "platform/c": "CONFIGURED"}


def test_a_dependency_target_appearing_or_going(repo, tmp_path):
    db = _one_commit_at_a_time(repo, tmp_path, [
        ("web needs a missing api", lambda: repo.service(
            "web", dependencies=[{"service": "api", "version_constraint": ">=1.0.0"}])),
        ("api appears: web's file unchanged", lambda: repo.service("api", version="1.2.0")),
        ("api moves to another namespace", lambda: (
            repo.rm("services/platform/api.yaml"),
            repo.service("api", namespace="core", version="1.2.0"))),
        ("web follows it", lambda: repo.service(
            "web", dependencies=[{"service": "core/api", "version_constraint": ">=1.0.0"}])),
    ])
    assert _statuses(db) == {"platform/web": "CONFIGURED", "core/api": "CONFIGURED"}


def test_a_parameter_schema_added_for_an_unchanged_service(repo, tmp_path):
    schema = {"type": "object", "properties": {"replicas": {"maximum": 3}}}
    db = _one_commit_at_a_time(repo, tmp_path, [
        ("web", lambda: repo.service("web", parameters={"replicas": 5})),
        ("schema", lambda: repo.write("schemas/platform/web.json", json.dumps(schema))),
        ("other", lambda: repo.service("api")),
    ])
    assert _statuses(db)["platform/web"] == "ERROR"


def test_an_unreadable_file_keeps_its_service_across_runs(repo, tmp_path):
    """A file that stops parsing keeps the service it declared (DESIGN §1); a later
    run resumes with that id, not one made up from the file name."""
    db = _one_commit_at_a_time(repo, tmp_path, [
        ("named api in legacy.yaml", lambda: repo.service(
            "api", rel="services/platform/legacy.yaml")),
        ("broken", lambda: repo.write("services/platform/legacy.yaml", "name: [unclosed\n")),
        ("another service", lambda: repo.service("web")),
        ("fixed", lambda: repo.service("api", rel="services/platform/legacy.yaml",
                                       version="1.1.0")),
    ])
    assert set(_statuses(db)) == {"platform/api", "platform/web"}


def test_a_duplicated_service_at_the_stored_tip(repo, tmp_path):
    db = _one_commit_at_a_time(repo, tmp_path, [
        ("api twice", lambda: (repo.service("api"), repo.service(
            "api", rel="services/platform/zz-api.yaml", version="2.0.0"))),
        ("web needs api 2", lambda: repo.service(
            "web", dependencies=[{"service": "api", "version_constraint": ">=2.0.0"}])),
        ("first copy gone", lambda: repo.rm("services/platform/api.yaml")),
    ])
    assert _statuses(db) == {"platform/api": "CONFIGURED", "platform/web": "CONFIGURED"}


def test_a_long_stored_cycle_message_is_searched_again(repo, tmp_path):
    """A cycle whose status message is cut off (over 1,000 characters) is not read from
    the stored message but searched for again."""
    names = [f"{'x' * 55}-{i:02d}" for i in range(20)]

    def ring():
        for i, name in enumerate(names):
            repo.service(name, dependencies=[{"service": names[(i + 1) % 20]}])

    db = _one_commit_at_a_time(repo, tmp_path, [
        ("a ring of twenty", ring),
        ("one more service", lambda: repo.service("api")),
        ("the ring is cut", lambda: repo.service(names[7])),
    ])
    assert set(_statuses(db).values()) == {"CONFIGURED"}


def spy_on_resumes(monkeypatch) -> list[bool]:
    """From now on, whether each tree state resumed from the stored rows (the answers of
    ``TreeState._resume_known``, in order)."""
    answers: list[bool] = []
    original = TreeState._resume_known

    def spy(self, tree, known):
        answers.append(original(self, tree, known))
        return answers[-1]

    monkeypatch.setattr(TreeState, "_resume_known", spy)
    return answers


def test_a_resumed_state_reads_only_the_configs_it_needs(repo, tmp_path, monkeypatch):
    """The stored rows are used: resuming a 30-service tip to add one commit reads
    the changed config and the few around it, not all 30, and takes the ring they form
    from the stored statuses (no search)."""
    for i in range(30):
        repo.service(f"s{i:02d}", dependencies=[{"service": f"s{(i + 1) % 30:02d}"}])
    repo.commit("thirty services in a ring")
    db = tmp_path / "r.db"
    run_ingest(repo, db)
    repo.service("s05", version="1.1.0", dependencies=[{"service": "s06"}])
    repo.commit("s05 1.1")
    resumed = spy_on_resumes(monkeypatch)
    reads = []
    from aureacore_db import blobs
    check = blobs.BlobReader.check

    def counted(self, oid, path, kind="service"):
        reads.append(path)
        return check(self, oid, path, kind)

    monkeypatch.setattr(blobs.BlobReader, "check", counted)
    from aureacore_db import tree
    searched = []
    monkeypatch.setattr(tree, "find_cycles", lambda *args: searched.append(args))
    run_ingest(repo, db)
    assert resumed == [True]
    assert searched == []
    assert len({p for p in reads if p.startswith("services/")}) <= 3, reads
    full = tmp_path / "full.db"
    monkeypatch.undo()
    run_ingest(repo, full)
    assert_same_db(db, full)


def test_each_environment_resumes_from_its_own_stored_tip(tmp_path, monkeypatch):
    """One commit on one environment's branch at a time (not the first environment's
    too): each resumes from that environment's stored services, and every environment
    still equals a fresh one-branch database of its branch."""
    from test_environments import ENVS, assert_each_environment_is_its_branch

    repo = GitRepo(tmp_path / "configs")
    repo.service("auth", version="1.0.0")
    repo.service("billing", dependencies=[{"service": "auth", "version_constraint": ">=1.0"}])
    repo.commit("base")
    repo.git("branch", "staging")
    repo.git("branch", "develop")
    db = tmp_path / "registry.db"
    run_ingest(repo, db, environments=ENVS)
    (tmp_path / "fresh").mkdir()
    resumed = spy_on_resumes(monkeypatch)
    steps = [  # (branch, message, change, status of auth in dev afterwards)
        ("staging", "auth 2.0 in staging: billing's constraint still met",
         lambda: repo.service("auth", version="2.0.0"), "CONFIGURED"),
        ("develop", "a cycle in dev", lambda: (
            repo.service("auth", dependencies=[{"service": "billing"}])), "ERROR"),
        ("main", "prod hotfix", lambda: repo.service("billing", version="1.0.1", dependencies=[
            {"service": "auth", "version_constraint": ">=1.0"}]), "ERROR"),
        ("develop", "the cycle broken in dev", lambda: repo.service("auth", version="1.2.0"),
         "CONFIGURED"),
    ]
    for branch, message, change, dev_auth in steps:
        repo.git("checkout", "-q", branch)
        change()
        repo.commit(message)
        assert run_ingest(repo, db).commits_added == 1
        assert_each_environment_is_its_branch(db, repo, tmp_path / "fresh")
        assert rows(db, "select status from environment_services where environment = 'dev' "
                        "and service_id = 'platform/auth'")[0]["status"] == dev_auth, message
    assert resumed and all(resumed)
