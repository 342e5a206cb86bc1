"""Dependents re-judged when only their targets changed keep their own problems, and
reach the verdicts a fresh read of each tree reaches."""

from __future__ import annotations

import itertools
import json

import pygit2

from aureacore_db.blobs import BlobReader
from aureacore_db.tree import TreeState
from aureacore_db.verdicts import CLEAN, verdict

SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
          "properties": {"replicas": {"type": "integer", "maximum": 10}}}


def _story(repo) -> list[str]:
    """Commits where a dependent's own problems and its targets change, apart and
    together."""
    shas = []
    # api has its own problems: a parameter breaking its schema, a name that is no DNS label
    repo.service("api", parameters={"replicas": 20}, dependencies=[
        {"service": "db", "version_constraint": "^1.0.0"},
        {"service": "cache", "version_constraint": ">=2.0.0", "required": False},
        {"service": "queue"}])
    repo.write("schemas/platform/api.json", json.dumps(SCHEMA))
    repo.service("db", version="1.0.0")
    repo.service("cache", version="2.0.0")
    repo.service("queue")
    repo.write("services/platform/Bad_Name.yaml", {  # no name: the file's, no DNS label
        "namespace": "platform", "version": "1.0.0",
        "dependencies": [{"service": "db", "version_constraint": "~1.0.0"}]})
    shas.append(repo.commit("start"))
    repo.service("db", version="1.2.0")  # still meets ^1, no longer ~1.0
    shas.append(repo.commit("db 1.2"))
    repo.service("db", version="2.0.0")  # api: unmet
    shas.append(repo.commit("db 2"))
    repo.service("db", version="2.1.0")  # unmet, another message
    shas.append(repo.commit("db 2.1"))
    repo.service("cache", version="1.0.0")  # the optional one unmet too: a warning
    shas.append(repo.commit("cache 1"))
    # the schema and a target change together: api's own problems go
    repo.write("schemas/platform/api.json", json.dumps(
        {**SCHEMA, "properties": {"replicas": {"type": "integer", "maximum": 50}}}))
    repo.service("db", version="1.0.1")
    shas.append(repo.commit("schema relaxed, db 1.0.1"))
    # api's own file and a target change together
    repo.service("api", parameters={"replicas": 60}, dependencies=[
        {"service": "db", "version_constraint": "^1.0.0"},
        {"service": "cache", "version_constraint": ">=2.0.0", "required": False},
        {"service": "queue"}])
    repo.service("cache", version="2.5.0")
    shas.append(repo.commit("api 60 replicas, cache 2.5"))
    repo.rm("services/platform/queue.yaml")  # a target goes away
    shas.append(repo.commit("no queue"))
    repo.service("queue", version="")  # back, without a version
    shas.append(repo.commit("queue again"))
    repo.service("db", version="not-semver")
    shas.append(repo.commit("db version unreadable"))
    return shas


def _verdicts_as_read_alone(repo: pygit2.Repository, tree: pygit2.Tree) -> dict:
    fresh = TreeState(BlobReader(repo))
    fresh.advance(None, tree)
    return {sid: (v.status, v.message, v.problems, v.own) for sid, v in fresh.verdicts.items()}


def test_dependents_judged_again_match_a_fresh_read_with_own_problems_kept(repo):
    shas = _story(repo)
    git = pygit2.Repository(str(repo.path))
    state = TreeState(BlobReader(git))
    state.advance(None, git[shas[0]].tree)
    seen_messages = set()
    for before, after in itertools.pairwise(shas):
        state.advance(git[before].tree, git[after].tree)
        got = {sid: (v.status, v.message, v.problems, v.own)
               for sid, v in state.verdicts.items()}
        assert got == _verdicts_as_read_alone(git, git[after].tree), git[after].message
        seen_messages.add(state.verdicts["platform/api"].message)
    api = state.verdicts["platform/api"]
    assert api.own >= 1 and api.problems[0].kind == "schema"  # 60 > 50 replicas
    # the story moved api's verdict through several messages
    assert len(seen_messages) >= 5


def test_a_verdict_with_the_same_own_part_is_reused_when_nothing_differs(repo):
    shas = _story(repo)
    git = pygit2.Repository(str(repo.path))
    state = TreeState(BlobReader(git))
    state.advance(None, git[shas[0]].tree)
    api = state.verdicts["platform/api"]
    assert [p.kind for p in api.problems[:api.own]] == ["schema"]
    assert verdict(state, "platform/api", same_own=api) is api
    assert state.verdicts["platform/db"] is CLEAN  # no problems: the one clean verdict
    assert CLEAN.status == "CONFIGURED" and CLEAN.message == "" and CLEAN.own == 0
    # db moves to 1.2.0: api's own problems stay, its verdict is the same object
    state.advance(git[shas[0]].tree, git[shas[1]].tree)
    assert state.verdicts["platform/api"] is api
    # Bad_Name's own problem (its file name) is kept; its dependency is now unmet
    bad = state.verdicts["platform/Bad_Name"]
    assert [p.kind for p in bad.problems] == ["schema", "schema", "dependency"]
    assert bad.own == 2 and "1.2.0" in bad.problems[2].message
    # db 2: api's unmet dependency follows its kept own problem
    state.advance(git[shas[1]].tree, git[shas[2]].tree)
    api2 = state.verdicts["platform/api"]
    assert api2.problems[:api2.own] == api.problems[:api.own]
    assert [p.kind for p in api2.problems] == ["schema", "dependency"]
    assert "is at 2.0.0" in api2.message
