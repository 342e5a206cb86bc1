"""The floor: the least work any ingest must do, as a plain pygit2 walk.

Visits every commit reachable from the branch, parents first; diffs each commit's tree
against its first parent (the root against the empty tree) and reads every added or
modified blob.

    python benchmarks/floor.py REPO [--branch main]
"""

from __future__ import annotations

import argparse
import time

import pygit2
from pygit2.enums import DeltaStatus, SortMode


def walk_floor(repo_path: str, branch: str = "main") -> int:
    """Return the number of blobs read."""
    repo = pygit2.Repository(repo_path)
    tip = repo.branches.local[branch].target
    blobs = 0
    for commit in repo.walk(tip, SortMode.TOPOLOGICAL | SortMode.REVERSE):
        if commit.parents:
            diff = repo.diff(commit.parents[0].tree, commit.tree)
        else:
            diff = commit.tree.diff_to_tree(swap=True)
        for delta in diff.deltas:
            if delta.status in (DeltaStatus.ADDED, DeltaStatus.MODIFIED):
                repo[delta.new_file.id].data  # noqa: B018 - reading the blob is the point
                blobs += 1
    return blobs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="pygit2 walk + first-parent diff + blob reads")
    ap.add_argument("repo")
    ap.add_argument("--branch", default="main")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    n = walk_floor(a.repo, a.branch)
    print(f"{n} blobs in {time.perf_counter() - t0:.2f}s")


if __name__ == "__main__":
    main()
