"""Benchmark `aureacore-db ingest` against the floor (see README.md).

python benchmarks/bench_ingest.py --services 1000 --commits 10000 --runs 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generate_repo import append_commit, generate, run_git

HERE = Path(__file__).resolve().parent
STEPS = ("floor", "full", "incremental")


def measure(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd`` in a fresh process; return (wall seconds, peak RSS MB of that process)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-3000:]
            sys.exit(f"{' '.join(cmd)} exited with {proc.returncode}:\n{tail}")
    return wall, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def ingest_cmd() -> list[str]:
    script = Path(sys.executable).with_name("aureacore-db")
    found = str(script) if script.exists() else shutil.which("aureacore-db")
    return [found] if found else [sys.executable, "-m", "aureacore_db.cli"]


def cached_repo(keep: Path, services: int, commits: int) -> Path:
    """The generated repo for these parameters, generated on first use."""
    src = hashlib.sha1((HERE / "generate_repo.py").read_bytes()).hexdigest()[:8]
    repo = keep / f"repo-s{services}-c{commits}-seed1-{src}"
    if not (repo / ".git").is_dir():
        shutil.rmtree(repo, ignore_errors=True)
        t0 = time.perf_counter()
        generate(repo.with_suffix(".tmp"), services=services, commits=commits)
        repo.with_suffix(".tmp").rename(repo)
        print(f"generated {repo.name} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return repo


def bench(keep: Path, services: int, commits: int, runs: int, steps: list[str]) -> dict:
    cache = cached_repo(keep, services, commits)
    work = keep / f"work-{cache.name}"
    shutil.rmtree(work, ignore_errors=True)
    repo = work / "repo"
    shutil.copytree(cache, repo, symlinks=True)  # appends never touch the cache
    orig = run_git(repo, "rev-parse", "main")
    ingest = ingest_cmd()
    samples: dict[str, list[tuple[float, float]]] = {s: [] for s in steps}
    for i in range(runs):
        db = work / f"run{i}.db"
        if "floor" in steps:
            samples["floor"].append(measure([sys.executable, str(HERE / "floor.py"), str(repo)]))
        if "full" in steps:
            samples["full"].append(
                measure([*ingest, "ingest", str(repo), "--db", str(db), "--quiet"])
            )
        if "incremental" in steps:
            append_commit(repo)
            try:
                cmd = [*ingest, "ingest", str(repo), "--db", str(db), "--quiet"]
                samples["incremental"].append(measure(cmd))
            finally:
                run_git(repo, "reset", "-q", "--hard", orig)
        if i < runs - 1:  # keep only the last run's database
            for f in work.glob(f"{db.name}*"):
                f.unlink()
        print(
            f"run {i + 1}/{runs}: " + ", ".join(f"{s} {v[-1][0]:.2f}s" for s, v in samples.items()),
            file=sys.stderr,
        )
    floor = statistics.median(w for w, _ in samples["floor"]) if "floor" in steps else None
    result: dict = {
        "services": services,
        "commits": commits,
        "runs": runs,
        "repo": str(cache),
        "ingest": ingest,
        "steps": {},
    }
    for step, vals in samples.items():
        walls = [w for w, _ in vals]
        med = statistics.median(walls)
        result["steps"][step] = {
            "wall_s": walls,
            "rss_mb": [r for _, r in vals],
            "median_s": med,
            "min_s": min(walls),
            "max_s": max(walls),
            "ratio_to_floor": med / floor if floor else None,
            "median_rss_mb": statistics.median(r for _, r in vals),
        }
    dbs = sorted(work.glob("run*.db"))
    result["db_mb"] = dbs[-1].stat().st_size / 1e6 if dbs else None
    return result


def table(result: dict) -> str:
    rows = [
        "| step | median s | min s | max s | × floor | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for step, s in result["steps"].items():
        ratio = f"{s['ratio_to_floor']:.1f}" if s["ratio_to_floor"] is not None else "–"
        rows.append(
            f"| {step} | {s['median_s']:.2f} | {s['min_s']:.2f} | {s['max_s']:.2f} | "
            f"{ratio} | {s['median_rss_mb']:.0f} |"
        )
    head = f"{result['services']} services × {result['commits']} commits, {result['runs']} runs"
    if result["db_mb"]:
        head += f", database {result['db_mb']:.1f} MB"
    return head + "\n\n" + "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Benchmark aureacore-db ingest against the floor")
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--commits", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--keep",
        type=Path,
        default=HERE / ".bench",
        metavar="DIR",
        help="where generated repos and databases are kept (default: %(default)s)",
    )
    ap.add_argument(
        "--steps", default=",".join(STEPS), help="comma-separated subset of: " + ", ".join(STEPS)
    )
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = ap.parse_args(argv)
    steps = [s for s in STEPS if s in a.steps.split(",")]
    if "incremental" in steps and "full" not in steps:
        ap.error("the incremental step needs the full step")
    result = bench(a.keep.resolve(), a.services, a.commits, a.runs, steps)
    print(json.dumps(result, indent=2) if a.json else table(result))


if __name__ == "__main__":
    main()
