"""Several branches in one database as environments (DESIGN §6): each environment's
mainline and current services equal what a one-branch database of its branch holds,
whatever the history does between runs (merges between environment branches, a
cherry-picked hotfix, a force-push of one branch, environments added and removed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import GitRepo, rows

from aureacore_db.ingest import ingest

ENVS = [("dev", "develop"), ("staging", "staging"), ("prod", "main")]
SERVICE_COLUMNS = ("path, config_id, version, status, status_message, removed, "
                   "error_count, warning_count, last_commit")


def env_view(db: Path, name: str) -> tuple[dict, set]:
    """(services by id, mainline shas) of environment ``name``."""
    services = {r["service_id"]: r for r in rows(
        db, f"select service_id, {SERVICE_COLUMNS} from environment_services "
            "where environment = ?", (name,))}
    for r in services.values():
        del r["service_id"]
    chain = {r["commit_sha"] for r in rows(
        db, "select commit_sha from environment_commits where environment = ?", (name,))}
    return services, chain


def one_branch_view(repo: GitRepo, branch: str, tmp: Path) -> tuple[dict, set]:
    """The same, from a fresh one-branch database of ``branch``."""
    db = tmp / f"only-{branch}-{len(list(tmp.iterdir()))}.db"
    ingest(repo.path, db, branch=branch)
    services = {r["id"]: r for r in rows(db, f"select id, {SERVICE_COLUMNS} from services")}
    for r in services.values():
        del r["id"]
    chain = {r["sha"] for r in rows(db, "select sha from commits where mainline = 1")}
    return services, chain


def assert_each_environment_is_its_branch(db: Path, repo: GitRepo, tmp: Path,
                                          envs: list[tuple[str, str]] = ENVS) -> None:
    got_envs = rows(db, "select name, branch, position, tip from environments "
                        "order by position")
    assert [(e["name"], e["branch"]) for e in got_envs] == envs
    for env, (name, branch) in zip(got_envs, envs, strict=True):
        assert env["tip"] == repo.git("rev-parse", branch)
        assert env_view(db, name) == one_branch_view(repo, branch, tmp), name
    reachable = set(repo.git("rev-list", *[b for _, b in envs]).split())
    stored = {r["sha"] for r in rows(db, "select sha from commits")}
    assert stored == reachable  # each commit once, none left over
    seqs = {r["sha"]: r["seq"] for r in rows(db, "select sha, seq from commits")}
    for line in repo.git("rev-list", "--parents", *[b for _, b in envs]).splitlines():
        sha, *parents = line.split()
        assert all(seqs[p] < seqs[sha] for p in parents)  # parents first
    assert sorted(seqs.values()) == list(range(1, len(seqs) + 1))


@pytest.fixture
def envrepo(tmp_path: Path) -> GitRepo:
    """main (prod) <- staging <- develop, with drift: a version only in dev, a fix
    waiting in staging, a prod hotfix not yet in dev."""
    repo = GitRepo(tmp_path / "configs")
    repo.service("auth", version="1.0.0")
    repo.service("billing", version="2.0.0",
                 dependencies=[{"service": "auth", "version_constraint": ">=1.0.0"}])
    repo.commit("base")
    repo.git("checkout", "-q", "-b", "staging")
    repo.service("billing", version="2.1.0",
                 dependencies=[{"service": "auth", "version_constraint": ">=1.0.0"}])
    repo.commit("billing 2.1.0 (a fix waiting in staging)")
    repo.git("checkout", "-q", "-b", "develop")
    repo.service("auth", version="1.1.0")
    repo.service("search", version="0.1.0")
    repo.commit("auth 1.1.0 and a new service, only in dev")
    repo.git("checkout", "-q", "main")
    repo.service("auth", version="1.0.1")
    repo.commit("prod hotfix auth 1.0.1")
    return repo


def test_three_branches_are_three_environments_sharing_commits(envrepo: GitRepo,
                                                               tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    result = ingest(envrepo.path, db, environments=ENVS)
    assert [e["name"] for e in result.environments] == ["dev", "staging", "prod"]
    assert result.commits == 4  # base is on every branch, stored once
    assert_each_environment_is_its_branch(db, envrepo, tmp_path)
    matrix = {(r["environment"], r["service_id"]): r["version"] for r in rows(
        db, "select environment, service_id, version from environment_services")}
    assert matrix[("dev", "platform/auth")] == "1.1.0"
    assert matrix[("prod", "platform/auth")] == "1.0.1"
    assert matrix[("staging", "platform/billing")] == "2.1.0"
    assert ("prod", "platform/search") not in matrix
    # the first environment keeps the meaning of the one-branch tables
    assert {r["id"] for r in rows(db, "select id from current_services")} == \
        {sid for (env, sid) in matrix if env == "dev"}
    assert {r["sha"] for r in rows(db, "select sha from commits where mainline = 1")} == \
        env_view(db, "dev")[1]


def test_incremental_runs_follow_merges_cherry_picks_and_a_force_push(
        envrepo: GitRepo, tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    ingest(envrepo.path, db, environments=ENVS)
    repo = envrepo
    # promotion by merge: staging into prod, with a merge commit
    repo.git("merge", "-q", "--no-ff", "-m", "promote staging to prod", "staging")
    # the prod hotfix cherry-picked back into dev, and more dev work
    repo.git("checkout", "-q", "develop")
    repo.git("cherry-pick", "-X", "theirs", "main^1")
    repo.service("search", version="0.2.0")
    repo.commit("search 0.2.0")
    result = ingest(repo.path, db)  # no options: the stored environments
    assert not result.rewrite_detected
    assert_each_environment_is_its_branch(db, repo, tmp_path)

    # force-push of staging only: its fix is replaced by another one
    dev_history = rows(db, "select h.id, h.commit_sha, h.service_id from history h join "
                           "environment_commits e on e.commit_sha = h.commit_sha "
                           "and e.environment = 'dev' order by h.id")
    repo.git("checkout", "-q", "staging")
    repo.git("reset", "-q", "--hard", "staging~1")
    repo.service("billing", version="2.2.0", owner="team-billing",
                 dependencies=[{"service": "auth", "version_constraint": ">=1.0.0"}])
    repo.commit("billing 2.2.0 instead")
    result = ingest(repo.path, db)
    assert_each_environment_is_its_branch(db, repo, tmp_path)
    # the other environments' rows were not re-derived (same ids)
    still = rows(db, "select h.id, h.commit_sha, h.service_id from history h join "
                     "environment_commits e on e.commit_sha = h.commit_sha "
                     "and e.environment = 'dev' order by h.id")
    assert still == dev_history


def test_an_environment_added_later_and_one_removed(envrepo: GitRepo, tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    ingest(envrepo.path, db, branch="main")
    assert [r["name"] for r in rows(db, "select name from environments")] == ["main"]
    ingest(envrepo.path, db, environments=[("prod", "main"), ("staging", "staging")])
    assert_each_environment_is_its_branch(db, envrepo, tmp_path,
                                          [("prod", "main"), ("staging", "staging")])
    ingest(envrepo.path, db, environments=ENVS)
    assert_each_environment_is_its_branch(db, envrepo, tmp_path)
    # dropping dev: its only commit goes, and the first environment is now staging
    ingest(envrepo.path, db, environments=ENVS[1:])
    assert_each_environment_is_its_branch(db, envrepo, tmp_path, ENVS[1:])
    assert not rows(db, "select 1 from environment_services where environment = 'dev'")
    assert {r["sha"] for r in rows(db, "select sha from commits where mainline = 1")} == \
        env_view(db, "staging")[1]


def test_an_environment_moved_onto_a_commit_another_one_brought_in(
        envrepo: GitRepo, tmp_path: Path) -> None:
    """prod fast-forwarded to staging's tip: no new commit, a new state for prod."""
    repo = envrepo
    repo.git("checkout", "-q", "staging")
    repo.git("branch", "-q", "-f", "main", "staging")
    db = tmp_path / "registry.db"
    ingest(repo.path, db, environments=ENVS)
    repo.service("billing", version="2.1.1",
                 dependencies=[{"service": "auth", "version_constraint": ">=1.0.0"}])
    repo.commit("billing 2.1.1")
    ingest(repo.path, db)
    repo.git("branch", "-q", "-f", "main", "staging")  # prod catches up, no new commit
    result = ingest(repo.path, db)
    assert result.commits_added == 0
    assert_each_environment_is_its_branch(db, repo, tmp_path)


def test_cli_ingest_with_environments_remembers_them(envrepo: GitRepo, tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    args = ["aureacore-db", "ingest", str(envrepo.path), "--db", str(db)]
    out = subprocess.run([*args, "--env", "dev=develop", "--env", "staging",
                          "--env", "prod=main"], capture_output=True, text=True, check=True)
    assert "Environments: dev (develop at" in out.stdout
    envrepo.git("checkout", "-q", "staging")
    envrepo.service("auth", version="1.0.2")
    envrepo.commit("auth 1.0.2 in staging")
    again = subprocess.run(args, capture_output=True, text=True, check=True)
    assert "1 new commits" in again.stdout
    assert_each_environment_is_its_branch(db, envrepo, tmp_path)
    bad = subprocess.run([*args, "--branch", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "none of them" in bad.stderr
    twice = subprocess.run([*args, "--env", "a=main", "--env", "a=develop"],
                           capture_output=True, text=True)
    assert twice.returncode == 2 and "given twice" in twice.stderr


def test_an_interrupted_run_is_continued_with_its_environments(envrepo: GitRepo,
                                                               tmp_path: Path) -> None:
    from aureacore_db.ingest import Ingest

    repo = envrepo
    for branch in ("develop", "staging", "main"):
        repo.git("checkout", "-q", branch)
        for i in range(8):
            repo.service(f"svc-{branch}-{i % 3}", version=f"1.{i}.0")
            repo.commit(f"{branch} {i}")
    db = tmp_path / "registry.db"

    class Stop(Exception):
        pass

    def stop_after(done: int, total: int) -> None:
        if done == 17:
            raise Stop

    with pytest.raises(Stop):
        Ingest(str(repo.path), db, environments=ENVS, batch_commits=5, workers=0,
               progress=stop_after).run()
    left = rows(db, "select count(*) n from commits")[0]["n"]
    assert 0 < left < 28
    assert [r["name"] for r in rows(db, "select name from environments order by position")] \
        == ["dev", "staging", "prod"]
    result = ingest(repo.path, db)  # no options: continues with the three environments
    assert result.commits == 28
    assert_each_environment_is_its_branch(db, repo, tmp_path)
