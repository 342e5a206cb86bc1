"""Benchmark the web layer: plugin pages and canned queries through Datasette's client.

Median of 20 requests (after 2 warm-up requests) per page and per canned query, as
HTML/JSON and CSV. The target is under 100 ms each on a database of 1,000 services x
10,000 commits, which is built first when missing:

    python benchmarks/bench_web.py                      # builds .bench/web/ if needed
    python benchmarks/bench_web.py --db path/to/registry.db
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlencode

HERE = Path(__file__).resolve().parent
TARGET_MS = 100.0


def build(workdir: Path, services: int, commits: int) -> Path:
    """Generate the synthetic repo and ingest it (once)."""
    from aureacore_db.ingest import ingest

    repo, db = workdir / "repo", workdir / "registry.db"
    if not repo.exists():
        subprocess.run([sys.executable, str(HERE / "generate_repo.py"), "--services",
                        str(services), "--commits", str(commits), str(repo)], check=True)
    if not db.exists():
        started = time.perf_counter()
        ingest(repo, db)
        print(f"ingested in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return db


def pick(db_path: Path) -> dict[str, str]:
    """Realistic parameters: the busiest service, a mid-history commit, a common key."""
    conn = sqlite3.connect(db_path)
    try:
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        busiest = one("select service_id from history group by service_id "
                      "order by count(*) desc limit 1")
        depended = one("select depends_on from dependencies d join services s "
                       "on s.config_id = d.config_id group by depends_on "
                       "order by count(*) desc limit 1")
        total = one("select count(*) from commits where mainline = 1")
        middle = one(f"select sha from commits where mainline = 1 order by seq "
                     f"limit 1 offset {total // 2}")
        since = one(f"select committed_at from commits where mainline = 1 order by seq "
                    f"limit 1 offset {max(total - total // 10, 0)}")
        key = one("select key from parameter_changes where key like '$.parameters.%' "
                  "group by key order by count(*) desc limit 1")
    finally:
        conn.close()
    return {"service": busiest, "depended": depended, "commit": middle, "since": since,
            "key": key.removeprefix("$.parameters.")}


def paths(db_name: str, p: dict[str, str]) -> list[str]:
    sid = quote(p["service"], safe="/")
    queries = {
        "errors_now": {},
        "state_as_of": {"commit": p["commit"][:10]},
        "service_history": {"service": p["service"]},
        "parameter_blame": {"key": p["key"], "service": ""},
        "changes_since": {"since": p["since"]},
        "dependents": {"service": p["depended"]},
        "first_errors": {},
        "rollback_log": {},
    }
    out = ["/-/aureacore", "/-/aureacore.json", f"/-/aureacore/services/{sid}",
           f"/-/aureacore/services/{sid}.json", f"/-/aureacore/services/{sid}/diff",
           f"/-/aureacore/commits/{p['commit']}"]
    for name, params in queries.items():
        qs = f"?{urlencode(params)}" if params else ""
        out += [f"/{db_name}/{name}{qs}", f"/{db_name}/{name}.json{qs}",
                f"/{db_name}/{name}.csv{qs}"]
    return out


async def measure(db_path: Path, runs: int) -> list[tuple[str, float, int]]:
    from aureacore_db.web import make_datasette

    ds = make_datasette(db_path)
    await ds.invoke_startup()
    results = []
    for path in paths(ds.get_database().name, pick(db_path)):
        status = 0
        for _ in range(2):
            status = (await ds.client.get(path)).status_code
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            response = await ds.client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            status = response.status_code
        results.append((path, statistics.median(times), status))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, help="an existing registry database")
    ap.add_argument("--workdir", type=Path, default=Path(".bench/web"))
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--commits", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args(argv)
    db = args.db or build(args.workdir, args.services, args.commits)
    results = asyncio.run(measure(db, args.runs))
    slow = 0
    print(f"{'median ms':>10}  status  path")
    for path, median, status in results:
        mark = "" if median < TARGET_MS and status == 200 else "  <-- over target"
        slow += bool(mark)
        print(f"{median:10.1f}  {status:6}  {path}{mark}")
    print(f"{len(results) - slow}/{len(results)} under {TARGET_MS:.0f} ms")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
