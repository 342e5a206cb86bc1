"""TreeState: the verdicts reached commit by commit are those of each tree read alone."""

from __future__ import annotations

import pygit2

from aureacore_db.blobs import BlobReader
from aureacore_db.demo import build_demo_repo
from aureacore_db.tree import TreeState


def _picture(state: TreeState) -> dict:
    return {"verdicts": state.verdicts, "by_id": state.by_id, "layout": state.layout,
            "cycles": state.cycles, "param_schemas": state.param_schemas,
            "req_edges": state.req_edges, "dependents": state.dependents}


def test_incremental_verdicts_equal_a_fresh_read_at_every_demo_commit(tmp_path):
    repo = pygit2.Repository(str(build_demo_repo(tmp_path / "demo")))
    reader = BlobReader(repo)
    commits = list(repo.walk(repo.head.target, pygit2.enums.SortMode.TOPOLOGICAL
                             | pygit2.enums.SortMode.REVERSE))
    assert len(commits) > 20
    states: dict[str, TreeState] = {}
    verdict_changes, statuses = 0, set()
    for commit in commits:
        if commit.parents:
            parent = commit.parents[0]
            state = states[str(parent.id)].copy()
            step = state.advance(parent.tree, commit.tree)
        else:
            state = TreeState(reader)
            step = state.advance(None, commit.tree)
        verdict_changes += len(step.verdicts)
        statuses |= {v.status for v in state.verdicts.values()}
        states[str(commit.id)] = state

        fresh = TreeState(BlobReader(repo))
        fresh.advance(None, commit.tree)
        assert _picture(state) == _picture(fresh), f"at {commit.id}: {commit.message}"
    # the story really moves verdicts around, both ways
    assert verdict_changes > 40 and statuses == {"CONFIGURED", "ERROR"}
