"""Environment branches on a generated repository (see README.md, "Environments").

    python benchmarks/env_branches.py /tmp/config-repo

From ``main`` (whose history generate_repo.py wrote) make three branches that share most
of their history, as a team's ``dev``, ``staging`` and ``prod`` do:

- ``dev`` = the tip of ``main``;
- ``staging`` = ``main~100`` (first-parent chain) plus 3 staging-only commits;
- ``prod`` = ``main~200`` plus 20 prod-only hotfix commits.

Each own commit bumps one parameter of one service (the generator's own change), dated
after its parent. Deterministic: same repository, same branch shas. The branches are
written with pygit2, without touching the worktree.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pygit2
import yaml
from generate_repo import _bump_parameter, render

# branch -> (commits back from main's tip on the first-parent chain, own commits)
BRANCHES: dict[str, tuple[int, int]] = {"dev": (0, 0), "staging": (100, 3), "prod": (200, 20)}
ENVIRONMENTS = [("dev", "dev"), ("staging", "staging"), ("prod", "prod")]


def _blobs(tree: pygit2.Tree, prefix: str) -> list[str]:
    """Paths of the files under ``tree``."""
    found = []
    for entry in tree:
        path = f"{prefix}/{entry.name}"
        found += _blobs(entry, path) if entry.type_str == "tree" else [path]
    return found


def _own_commit(repo: pygit2.Repository, parent: pygit2.Commit, rng: random.Random,
                branch: str, n: int) -> pygit2.Commit:
    """One commit on ``parent`` bumping a parameter of one service."""
    paths = sorted(_blobs(parent.tree["services"], "services"))
    while True:
        path = rng.choice(paths)
        try:
            data = yaml.safe_load(parent.tree[path].data)
        except yaml.YAMLError:
            continue
        if isinstance(data, dict) and isinstance(data.get("parameters"), dict):
            break
    key = _bump_parameter(rng, data["parameters"])
    index = pygit2.Index()
    index.read_tree(parent.tree)
    index.add(pygit2.IndexEntry(path, repo.create_blob(render(data).encode()),
                                pygit2.enums.FileMode.BLOB))
    sig = pygit2.Signature("Bench Bot", "bench@example.com", parent.commit_time + 600, 0)
    message = f"{branch} only #{n}: {data.get('namespace')}/{data.get('name')}: set " \
              f"parameters.{key}\n"
    oid = repo.create_commit(None, sig, sig, message, index.write_tree(repo), [parent.id])
    return repo[oid]


def make_env_branches(repo_dir: str | Path, source: str = "main") -> dict[str, str]:
    """Create (or reset) the branches of ``BRANCHES`` from ``source``; return their tips."""
    repo = pygit2.Repository(str(repo_dir))
    tip = repo.revparse_single(source).peel(pygit2.Commit)
    tips = {}
    for branch, (back, own) in BRANCHES.items():
        commit = tip
        for _ in range(back):
            commit = commit.parents[0]
        rng = random.Random(f"{branch}:{commit.id}")
        for n in range(1, own + 1):
            commit = _own_commit(repo, commit, rng, branch, n)
        repo.references.create(f"refs/heads/{branch}", commit.id, force=True)
        tips[branch] = str(commit.id)
    return tips


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repo", type=Path)
    ap.add_argument("--source", default="main", help="branch the others come from")
    a = ap.parse_args(argv)
    for branch, sha in make_env_branches(a.repo, a.source).items():
        print(f"{branch} {sha}")


if __name__ == "__main__":
    main()
