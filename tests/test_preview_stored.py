"""The preview of a write from the stored state of the environment's tip: it validates only
the services the write can affect (the written ones, their dependents, cycles through
them), and its answer is the whole tree's, on real repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pygit2
import pytest
from conftest import GitRepo, run_ingest

from aureacore_db.preview import Preview, preview_write
from aureacore_db.rollback import describe

WEB_NEEDS_API = [{"service": "api", "version_constraint": ">=2.0.0"}]
MAX_3 = {"type": "object", "properties": {"replicas": {"type": "integer", "maximum": 3}}}


@pytest.fixture
def registry(repo: GitRepo, db_path: Path) -> GitRepo:
    """api 2.0.0 that web requires at >=2.0.0; a cycle ping <-> pong; a needs b; a
    service declared by two files; one with a parameter schema; some bystanders."""
    repo.service("api", version="2.0.0")
    repo.service("web", dependencies=WEB_NEEDS_API)
    repo.service("ping", dependencies=[{"service": "pong"}])
    repo.service("pong", dependencies=[{"service": "ping"}])
    repo.service("a", dependencies=[{"service": "b"}])
    repo.service("b")
    repo.service("dup")
    repo.service("dup", rel="services/platform/dup-copy.yaml")
    repo.service("sized", parameters={"replicas": 2})
    repo.write("schemas/platform/sized.json", json.dumps(MAX_3))
    for number in range(20):
        repo.service(f"other-{number}", namespace="core")
    repo.service("broken")
    repo.commit("start")
    repo.write("services/platform/broken.yaml", "name: broken\nversion: [unclosed\n")
    repo.commit("broken is unreadable")
    run_ingest(repo, repo.path.parent / "registry.db")
    return repo


def _yaml(name: str, **fields) -> bytes:
    import yaml

    return yaml.safe_dump({"name": name, "namespace": "platform", **fields}).encode()


def both(repo: GitRepo, db: Path, files: dict[str, bytes | None],
         subject: str | list[str] | None) -> Preview:
    """The preview from the stored state, checked equal to the whole tree's."""
    git = pygit2.Repository(str(repo.path))
    fast = preview_write(git, repo.head(), files, subject=subject, db=db)
    whole = preview_write(git, repo.head(), files, subject=subject)
    assert fast.as_dict() == whole.as_dict()
    assert fast.candidate is not None and fast.candidate.unjudged  # most never judged
    assert whole.candidate is not None and not whole.candidate.unjudged
    return fast


CASES = {
    "a cycle made": ({"services/platform/b.yaml": _yaml(
        "b", version="1.0.0", dependencies=[{"service": "a"}])}, "platform/b",
        ["platform/a"], [], "ERROR"),
    "a cycle broken": ({"services/platform/pong.yaml": _yaml("pong", version="1.0.0")},
                       "platform/pong", [], ["platform/pong", "platform/ping"], "CONFIGURED"),
    "a version lowered below what a dependent requires": (
        {"services/platform/api.yaml": _yaml("api", version="1.5.0")}, "platform/api",
        ["platform/web"], [], "CONFIGURED"),
    "a required dependency removed": ({"services/platform/api.yaml": None}, "platform/api",
                                      ["platform/web"], [], None),
    "a service declared by a second file": (
        {"services/platform/api-copy.yaml": _yaml("api", version="2.0.0")}, "platform/api",
        [], [], "ERROR"),
    "a duplicate resolved": ({"services/platform/dup-copy.yaml": None}, "platform/dup",
                             [], ["platform/dup"], "CONFIGURED"),
    "an unreadable config made readable": (
        {"services/platform/broken.yaml": _yaml("broken", version="1.0.1")},
        "platform/broken", [], ["platform/broken"], "CONFIGURED"),
    "parameters over their schema": (
        {"services/platform/sized.yaml": _yaml("sized", version="1.0.0",
                                               parameters={"replicas": 5})},
        "platform/sized", [], [], "ERROR"),
    "a parameter schema that an unchanged service breaks": (
        {"schemas/platform/sized.json": json.dumps(
            {**MAX_3, "properties": {"replicas": {"type": "integer", "maximum": 1}}}
        ).encode()}, None, ["platform/sized"], [], None),
}


@pytest.mark.parametrize("case", CASES)
def test_the_stored_preview_is_the_whole_trees(registry, db_path, case):
    files, subject, breaks, fixes, after = CASES[case]
    preview = both(registry, db_path, files, subject)
    assert [c.service_id for c in preview.breaks] == breaks
    assert [c.service_id for c in preview.fixes] == fixes
    assert preview.subject_after == after


def test_the_kept_state_is_used_from_another_thread(registry, db_path):
    """The web previews in worker threads: the kept state (and its connection, which
    looks up an unreadable config's last readable one) serves any of them."""
    from concurrent.futures import ThreadPoolExecutor

    files = {"services/platform/broken.yaml": _yaml("broken", version="1.0.2")}
    first = both(registry, db_path, files, "platform/broken")
    with ThreadPoolExecutor(2) as pool:
        again = list(pool.map(lambda _: both(registry, db_path, files, "platform/broken"),
                              range(4)))
    assert all(p.as_dict() == first.as_dict() for p in again)


def test_several_services_written_at_once(registry, db_path):
    preview = both(registry, db_path, {
        "services/platform/api.yaml": _yaml("api", version="1.0.0"),
        "services/platform/pong.yaml": _yaml("pong", version="1.0.0")},
        ["platform/api", "platform/pong"])
    assert [c.service_id for c in preview.breaks] == ["platform/web"]
    assert preview.written_after == {"platform/api": "CONFIGURED",
                                     "platform/pong": "CONFIGURED"}


def test_a_branch_ahead_of_the_ingested_tip_is_previewed_from_its_whole_tree(registry,
                                                                             db_path):
    registry.service("web", dependencies=[{"service": "api", "version_constraint": ">=1.0.0"}])
    registry.commit("web accepts api 1.x (not ingested)")
    git = pygit2.Repository(str(registry.path))
    files = {"services/platform/api.yaml": _yaml("api", version="1.5.0")}
    preview = preview_write(git, registry.head(), files, subject="platform/api", db=db_path)
    assert preview.candidate is not None and not preview.candidate.unjudged
    assert preview.breaks == []


def test_the_kept_state_follows_the_next_ingest(registry, db_path):
    files = {"services/platform/api.yaml": _yaml("api", version="1.5.0")}
    assert [c.service_id for c in both(registry, db_path, files, "platform/api").breaks] == [
        "platform/web"]
    registry.service("web", dependencies=[{"service": "api", "version_constraint": ">=1.0.0"}])
    registry.commit("web accepts api 1.x")
    run_ingest(registry, db_path)
    assert both(registry, db_path, files, "platform/api").breaks == []


def test_describe_a_rollback_previews_from_the_stored_state(registry, db_path):
    older = registry.head()
    registry.service("api", version="3.0.0")
    registry.service("web", dependencies=[{"service": "api", "version_constraint": ">=3.0.0"}])
    registry.commit("api 3, web needs it")
    run_ingest(registry, db_path)
    plan = describe(db_path, "platform/api", older)
    assert plan["preview"]["breaks"] == ["platform/web"]
    assert plan["preview"]["base"] == registry.head()


@pytest.mark.parametrize("files", [
    {"services/platform/api.yaml": b"name: api\n"},
    {"services/platform/run.sh": b"echo new\n"},  # stays executable
    {"services/platform/link.yaml": b"name: link\n"},  # a symbolic link becomes a file
    {"services/new-team/deep/x.yaml": b"name: x\n", "top.txt": b"top\n"},
    {"services/core/only.yaml": None},  # its folder goes with it
    {"services/platform/missing.yaml": None, "services/nowhere/x.yaml": None},
    {"services/platform/api.yaml": None, "services/platform/run.sh": None,
     "services/platform/link.yaml": None, "services/core/only.yaml": None, "README": None},
])
def test_the_candidate_tree_rebuilds_only_the_written_folders(repo, files):
    """The same tree as a whole index makes (the way it was built before)."""
    from aureacore_db.preview import candidate_tree, index_tree

    repo.service("api")
    repo.write("services/platform/run.sh", "echo\n")
    (repo.path / "services/platform/run.sh").chmod(0o755)
    (repo.path / "services/platform/link.yaml").symlink_to("api.yaml")
    repo.service("only", namespace="core")
    repo.write("README", "hello\n")
    repo.commit("files")
    git = pygit2.Repository(str(repo.path))
    base = git[repo.head()].peel(pygit2.Commit).tree
    assert candidate_tree(git, base, files) == index_tree(git, base, files)


def test_a_file_where_a_folder_is_refused(repo):
    from aureacore_db.preview import candidate_tree

    repo.service("api")
    repo.commit("one")
    git = pygit2.Repository(str(repo.path))
    base = git[repo.head()].peel(pygit2.Commit).tree
    for files in ({"services/platform": b"x"}, {"services/platform/api.yaml/x": b"x"}):
        with pytest.raises(ValueError, match="both a file and a directory"):
            candidate_tree(git, base, files)
