"""Registry benchmark: large-scale registration, bulk update, and sync cost vs history.

    python benchmarks/bench_registry.py --services 1000 --runs 3
    python benchmarks/bench_registry.py --services 200 --histories 1000 --runs 2 --json

Steps (each run starts from fresh copies; all in-process, so interpreter start-up is
not counted):

``register``  ``ServiceRegistry.register_service`` for ``--services`` new services,
              one at a time (each: validate against the whole tree, write, commit, ingest).
              Reports the total, the median per-service call, and the median of the
              first and last 100 calls (does a registration get slower as the registry
              grows?).
``bulk``      then one commit changing every service's config (version bump and a
              parameter), and one ``sync_configurations()``: total and per service.
``history``   on generated repos (``generate_repo.py``) of ``--services`` services and
              each of ``--histories`` commits, already ingested: one new commit changing
              1 file, then 100 files, each followed by a timed sync. If the cost of a sync
              is that of the change, the 1-file times are about equal across histories.

Medians over ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate_repo import append_commit, generate  # noqa: E402

from aureacore_db.ingest import ingest  # noqa: E402
from aureacore_db.models import ServiceConfig, ServiceDependency  # noqa: E402
from aureacore_db.registry import ServiceRegistry  # noqa: E402

NAMESPACES = ("platform", "payments", "identity", "data", "search")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def service_config(i: int, version: str = "1.0.0", replicas: int = 2) -> ServiceConfig:
    deps = []
    if i >= 10:  # each depends on an earlier one: whole-tree checks have work to do
        j = i // 10
        deps = [ServiceDependency(f"{NAMESPACES[j % 5]}/svc-{j:04d}", ">=1.0.0")]
    return ServiceConfig(name=f"svc-{i:04d}", namespace=NAMESPACES[i % 5], version=version,
                         owner=f"team-{i % 17}", service_type={"type": "rest"},
                         dependencies=deps, parameters={"replicas": replicas, "i": i})


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Bench")
    git(path, "config", "user.email", "bench@example.com")
    (path / "README.md").write_text("bench\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "start")
    return path


def run_register(work: Path, services: int) -> dict:
    repo = new_repo(work / "configs")
    db = work / "registry.db"
    ingest(repo, db)
    registry = ServiceRegistry(db, repo)
    times = []
    started = time.perf_counter()
    for i in range(services):
        t0 = time.perf_counter()
        result = registry.register_service(service_config(i))
        times.append(time.perf_counter() - t0)
        assert result.status == "CONFIGURED", result
    total = time.perf_counter() - started
    head = min(100, len(times))
    # bulk: one commit changing every config, then one sync
    store_paths = []
    for i in range(services):
        cfg = service_config(i, version="1.1.0", replicas=3)
        rel = f"services/{NAMESPACES[i % 5]}/svc-{i:04d}.yaml"
        (repo / rel).write_text(cfg.to_yaml())
        store_paths.append(rel)
    registry.git.commit_changes(f"Bump {services} services", store_paths)
    t0 = time.perf_counter()
    synced = registry.sync_configurations()
    bulk = time.perf_counter() - t0
    assert len(synced.changed_services) == services, len(synced.changed_services)
    return {"register_total_s": total, "register_median_ms": statistics.median(times) * 1e3,
            "register_first100_ms": statistics.median(times[:head]) * 1e3,
            "register_last100_ms": statistics.median(times[-head:]) * 1e3,
            "bulk_sync_s": bulk, "bulk_per_service_ms": bulk / services * 1e3}


def cached_history(keep: Path, services: int, commits: int) -> tuple[Path, Path]:
    """A generated repo and its ingested database, made on first use."""
    src = hashlib.sha1((HERE / "generate_repo.py").read_bytes()).hexdigest()[:8]
    base = keep / f"registry-s{services}-c{commits}-{src}"
    repo, db = base / "repo", base / "registry.db"
    if not db.exists():
        shutil.rmtree(base, ignore_errors=True)
        t0 = time.perf_counter()
        generate(repo, services=services, commits=commits)
        ingest(repo, base / "tmp.db")
        (base / "tmp.db").rename(db)
        print(f"generated and ingested {commits} commits in {time.perf_counter() - t0:.0f}s",
              file=sys.stderr)
    return repo, db


def run_history(keep: Path, work: Path, services: int, commits: int) -> dict:
    src_repo, src_db = cached_history(keep, services, commits)
    repo, db = work / f"h{commits}", work / f"h{commits}.db"
    shutil.copytree(src_repo, repo, symlinks=True)
    shutil.copy(src_db, db)
    registry = ServiceRegistry(db, repo)
    registry.sync_configurations()  # source path differs from the cached one: no-op walk
    out = {}
    for files in (1, 100):
        append_commit(repo, files)
        t0 = time.perf_counter()
        result = registry.sync_configurations()
        out[f"sync_{files}_file_ms"] = (time.perf_counter() - t0) * 1e3
        assert len(result.new_commits) == 1
    t0 = time.perf_counter()
    registry.sync_configurations()
    out["sync_nothing_ms"] = (time.perf_counter() - t0) * 1e3
    return out


def median_of(runs: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--histories", default="1000,10000",
                    help="comma-separated history lengths (commits) for the sync test")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--steps", default="register,history")
    ap.add_argument("--keep", type=Path, default=HERE / ".bench")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    steps = args.steps.split(",")
    args.keep.mkdir(parents=True, exist_ok=True)
    report: dict = {"services": args.services, "runs": args.runs}
    if "register" in steps:
        runs = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(dir=args.keep) as work:
                runs.append(run_register(Path(work), args.services))
        report["register"] = median_of(runs)
    if "history" in steps:
        report["history"] = {}
        for commits in (int(c) for c in args.histories.split(",")):
            runs = []
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory(dir=args.keep) as work:
                    runs.append(run_history(args.keep, Path(work), args.services, commits))
            report["history"][commits] = median_of(runs)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"services: {args.services}, medians of {args.runs} runs")
    if "register" in report:
        r = report["register"]
        print(f"register {args.services} one by one: {r['register_total_s']:.1f}s total, "
              f"{r['register_median_ms']:.1f} ms/service (first 100: "
              f"{r['register_first100_ms']:.1f} ms, last 100: {r['register_last100_ms']:.1f} ms)")
        print(f"change {args.services} configs in one commit + sync: {r['bulk_sync_s']:.2f}s "
              f"({r['bulk_per_service_ms']:.2f} ms/service)")
    for commits, h in report.get("history", {}).items():
        print(f"history {commits:>6} commits: sync of 1-file change {h['sync_1_file_ms']:.0f} ms, "
              f"100-file change {h['sync_100_file_ms']:.0f} ms, no change "
              f"{h['sync_nothing_ms']:.0f} ms")


if __name__ == "__main__":
    main()
