"""Benchmark the web layer: plugin pages and canned queries through Datasette's client.

Median of ``--runs`` requests (default 20, after 2 warm-up requests) per page: every
plugin page, every table and view's first page (HTML and JSON) and every canned query of
metadata.yml (HTML, JSON and CSV, with realistic parameters picked from the database). The target is
under 100 ms each on any registry database (``--db``; by default one of 1,000 services x
10,000 commits, built first when missing):

    python benchmarks/bench_web.py                      # builds .bench/web/ if needed
    python benchmarks/bench_web.py --db path/to/registry.db
    python benchmarks/bench_web.py --envs               # dev, staging, prod (env_branches.py)

It also times the environments page ``/-/aureacore/environments``, the confirm pages of
a rollback and (with two environments or more) a promotion, as root, and the
environment queries (``environment_matrix``, ``drift``, ``pending_promotion``, when
metadata.yml has them), between the first and the last environment. Canned queries run
with their default page (``limit`` empty: 100 rows). Results print as they come;
``--only TEXT`` / ``--skip TEXT`` pick paths. To compare two versions, run it once with
each on copies of one database (``PYTHONPATH=old/checkout``), one after the other.
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


def build(workdir: Path, services: int, commits: int, envs: bool = False) -> Path:
    """Generate the synthetic repo and ingest it (once); with ``envs`` its dev, staging
    and prod branches (env_branches.py) into ``registry-envs.db``."""
    from aureacore_db.ingest import ingest

    repo = workdir / "repo"
    db = workdir / ("registry-envs.db" if envs else "registry.db")
    if not repo.exists():
        subprocess.run([sys.executable, str(HERE / "generate_repo.py"), "--services",
                        str(services), "--commits", str(commits), str(repo)], check=True)
    if not db.exists():
        started = time.perf_counter()
        if envs:
            sys.path.insert(0, str(HERE))
            from env_branches import ENVIRONMENTS, make_env_branches

            make_env_branches(repo)
            ingest(repo, db, environments=ENVIRONMENTS)
        else:
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
        try:
            envs = [r[0] for r in conn.execute("select name from environments "
                                               "order by position, name")]
        except sqlite3.OperationalError:  # a database from before environments
            envs = []
    finally:
        conn.close()
    return {"service": busiest, "depended": depended, "commit": middle, "since": since,
            "key": key.removeprefix("$.parameters."), "envs": envs,
            "from": envs[0] if envs else "", "to": envs[-1] if envs else ""}


PARAMS = {  # canned-query parameter -> value picked from the database (see ``pick``)
    "commit": lambda p: p["commit"][:10], "service": lambda p: p["service"],
    "key": lambda p: p["key"], "since": lambda p: p["since"], "namespace": lambda p: "",
    # environment queries: from the first environment to the last
    **{name: (lambda p: p["from"]) for name in (
        "from", "from_env", "from_environment", "source", "a", "env_a", "env", "environment")},
    **{name: (lambda p: p["to"]) for name in (
        "to", "to_env", "to_environment", "target", "b", "env_b")},
}
ENV_PAGE = "/-/aureacore/environments"
ROOT_ONLY = ("/rollback", "/promote")
ENV_QUERIES = ("environment_matrix", "drift", "pending_promotion")
QUERY_PARAMS = {"dependents": {"service": "depended"}, "parameter_blame": {"service": ""}}


def query_params(name: str, params: list[str], p: dict[str, str]) -> dict[str, str]:
    """Values for a canned query's parameters: realistic ones from the database."""
    out = {}
    for param in params:
        special = QUERY_PARAMS.get(name, {}).get(param)
        if special is not None:
            out[param] = p[special] if special else ""
        else:
            out[param] = PARAMS.get(param, lambda _p: "")(p)
    return out


async def paths(ds, p: dict[str, str]) -> list[str]:  # noqa: ANN001 - a Datasette
    """Every plugin page, every table and view (first page, HTML and JSON) and every
    canned query (HTML, JSON and CSV) of the registry database."""
    from datasette.utils import derive_named_parameters

    db = ds.get_database()
    name = db.name
    sid = quote(p["service"], safe="/")
    out = ["/-/aureacore", "/-/aureacore.json", f"/-/aureacore/services/{sid}",
           f"/-/aureacore/services/{sid}.json", f"/-/aureacore/services/{sid}/diff",
           f"/-/aureacore/services/{sid}/diff.json", f"/-/aureacore/commits/{p['commit']}",
           f"/-/aureacore/commits/{p['commit']}.json", f"/-/aureacore/deps/{sid}",
           f"/-/aureacore/deps/{sid}.json"]
    if (await ds.client.get(ENV_PAGE)).status_code != 404:
        out += [ENV_PAGE, f"{ENV_PAGE}.json"]
    # the confirm pages of rollback and promotion (GET, as root: they write nothing)
    rollback = f"/-/aureacore/services/{sid}/rollback"
    out += [f"{rollback}?to={p['commit'][:10]}", f"{rollback}.json?to={p['commit'][:10]}"]
    if len(p["envs"]) > 1:
        which = {"service": p["service"], "from": p["from"], "to": p["to"]}
        promote = f"/-/aureacore/promote?{urlencode(which)}"
        out += [promote, promote.replace("/promote?", "/promote.json?")]
    tables = await db.table_names() + await db.view_names()
    hidden = set(await db.hidden_table_names())
    for table in tables:
        if table not in hidden:
            out += [f"/{name}/{quote(table)}", f"/{name}/{quote(table)}.json"]
    queries = await ds.get_canned_queries(name, {"id": "root"})
    for query, spec in queries.items():
        params = spec.get("params") or await derive_named_parameters(db, spec["sql"])
        values = query_params(query, params, p)
        qs = f"?{urlencode(values)}" if values else ""
        out += [f"/{name}/{query}{qs}", f"/{name}/{query}.json{qs}",
                f"/{name}/{query}.csv{qs}"]
    return out


async def measure(db_path: Path, runs: int, only: list[str] | None = None,
                  skip: list[str] | None = None) -> list[tuple[str, float, int]]:
    """Median ms and last status of each path (printed as it goes)."""
    from aureacore_db.web import make_datasette

    ds = make_datasette(db_path)
    await ds.invoke_startup()
    root = {"ds_actor": ds.sign({"a": {"id": "root"}}, "actor")}
    results = []
    print(f"{'median ms':>10}  status  path", flush=True)
    for path in await paths(ds, pick(db_path)):
        if (only and not any(word in path for word in only)) or \
                (skip and any(word in path for word in skip)):
            continue
        status = 0
        cookies = root if any(part in path for part in ROOT_ONLY) else {}
        for _ in range(2):
            status = (await ds.client.get(path, cookies=cookies)).status_code
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            response = await ds.client.get(path, cookies=cookies)
            times.append((time.perf_counter() - started) * 1000)
            status = response.status_code
        results.append((path, statistics.median(times), status))
        print(_line(*results[-1]), flush=True)
    return results


def _ok(path: str, median: float, status: int) -> bool:
    """Under target; a secrets table answers 403 to everyone (as it should)."""
    return median < TARGET_MS and (status == 200 or (status == 403 and "secret" in path))


def _line(path: str, median: float, status: int) -> str:
    mark = "" if _ok(path, median, status) else "  <-- over target"
    return f"{median:10.1f}  {status:6}  {path}{mark}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, help="an existing registry database")
    ap.add_argument("--workdir", type=Path, default=Path(".bench/web"))
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--commits", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--envs", action="store_true",
                    help="build (once) and time a database of dev, staging and prod branches")
    ap.add_argument("--only", action="append", metavar="TEXT",
                    help="time only the paths containing TEXT (repeatable)")
    ap.add_argument("--skip", action="append", metavar="TEXT",
                    help="leave out the paths containing TEXT (repeatable)")
    args = ap.parse_args(argv)
    db = args.db or build(args.workdir, args.services, args.commits, args.envs)
    results = asyncio.run(measure(db, args.runs, args.only, args.skip))
    slow = sum(not _ok(*result) for result in results)
    print(f"{len(results) - slow}/{len(results)} under {TARGET_MS:.0f} ms")
    env_paths = [(path, median) for path, median, _ in results if path.startswith(ENV_PAGE)
                 or any(f"/{q}" in path for q in ENV_QUERIES)]
    if env_paths:
        worst = max(env_paths, key=lambda r: r[1])
        print(f"environments: {len(env_paths)} pages and queries, slowest "
              f"{worst[1]:.1f} ms ({worst[0]})")
    else:
        print("environments: no environments page or queries here (skipped)")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
