"""Generate a synthetic Git repository of service configurations (DESIGN §1, convention layout).

Dev tool: writes history with ``git fast-import``; deterministic for a given seed.

    python benchmarks/generate_repo.py --services 1000 --commits 10000 OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

# fmt: off
NAMESPACES = [
    "platform", "payments", "identity", "data", "search",
    "messaging", "catalog", "web", "ml", "infra",
]
WORDS_A = [
    "auth", "user", "order", "payment", "billing", "invoice", "cart", "catalog", "search",
    "ledger", "notify", "email", "sms", "profile", "session", "token", "audit", "report",
    "price", "stock", "ship", "review", "media", "image", "feed", "rank", "geo", "quota",
    "config", "feature", "event", "metric", "trace", "log", "queue", "cache", "export",
    "import", "sync", "tax",
]
WORDS_B = [
    "service", "api", "worker", "gateway", "store", "indexer", "proxy", "scheduler",
    "consumer", "publisher", "adapter", "engine",
]
FIRST = ["ada", "bob", "chen", "dana", "eli", "fatima", "gus", "hana", "ivan", "jo", "kemal",
         "lena", "mo", "nina", "omar", "priya", "quinn", "rosa", "sven", "tara"]
LAST = ["lovelace", "smith", "wang", "okafor", "novak", "haddad", "berg", "sato", "ivanov",
        "moreau"]
TIMEZONES = ["+0000", "+0100", "+0200", "-0500", "-0800", "+0530", "+0900"]
SERVICE_TYPES = ["rest", "rest", "rest", "grpc", "graphql", "eventdriven", "other"]
METHODS = ["GET", "POST", "PUT", "DELETE"]
LOG_LEVELS = ["debug", "info", "warn", "error"]
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1"]
# fmt: on
START_TS = 1577836800  # 2020-01-01T00:00:00Z
SIDE_REF = "refs/heads/_generator_side"

Svc = dict[str, Any]


# --------------------------------------------------------------------------- YAML rendering

_PLAIN = re.compile(r"[A-Za-z/][A-Za-z0-9_./:-]*")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def non_string(v: Any) -> str | None:
    """YAML for a boolean, null, number or empty container (None for anything else)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, dict | list):
        return "{}" if isinstance(v, dict) else "[]"
    return None


def _scalar(v: Any) -> str:
    text = non_string(v)
    if text is not None:
        return text
    s = str(v)
    return s if _PLAIN.fullmatch(s) and s.lower() not in _RESERVED else json.dumps(s)


def _lines(obj: Any, ind: int) -> Iterator[str]:
    pad = "  " * ind
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict | list) and v:
                yield f"{pad}{k}:"
                yield from _lines(v, ind + 1)
            else:
                yield f"{pad}{k}: {_scalar(v)}"
    else:
        for item in obj:
            if isinstance(item, dict) and item:
                sub = list(_lines(item, ind + 1))
                yield f"{pad}- {sub[0].lstrip()}"
                yield from sub[1:]
            else:
                yield f"{pad}- {_scalar(item)}"


def render(data: Svc) -> str:
    """Render a service dict as block-style YAML (fast, stable key order)."""
    return "\n".join(_lines(data, 0)) + "\n"


# --------------------------------------------------------------------------- the model


@dataclass
class Service:
    rank: int  # creation order; required dependencies only point to lower ranks (acyclic)
    sid: str  # namespace/name
    path: str
    data: Svc


def _bump_version(rng: random.Random, v: str) -> str:
    major, minor, patch = (int(x) for x in v.split("."))
    r = rng.random()
    if r < 0.02:
        return f"{major + 1}.0.0"
    if r < 0.25:
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def _parameters(rng: random.Random) -> Svc:
    return {
        "replicas": rng.randint(1, 8),
        "timeout_ms": rng.choice([100, 250, 500, 1000, 2000]),
        "max_connections": rng.choice([50, 100, 200, 500]),
        "log_level": rng.choice(LOG_LEVELS),
        "region": rng.choice(REGIONS),
        "rate_limit_rps": rng.randint(1, 50) * 100,
        "feature_flags": {"new_ui": rng.random() < 0.5, "beta_api": rng.random() < 0.2},
        "cache": {
            "enabled": rng.random() < 0.7,
            "ttl_s": rng.choice([60, 300, 900]),
            "size_mb": rng.choice([32, 64, 128]),
        },
        "retry": {"attempts": rng.randint(1, 5), "backoff_ms": rng.choice([50, 100, 200])},
        "resources": {
            "cpu": f"{rng.choice([250, 500, 1000])}m",
            "memory": f"{rng.choice([256, 512, 1024])}Mi",
        },
    }


def _bump_parameter(rng: random.Random, params: Svc) -> str:
    """Change one leaf of ``params`` in place; returns its dotted key."""
    key = rng.choice(list(params))
    node, leaf = params, key
    if isinstance(params[key], dict):
        node, leaf = params[key], rng.choice(list(params[key]))
        key = f"{key}.{leaf}"
    old = node[leaf]
    if isinstance(old, bool):
        node[leaf] = not old
    elif isinstance(old, int):
        node[leaf] = max(1, old + rng.choice([-2, -1, 1, 1, 2]) * max(1, old // 4))
    elif leaf == "log_level":
        node[leaf] = rng.choice([x for x in LOG_LEVELS if x != old])
    elif leaf == "region":
        node[leaf] = rng.choice([x for x in REGIONS if x != old])
    else:  # "500m" / "512Mi"
        num, unit = re.fullmatch(r"(\d+)(\D+)", old).groups()  # type: ignore[union-attr]
        node[leaf] = f"{int(num) * 2 if rng.random() < 0.5 else max(1, int(num) // 2)}{unit}"
    return key


Files = dict[str, str | None]  # path -> new content, None = delete


def unique_name(rng: random.Random, live: Any, suffix: str = "-v{n}"
                ) -> tuple[str, str, str]:
    """A namespace, a base name and a service name (the base, or the base and a number)
    whose ``ns/name`` is not in ``live``."""
    ns = rng.choice(NAMESPACES)
    base = name = f"{rng.choice(WORDS_A)}-{rng.choice(WORDS_B)}"
    n = 2
    while f"{ns}/{name}" in live:
        name, n = base + suffix.format(n=n), n + 1
    return ns, base, name


class Model:
    """In-memory state of the live services plus the random choices that change it."""

    def __init__(self, seed: int, files_per_commit: int, invalid_share: float) -> None:
        self.rng = random.Random(seed)
        self.fpc = files_per_commit
        self.invalid_share = invalid_share
        self.live: dict[str, Service] = {}
        self.ids: list[str] = []  # live ids in a stable order, for seeded choices
        self.next_rank = 0
        self.ts = START_TS
        self.fixes: list[tuple[int, str]] = []  # (due commit number, service id)
        self.authors = [
            (f"{f.title()} {la.title()}", f"{f}.{la}@example.com", self.rng.choice(TIMEZONES))
            for f in FIRST
            for la in LAST[:3]
        ]

    def author(self) -> tuple[str, str]:
        """Next (``Name <email>``, ``epoch tz``); dates strictly increase."""
        self.ts += self.rng.randint(300, 3 * 3600)
        name, email, tz = self.rng.choice(self.authors)
        return f"{name} <{email}>", f"{self.ts} {tz}"

    def new_service(self) -> Service:
        rng = self.rng
        ns, base, name = unique_name(rng, self.live)
        stype = rng.choice(SERVICE_TYPES)
        data: Svc = {
            "schema_version": "1.0.0",
            "name": name,
            "namespace": ns,
            "version": f"1.{rng.randint(0, 9)}.{rng.randint(0, 20)}",
            "description": f"{base.replace('-', ' ').capitalize()} for the {ns} domain",
            "owner": f"team-{ns}-{rng.randint(1, 3)}",
            "documentation_url": f"https://docs.example.com/{ns}/{name}",
            "service_type": {"type": stype},
            "endpoints": [
                {
                    "name": f"op{i}",
                    "path": f"/api/v1/{base.split('-')[0]}/op{i}",
                    "method": rng.choice(METHODS),
                }
                for i in range(rng.randint(1, 4))
            ],
            "dependencies": [],
            "parameters": _parameters(rng),
            "health_check": {
                "url": f"http://{name}.{ns}.internal/healthz",
                "interval_s": rng.choice([10, 30, 60]),
            },
            "metadata": {"slack": f"#{ns}-{name}", "tier": rng.randint(1, 3)},
        }
        if stype == "other":
            data["service_type"]["custom_type"] = rng.choice(["batch", "cron", "stream"])
        svc = Service(self.next_rank, f"{ns}/{name}", f"services/{ns}/{name}.yaml", data)
        self.next_rank += 1
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
            self.add_dependency(svc)
        self.live[svc.sid] = svc
        self.ids.append(svc.sid)
        return svc

    def add_dependency(self, svc: Service) -> None:
        """Required edges only point to older services, so required deps stay acyclic."""
        if not self.ids:
            return
        target = self.live[self.rng.choice(self.ids)]
        deps = svc.data["dependencies"]
        if target.sid == svc.sid or any(d["_sid"] == target.sid for d in deps):
            return
        major, minor, _ = target.data["version"].split(".")
        short = target.sid.startswith(f"{svc.data['namespace']}/") and self.rng.random() < 0.5
        deps.append(
            {
                "service": target.data["name"] if short else target.sid,
                "version_constraint": f">={major}.{self.rng.randint(0, int(minor))}.0",
                "required": target.rank < svc.rank and self.rng.random() < 0.6,
                "_sid": target.sid,
            }
        )

    def content(self, svc: Service, extra_dep: dict[str, Any] | None = None) -> str:
        deps = [{k: v for k, v in d.items() if k != "_sid"} for d in svc.data["dependencies"]]
        return render({**svc.data, "dependencies": deps + ([extra_dep] if extra_dep else [])})

    def invalid(self, svc: Service, touched: set[str]) -> tuple[str, Service, str]:
        """An invalid file for ``svc`` (or, for a cycle, for one of its required deps)."""
        rng = self.rng
        kind = rng.choice(["unknown-key", "bad-yaml", "wrong-type", "cycle"])
        text = self.content(svc)
        if kind == "cycle":
            req = [d["_sid"] for d in svc.data["dependencies"] if d["required"]]
            req = [s for s in req if s not in touched]
            if req:
                back = {"service": svc.sid, "version_constraint": ">=0.1.0", "required": True}
                return kind, self.live[req[0]], self.content(self.live[req[0]], back)
            kind = "unknown-key"
        if kind == "unknown-key":
            text += f"dependancies:\n  - service: {rng.choice(self.ids)}\n"
        elif kind == "bad-yaml":
            text = text.replace("parameters:\n", "parameters:\n  broken: [1, 2\n", 1)
        else:
            field, bad = rng.choice(
                [
                    ("version", "3"),
                    ("endpoints", "login"),
                    ("health_check", "[1, 2]"),
                    ("dependencies", "none"),
                ]
            )
            text = re.sub(rf"(?m)^{field}:.*(\n  .*)*", f"{field}: {bad}", text, count=1)
        return kind, svc, text

    def change_set(
        self, n: int, exclude: set[str], structural: bool
    ) -> tuple[Files, str, set[str]]:
        """Mutate the model for commit number ``n``; never touches ``exclude``.

        Returns the file changes, the commit message and the touched service ids.
        """
        rng = self.rng
        files: Files = {}
        notes: list[str] = []
        touched: set[str] = set()

        def busy(sid: str) -> bool:
            return sid in touched or sid in exclude

        if structural:
            due = {sid for d, sid in self.fixes if d <= n and sid in self.live}
            self.fixes = [(d, sid) for d, sid in self.fixes if d > n and sid in self.live]
            for sid in sorted(due):
                svc = self.live[sid]
                _bump_parameter(rng, svc.data["parameters"])
                files[svc.path] = self.content(svc)
                touched.add(sid)
                notes.append(f"{sid}: fix config")
            r = rng.random()
            sid = rng.choice(self.ids)
            svc = self.live[sid]
            if r < 0.01:
                svc = self.new_service()
                files[svc.path] = self.content(svc)
                touched.add(svc.sid)
                notes.append(f"{svc.sid}: add service")
            elif r < 0.016 and len(self.ids) > 10:
                used = {d["_sid"] for s in self.live.values() for d in s.data["dependencies"]}
                gone = rng.choice([s for s in self.ids if s not in used and not busy(s)] or [""])
                if gone:
                    files[self.live.pop(gone).path] = None
                    self.ids.remove(gone)
                    touched.add(gone)
                    notes.append(f"{gone}: remove service")
            elif r < 0.019 and not busy(sid) and "/legacy/" not in svc.path:
                files[svc.path] = None
                svc.path = svc.path.replace("services/", "services/legacy/", 1)
                files[svc.path] = self.content(svc)
                touched.add(sid)
                notes.append(f"{sid}: move to {svc.path}")

        want, tries = rng.randint(max(1, self.fpc - 1), self.fpc + 1), 0
        while len(touched) < want and tries < 10 * want:
            tries += 1
            sid = rng.choice(self.ids)
            if busy(sid):
                continue
            touched.add(sid)
            svc = self.live[sid]
            what = []
            r = rng.random()
            if r < 0.75:
                what.append(f"set parameters.{_bump_parameter(rng, svc.data['parameters'])}")
            if r > 0.55:
                svc.data["version"] = _bump_version(rng, svc.data["version"])
                what.append(f"release {svc.data['version']}")
            if rng.random() < 0.05:
                self.add_dependency(svc)
                what.append("add dependency")
            elif rng.random() < 0.04 and svc.data["dependencies"]:
                svc.data["dependencies"].pop(rng.randrange(len(svc.data["dependencies"])))
                what.append("drop dependency")
            files[svc.path] = self.content(svc)
            if rng.random() < self.invalid_share:
                kind, bad, files[bad.path] = self.invalid(svc, touched | exclude)
                touched.add(bad.sid)
                what.append(f"({kind} in {bad.sid})")
                if rng.random() < 0.85:  # usually fixed a few commits later
                    self.fixes.append((n + rng.randint(1, 6), bad.sid))
            notes.append(f"{sid}: {', '.join(what)}")
        title = notes[0] if len(notes) == 1 else f"Update {len(notes)} services"
        return files, "\n".join([title, "", *notes]) if len(notes) > 1 else title, touched


class FastImport:
    """Writes a ``git fast-import`` stream; returns marks for commits."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.mark = 0

    def commit(
        self, ref: str, who: tuple[str, str], msg: str, parents: list[int], files: Files
    ) -> int:
        self.mark += 1
        m = msg.encode()
        w = self.out.write
        w(
            f"commit {ref}\nmark :{self.mark}\nauthor {who[0]} {who[1]}\n"
            f"committer {who[0]} {who[1]}\ndata {len(m)}\n".encode()
            + m
            + b"\n"
        )
        for i, p in enumerate(parents):
            w(f"{'from' if i == 0 else 'merge'} :{p}\n".encode())
        for path, text in files.items():
            if text is None:
                w(f"D {path}\n".encode())
            else:
                b = text.encode()
                w(f"M 100644 inline {path}\ndata {len(b)}\n".encode() + b + b"\n")
        w(b"\n")
        return self.mark


def run_git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    ).stdout.strip()


@contextmanager
def fast_import(out_dir: str | Path, side_ref: str = SIDE_REF) -> Iterator[FastImport]:
    """A new repository at ``out_dir`` (branch ``main``) written through ``git
    fast-import``: yields the writer, then finishes the import, drops ``side_ref`` (where
    side branches were built) and checks ``main`` out."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    run_git(out, "init", "-q", "-b", "main")
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"], cwd=out, stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    try:
        yield FastImport(proc.stdin)
        proc.stdin.write(b"done\n")
    finally:
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError(f"git fast-import failed with status {proc.returncode}")
    run_git(out, "update-ref", "-d", side_ref)
    run_git(out, "reset", "-q", "--hard")


def generate(
    out_dir: str | Path,
    services: int = 1000,
    commits: int = 10000,
    files_per_commit: int = 3,
    invalid_share: float = 0.02,
    merge_every: int = 100,
    seed: int = 1,
) -> Path:
    """Create a repo at ``out_dir`` whose ``main`` holds exactly ``commits`` commits."""
    if services < 1 or commits < 1:
        raise ValueError("need at least one service and one commit")
    model = Model(seed, files_per_commit, invalid_share)
    rng = model.rng
    with fast_import(out_dir) as fi:
        initial = [model.new_service() for _ in range(services)]
        files: Files = {s.path: model.content(s) for s in initial}
        tip = fi.commit("refs/heads/main", model.author(), f"Add {services} services", [], files)
        count, next_merge, branches = 1, merge_every, 0
        while count < commits:
            left = commits - count
            if merge_every and count >= next_merge and left >= 4:
                next_merge += merge_every
                branches += 1
                n_side = min(rng.randint(2, 4), left - 2)
                n_main = min(rng.randint(0, 2), left - 1 - n_side)
                side, side_files, locked = tip, {}, set()
                for _ in range(n_side):
                    count += 1
                    files, msg, touched = model.change_set(count, set(), structural=False)
                    side = fi.commit(SIDE_REF, model.author(), msg, [side], files)
                    side_files.update(files)
                    locked |= touched
                for _ in range(n_main):
                    count += 1
                    files, msg, _ = model.change_set(count, locked, structural=False)
                    tip = fi.commit("refs/heads/main", model.author(), msg, [tip], files)
                count += 1
                msg = f"Merge branch 'feature/change-{branches}'"
                tip = fi.commit("refs/heads/main", model.author(), msg, [tip, side], side_files)
            else:
                count += 1
                files, msg, _ = model.change_set(count, set(), structural=True)
                tip = fi.commit("refs/heads/main", model.author(), msg, [tip], files)
    return Path(out_dir)


def append_commit(repo_dir: str | Path, n_files: int = 1) -> str:
    """Add one commit on ``main`` (checked out) bumping a parameter in ``n_files`` services.

    Deterministic given the current tip. Returns the new commit sha.
    """
    def bump(repo: Path, path: str, rng: random.Random) -> str | None:
        try:
            data = yaml.safe_load(run_git(repo, "show", f"HEAD:{path}"))
        except yaml.YAMLError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("parameters"), dict):
            return None
        key = _bump_parameter(rng, data["parameters"])
        (repo / path).write_text(render(data), encoding="utf-8")
        return f"{data.get('namespace')}/{data.get('name')}: set parameters.{key}"

    return commit_edits(repo_dir, n_files, bump)


def commit_edits(repo_dir: str | Path, n_files: int,
                 edit: Callable[[Path, str, random.Random], str | None],
                 who: tuple[str, str] = ("Bench Bot", "bench@example.com")) -> str:
    """One commit on ``main`` (checked out), 10 minutes after the tip, by ``who``: ``edit``
    changes service files in an order drawn from the tip (it returns a line for the
    message, or None for a file it leaves) until ``n_files`` are changed. Returns the
    commit's sha."""
    repo = Path(repo_dir)
    head = run_git(repo, "rev-parse", "HEAD")
    when = int(run_git(repo, "log", "-1", "--format=%at")) + 600
    paths = run_git(repo, "ls-tree", "-r", "--name-only", "HEAD", "services").splitlines()
    rng = random.Random(head)
    rng.shuffle(paths)
    notes: list[str] = []
    for path in paths:
        note = edit(repo, path, rng)
        if note is None:
            continue
        run_git(repo, "add", path)
        notes.append(note)
        if len(notes) >= n_files:
            break
    author = {"NAME": who[0], "EMAIL": who[1], "DATE": f"{when} +0000"}
    env = {f"GIT_{role}_{k}": v for role in ("AUTHOR", "COMMITTER") for k, v in author.items()}
    run_git(repo, "commit", "-q", "--no-verify", "-m", "\n".join(notes), env=env)
    return run_git(repo, "rev-parse", "HEAD")


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--commits", type=int, default=10000)
    ap.add_argument("--files-per-commit", type=int, default=3)
    ap.add_argument("--invalid-share", type=float, default=0.02)
    ap.add_argument("--merge-every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("out_dir", type=Path)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = generate(
        a.out_dir, a.services, a.commits, a.files_per_commit, a.invalid_share, a.merge_every, a.seed
    )
    secs = time.perf_counter() - t0
    git_mb, tree_mb = _size(out / ".git") / 1e6, (_size(out) - _size(out / ".git")) / 1e6
    n = run_git(out, "rev-list", "--count", "main")
    print(
        f"{out}: {n} commits in {secs:.1f}s; .git {git_mb:.1f} MB, worktree {tree_mb:.1f} MB",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
