"""The floor: the least work any ingest must do, as a plain pygit2 walk.

Visits every commit reachable from the branch, parents first; diffs each commit's tree
against its first parent (the root against the empty tree) and reads every added or
modified blob. With ``--parse`` it also loads every blob it read with PyYAML
(``yaml.load`` with the C ``CSafeLoader`` when PyYAML has it, else ``SafeLoader``),
the baseline of a history whose files are large YAML documents.

    python benchmarks/floor.py REPO [--branch main] [--parse]
"""

from __future__ import annotations

import argparse
import time

import pygit2
import yaml
from pygit2.enums import DeltaStatus, SortMode

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def walk_floor(repo_path: str, branch: str = "main", parse: bool = False,
               failed: list[str] | None = None) -> int:
    """Return the number of blobs read; with ``parse``, the ids of the blobs that do not
    load are appended to ``failed``."""
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
                data = repo[delta.new_file.id].data
                blobs += 1
                if parse:
                    try:
                        yaml.load(data, Loader=LOADER)  # noqa: S506 - a safe loader
                    except yaml.YAMLError:
                        if failed is not None:
                            failed.append(str(delta.new_file.id))
    return blobs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="pygit2 walk + first-parent diff + blob reads")
    ap.add_argument("repo")
    ap.add_argument("--branch", default="main")
    ap.add_argument("--parse", action="store_true",
                    help=f"also load every blob read with PyYAML ({LOADER.__name__})")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    failed: list[str] = []
    n = walk_floor(a.repo, a.branch, a.parse, failed)
    parsed = f", parsed with {LOADER.__name__} ({len(failed)} failed)" if a.parse else ""
    print(f"{n} blobs{parsed} in {time.perf_counter() - t0:.2f}s")


if __name__ == "__main__":
    main()
