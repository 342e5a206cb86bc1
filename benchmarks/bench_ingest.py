"""Benchmark `aureacore-db ingest` against the floor (see README.md).

python benchmarks/bench_ingest.py --services 1000 --commits 10000 --runs 3
python benchmarks/bench_ingest.py --scale --keep /work/bench-cache   # 10k x 100k, cached
python benchmarks/bench_ingest.py --baseline ../main-checkout         # ratios in one run
python benchmarks/bench_ingest.py --envs --runs 3     # 3 environments vs 1 branch, one run
python benchmarks/bench_ingest.py --shape helm --baseline ../main-checkout  # Helm values history
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import generate_helm
import generate_repo
from env_branches import ENVIRONMENTS, make_env_branches
from generate_repo import run_git

HERE = Path(__file__).resolve().parent
SCALE = (10_000, 100_000)  # --scale: services, commits
STEPS = ("floor", "floor+parse", "full", "incremental", "nochange")
# per shape: the generator module, default services x commits and default steps
SHAPES = {
    "synthetic": (generate_repo, (1000, 10000), "floor,full,incremental,nochange"),
    "helm": (generate_helm, (300, 5000), "floor,floor+parse,full"),
}
ENV_STEPS = ("single", "envs")  # --envs: the longest branch alone, then all three


def rss_mb(pid: int) -> float:
    """Resident set of one process in MB (0 once it is gone), from /proc."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


def anon_mb(pid: int) -> float:
    """Anonymous resident memory of one process in MB (its heap and stacks: RSS without
    mapped files such as the pack index; 0 once it is gone), from /proc."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0.0


def tree_rss_mb(pid: int) -> float:
    """Resident set of a process and all its descendants (workers) in MB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        one = todo.pop()
        total += rss_mb(one)
        todo.extend(children.get(one, ()))
    return total


def commits_in(db: Path | None) -> int | None:
    """Commits stored so far (batches are committed as the walk goes)."""
    if db is None or not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
        try:
            return conn.execute("select count(*) from commits").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def measure(cmd: list[str], db: Path | None = None, every: float = 0.25,
            env: dict[str, str] | None = None) -> dict:
    """Run ``cmd`` in a fresh process; return its wall seconds, peak RSS (the process's
    own, from ``os.wait4``) and, sampled every ``every`` seconds from /proc, the peak RSS
    of the process tree (main + workers), the peak anonymous RSS of the process, and the
    curve of RSS against ``db``'s commits."""
    curve: list[tuple[int | None, float, float]] = []
    tree_peak = anon_peak = 0.0
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        # in a neutral folder: Python 3.11's fork server puts the folder it starts in
        # first on its path, so a checkout there would be imported by a baseline's
        # workers (aureacore_db.prefetch now starts it without; older versions did not)
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env,
                                cwd=tempfile.gettempdir())
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            main_rss, tree = rss_mb(proc.pid), tree_rss_mb(proc.pid)
            tree_peak = max(tree_peak, tree)
            anon_peak = max(anon_peak, anon_mb(proc.pid))
            curve.append((commits_in(db), main_rss, tree))
            time.sleep(every)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-3000:]
            sys.exit(f"{' '.join(cmd)} exited with {proc.returncode}:\n{tail}")
        out.seek(0)
        text = out.read().decode(errors="replace")
    own = json.loads(text)["duration_s"] if text.startswith("{") else None
    main_peak = usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime  # with the workers it waited for
    return {"wall": wall, "cpu": cpu, "own": own, "rss": main_peak,
            "tree_rss": max(tree_peak, main_peak), "anon_rss": anon_peak, "curve": curve,
            "load": (load_before, os.getloadavg()[0])}


def rss_curve(curve: list, points: int = 10) -> list[tuple[int, float, float]]:
    """The peak RSS (main, tree) seen up to each of ``points`` evenly spaced commit counts."""
    known = [(c, m, t) for c, m, t in curve if c is not None]
    if not known:
        return []
    top = max(c for c, _, _ in known)
    out, main_peak, tree_peak = [], 0.0, 0.0
    marks = [top * (i + 1) // points for i in range(points)]
    for c, m, t in curve:
        main_peak, tree_peak = max(main_peak, m), max(tree_peak, t)
        while c is not None and marks and c >= marks[0]:
            out.append((marks.pop(0), main_peak, tree_peak))
    return out


def ingest_cmd() -> list[str]:
    script = Path(sys.executable).with_name("aureacore-db")
    found = str(script) if script.exists() else shutil.which("aureacore-db")
    return [found] if found else [sys.executable, "-m", "aureacore_db.cli"]


def cached_repo(keep: Path, services: int, commits: int, shape: str = "synthetic") -> Path:
    """The generated repo for these parameters, generated on first use (keyed by the
    generators' source, so a changed generator makes a new one)."""
    sources = ["generate_repo.py"] + (["generate_helm.py"] if shape == "helm" else [])
    src = hashlib.sha1(b"".join((HERE / f).read_bytes() for f in sources)).hexdigest()[:8]
    kind = "" if shape == "synthetic" else f"{shape}-"
    repo = keep / f"repo-{kind}s{services}-c{commits}-seed1-{src}"
    if not (repo / ".git").is_dir():
        shutil.rmtree(repo, ignore_errors=True)
        t0 = time.perf_counter()
        SHAPES[shape][0].generate(repo.with_suffix(".tmp"), services=services, commits=commits)
        repo.with_suffix(".tmp").rename(repo)
        print(f"generated {repo.name} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return repo


def code_env(code: Path | None) -> dict[str, str] | None:
    """The environment that runs the ingest of the checkout ``code`` (None: as installed)."""
    if code is None:
        return None
    env = dict(os.environ)
    code = code.resolve()
    env["PYTHONPATH"] = os.pathsep.join([str(code), str(code / "plugins")])
    return env


def bench_envs(keep: Path, services: int, commits: int, runs: int,
               code: Path | None = None) -> dict:
    """Ingest of three environment branches sharing most history (env_branches.py) into
    a new database against ingest of the longest one (``dev``) alone, interleaved in the
    same runs; each in its own fresh process."""
    cache = cached_repo(keep, services, commits)
    work = keep / f"work-envs-{cache.name}"
    shutil.rmtree(work, ignore_errors=True)
    repo = work / "repo"
    shutil.copytree(cache, repo, symlinks=True)
    tips = make_env_branches(repo)
    ingest, env = ingest_cmd(), code_env(code)
    flags = [f for name, branch in ENVIRONMENTS for f in ("--env", f"{name}={branch}")]
    commands = {"single": ["--branch", "dev"], "envs": flags}
    samples: dict[str, list[dict]] = {s: [] for s in ENV_STEPS}
    for i in range(runs):
        for step, extra in commands.items():
            db = work / f"run{i}-{step}.db"
            samples[step].append(measure([*ingest, "ingest", str(repo), "--db", str(db),
                                          *extra, "--json"], db, env=env))
            if i < runs - 1:
                for f in work.glob(f"{db.name}*"):
                    f.unlink()
        print(f"run {i + 1}/{runs}: " + ", ".join(
            f"{s} {v[-1]['wall']:.2f}s" for s, v in samples.items()), file=sys.stderr)
    conn = sqlite3.connect(work / f"run{runs - 1}-envs.db")
    try:
        per_env = dict(conn.execute("select environment, count(*) from environment_commits "
                                    "group by environment").fetchall())
        stored = conn.execute("select count(*) from commits").fetchone()[0]
    finally:
        conn.close()
    result = summarize(samples, None, {
        "services": services, "commits": commits, "runs": runs, "repo": str(cache),
        "ingest": ingest, "code": str(code) if code else None, "baseline": None,
        "load_average": os.getloadavg(), "branches": tips, "mainline_commits": per_env,
        "commits_stored": stored, "steps": {}})
    med = {s: result["steps"][s]["median_s"] for s in ENV_STEPS}
    own = {s: result["steps"][s]["median_own_s"] for s in ENV_STEPS}
    cpu = {s: result["steps"][s]["median_cpu_s"] for s in ENV_STEPS}
    result["envs_ratio"] = med["envs"] / med["single"]
    result["envs_ratio_cpu"] = cpu["envs"] / cpu["single"]
    result["envs_ratio_own"] = own["envs"] / own["single"] if all(own.values()) else None
    result["db_mb"] = (work / f"run{runs - 1}-envs.db").stat().st_size / 1e6
    return result


def bench(keep: Path, services: int, commits: int, runs: int, steps: list[str],
          baseline: Path | None = None, code: Path | None = None,
          shape: str = "synthetic") -> dict:
    cache = cached_repo(keep, services, commits, shape)
    append_commit = SHAPES[shape][0].append_commit
    work = keep / f"work-{cache.name}"
    shutil.rmtree(work, ignore_errors=True)
    repo = work / "repo"
    shutil.copytree(cache, repo, symlinks=True)  # appends never touch the cache
    orig = run_git(repo, "rev-parse", "main")
    ingest = ingest_cmd()
    variants = {"": code_env(code)}
    if baseline is not None:
        variants[" (baseline)"] = code_env(baseline)
    names = [s + v for s in steps for v in ([""] if s.startswith("floor") else variants)]
    samples: dict[str, list[dict]] = {n: [] for n in names}
    for i in range(runs):
        for variant, env in variants.items():
            db = work / f"run{i}{variant.strip(' ()')}.db"
            cmd = [*ingest, "ingest", str(repo), "--db", str(db), "--json"]
            for step, extra in (("floor", []), ("floor+parse", ["--parse"])):
                if step in steps and not variant:
                    samples[step].append(measure(
                        [sys.executable, str(HERE / "floor.py"), str(repo), *extra]))
            if "full" in steps:
                samples["full" + variant].append(measure(cmd, db, env=env))
            if "incremental" in steps:
                append_commit(repo)
            try:
                if "incremental" in steps:
                    samples["incremental" + variant].append(measure(cmd, env=env))
                if "nochange" in steps:
                    samples["nochange" + variant].append(measure(cmd, env=env))
            finally:
                run_git(repo, "reset", "-q", "--hard", orig)
            if i < runs - 1:  # keep only the last run's databases
                for f in work.glob(f"{db.name}*"):
                    f.unlink()
        print(f"run {i + 1}/{runs}: " + ", ".join(
            f"{s} {v[-1]['wall']:.2f}s" for s, v in samples.items()), file=sys.stderr)
    floor = statistics.median(v["wall"] for v in samples["floor"]) if "floor" in steps else None
    result = summarize(samples, floor, {
        "shape": shape, "services": services, "commits": commits, "runs": runs,
        "repo": str(cache),
        "ingest": ingest, "code": str(code) if code else None,
        "baseline": str(baseline) if baseline else None,
        "load_average": os.getloadavg(), "steps": {},
    })
    dbs = sorted(work.glob("run*.db"))
    result["db_mb"] = dbs[0].stat().st_size / 1e6 if dbs else None
    if "floor+parse" in samples:
        base = result["steps"]["floor+parse"]
        for s in result["steps"].values():
            s["ratio_to_parse"] = s["median_s"] / base["median_s"]
            s["cpu_ratio_to_parse"] = s["median_cpu_s"] / base["median_cpu_s"]
    return result


def summarize(samples: dict[str, list[dict]], floor: float | None, result: dict) -> dict:
    """``result`` with a ``steps`` entry per step: medians, extremes and RSS of its runs."""
    for step, vals in samples.items():
        walls = [v["wall"] for v in vals]
        med = statistics.median(walls)
        result["steps"][step] = {
            "wall_s": walls,
            "rss_mb": [v["rss"] for v in vals],
            "tree_rss_mb": [v["tree_rss"] for v in vals],
            "median_s": med,
            "cpu_s": [v["cpu"] for v in vals],
            "median_cpu_s": statistics.median(v["cpu"] for v in vals),
            "own_s": [v["own"] for v in vals],
            "median_own_s": statistics.median(v["own"] for v in vals)
            if all(v["own"] is not None for v in vals) else None,
            "min_s": min(walls),
            "max_s": max(walls),
            "ratio_to_floor": med / floor if floor else None,
            "median_rss_mb": statistics.median(v["rss"] for v in vals),
            "median_tree_rss_mb": statistics.median(v["tree_rss"] for v in vals),
            "median_anon_rss_mb": statistics.median(v.get("anon_rss", 0.0) for v in vals),
            "rss_curve": rss_curve(vals[-1]["curve"]) if step.startswith("full") else [],
            "load_1min": [x for v in vals for x in v.get("load", ())],
        }
    return result


def table(result: dict) -> str:
    parse = any("ratio_to_parse" in s for s in result["steps"].values())
    extra = " × floor+parse (wall) | × floor+parse (CPU) |" if parse else ""
    rows = [
        "| step | median s | min s | max s | × floor |" + extra + " CPU s | ingest's own s "
        "| peak RSS MB | of it anonymous MB | tree RSS MB | load (1 min) |",
        "|---|---:|---:|---:|---:|" + ("---:|---:|" if parse else "")
        + "---:|---:|---:|---:|---:|---|",
    ]
    for step, s in result["steps"].items():
        ratio = f"{s['ratio_to_floor']:.2f}" if s["ratio_to_floor"] is not None else "–"
        own = f"{s['median_own_s']:.3f}" if s["median_own_s"] is not None else "–"
        by_parse = (f" {s['ratio_to_parse']:.2f} | {s['cpu_ratio_to_parse']:.2f} |"
                    if parse else "")
        load = s.get("load_1min") or [0.0]
        rows.append(
            f"| {step} | {s['median_s']:.2f} | {s['min_s']:.2f} | {s['max_s']:.2f} | "
            f"{ratio} |{by_parse} {s['median_cpu_s']:.2f} | {own} | {s['median_rss_mb']:.0f} | "
            f"{s['median_anon_rss_mb']:.0f} | {s['median_tree_rss_mb']:.0f} | "
            f"{min(load):.1f}–{max(load):.1f} |"
        )
    shape = "" if result.get("shape", "synthetic") == "synthetic" else f"{result['shape']}: "
    head = (f"{shape}{result['services']} services × {result['commits']} commits, "
            f"{result['runs']} runs")
    if result["db_mb"]:
        head += f", database {result['db_mb']:.1f} MB"
    load = ", ".join(f"{x:.2f}" for x in result["load_average"])
    out = head + f" (load average at the end: {load})\n\n" + "\n".join(rows)
    if "envs_ratio" in result:
        own = result["envs_ratio_own"]
        per_env = ", ".join(f"{b} {n}" for b, n in result["mainline_commits"].items())
        out += (f"\n\nmainline commits: {per_env}"
                f"; {result['commits_stored']} commits stored once"
                f"\nenvs / single, medians: wall {result['envs_ratio']:.2f}, "
                f"CPU {result['envs_ratio_cpu']:.2f}"
                + (f", ingest's own s {own:.2f}" if own else ""))
    for step, s in result["steps"].items():
        if s["rss_curve"]:
            out += (f"\n\nRSS against commits ingested, {step} (last run; peak so far, MB)"
                    "\n\n| commits | main | tree |\n|---:|---:|---:|\n")
            out += "\n".join(f"| {c} | {m:.0f} | {t:.0f} |" for c, m, t in s["rss_curve"])
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Benchmark aureacore-db ingest against the floor")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="synthetic",
                    help="synthetic (generate_repo.py; default 1000 x 10000) or helm "
                         "(generate_helm.py, Helm values files; default 300 x 5000, steps "
                         "floor,floor+parse,full)")
    ap.add_argument("--services", type=int, help="default: by --shape")
    ap.add_argument("--commits", type=int, help="default: by --shape")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--keep",
        type=Path,
        default=HERE / ".bench",
        metavar="DIR",
        help="where generated repos and databases are kept (default: %(default)s)",
    )
    ap.add_argument(
        "--steps", help="comma-separated subset of: " + ", ".join(STEPS)
        + " (default: floor,full,incremental,nochange; with --shape helm floor,floor+parse,full)"
    )
    ap.add_argument("--code", type=Path, metavar="DIR",
                    help="run the ingest of this checkout (PYTHONPATH=DIR:DIR/plugins)")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="also run every step with the checkout DIR, interleaved, for ratios "
                         "measured in the same run")
    ap.add_argument("--scale", action="store_true",
                    help="10,000 services x 100,000 commits (generated once, ~10 minutes on "
                         "2 cores, then reused from --keep); default runs 1")
    ap.add_argument("--envs", action="store_true",
                    help="instead of the steps: ingest dev, staging and prod branches made by "
                         "env_branches.py (one database) against dev alone, ratio reported")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = ap.parse_args(argv)
    _, (services, commits), default_steps = SHAPES[a.shape]
    a.services = a.services or services
    a.commits = a.commits or commits
    a.steps = a.steps or default_steps
    if a.shape != "synthetic" and (a.scale or a.envs):
        ap.error("--scale and --envs use the synthetic shape")
    if a.scale:
        a.services, a.commits = SCALE
        a.runs = a.runs if "--runs" in (argv if argv is not None else sys.argv) else 1
    if a.envs:
        result = bench_envs(a.keep.resolve(), a.services, a.commits, a.runs, code=a.code)
        print(json.dumps(result, indent=2) if a.json else table(result))
        return
    steps = [s for s in STEPS if s in a.steps.split(",")]
    if {"incremental", "nochange"} & set(steps) and "full" not in steps:
        ap.error("the incremental and nochange steps need the full step")
    result = bench(a.keep.resolve(), a.services, a.commits, a.runs, steps,
                   baseline=a.baseline, code=a.code, shape=a.shape)
    print(json.dumps(result, indent=2) if a.json else table(result))


if __name__ == "__main__":
    main()
