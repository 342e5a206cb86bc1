"""Git hook benchmark: from a push to the database showing it, through the webhook route.

    python benchmarks/bench_hook.py --services 1000 --commits 1000 --pushes 10
    python benchmarks/bench_hook.py --services 100 --commits 200 --pushes 5 --json

Set-up (not timed): a generated repo (``generate_repo.py``, cached in
``benchmarks/.bench/``) becomes a bare ``origin``; the database is ingested from a working
clone of it; a second clone is the developer who pushes. The server is Datasette with the
plugin (``aureacore-db serve``'s app) under uvicorn in its own process, on 127.0.0.1,
with ``AUREACORE_GIT_HOOK_SECRET`` set.

Each push (``--pushes`` times): one commit changing one service (``append_commit``),
``git push`` to origin, then a GitHub-signed push webhook is POSTed, as GitHub would; the
time measured runs from the moment ``git push`` returned to the moment the database's
``aureacore_meta.tip`` is the pushed commit (polled every 5 ms). Reported: median, min and
max over the pushes, and the HTTP answer time of the route.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from generate_repo import append_commit, generate  # noqa: E402

SECRET = "bench-secret"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def cached_repo(services: int, commits: int) -> Path:
    source = (HERE / "generate_repo.py").read_bytes()
    key = hashlib.sha256(source + f"{services}/{commits}".encode()).hexdigest()[:12]
    out = HERE / ".bench" / f"hook-{services}x{commits}-{key}"
    if not (out / ".git").exists():
        shutil.rmtree(out, ignore_errors=True)
        generate(out, services=services, commits=commits)
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(db: str, port: int) -> None:
    """The server process: the plugin's app under uvicorn."""
    import asyncio

    import datasette_aureacore.githooks as module
    import uvicorn
    from datasette.plugins import pm

    from aureacore_db.web import make_datasette

    if pm.get_plugin("aureacore_githooks") is None and not pm.is_registered(module):
        pm.register(module, name="aureacore_githooks")  # entry points not reinstalled yet
    ds = make_datasette(db)
    asyncio.run(ds.invoke_startup())
    uvicorn.run(ds.app(), host="127.0.0.1", port=port, log_level="warning")


def post_hook(port: int, sha: str) -> float:
    body = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/-/aureacore/hooks/git", data=body, method="POST",
        headers={"Content-Type": "application/json", "X-GitHub-Event": "push",
                 "X-GitHub-Delivery": str(uuid.uuid4()),
                 "X-Hub-Signature-256": f"sha256={digest}"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 202:
            raise RuntimeError(f"hook answered {response.status}: {response.read()!r}")
    return time.perf_counter() - start


def db_tip(db: Path) -> str | None:
    conn = sqlite3.connect(db, timeout=30)
    try:
        found = conn.execute("select value from aureacore_meta where key = 'tip'").fetchone()
        return found[0] if found else None
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--commits", type=int, default=1000)
    ap.add_argument("--pushes", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serve", nargs=2, metavar=("DB", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        return serve(args.serve[0], int(args.serve[1]))

    generated = cached_repo(args.services, args.commits)
    work = Path(tempfile.mkdtemp(prefix="bench-hook-"))
    server = None
    try:
        origin = work / "origin.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(generated), str(origin)], check=True)
        for name in ("configs", "dev"):
            subprocess.run(["git", "clone", "-q", str(origin), str(work / name)], check=True)
        git(work / "dev", "config", "user.name", "Bench")
        git(work / "dev", "config", "user.email", "bench@example.com")
        db = work / "registry.db"
        subprocess.run([sys.executable, "-m", "aureacore_db.cli", "ingest",
                        str(work / "configs"), "--db", str(db), "--quiet"], check=True,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        port = free_port()
        env = {**os.environ, "AUREACORE_GIT_HOOK_SECRET": SECRET,
               "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins"), *sys.path])}
        server = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve",
                                   str(db), str(port)], env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/-/versions.json", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.05)
        latencies, answers = [], []
        for _ in range(args.pushes):
            sha = append_commit(work / "dev", n_files=1)
            git(work / "dev", "push", "-q", "origin", "main")
            pushed = time.perf_counter()
            answers.append(post_hook(port, sha))
            while db_tip(db) != sha:
                if time.perf_counter() - pushed > 60:
                    raise RuntimeError(f"{sha[:12]} did not reach the database in 60 s")
                time.sleep(0.005)
            latencies.append(time.perf_counter() - pushed)
        report = {
            "services": args.services, "commits": args.commits, "pushes": args.pushes,
            "push_to_db_s": {"median": statistics.median(latencies), "min": min(latencies),
                             "max": max(latencies)},
            "hook_answer_ms": {"median": statistics.median(answers) * 1000,
                               "max": max(answers) * 1000},
        }
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            p, a = report["push_to_db_s"], report["hook_answer_ms"]
            print(f"{args.services} services x {args.commits} commits, {args.pushes} pushes: "
                  f"push -> database median {p['median']:.3f} s (min {p['min']:.3f}, max "
                  f"{p['max']:.3f}); hook answered in {a['median']:.1f} ms median "
                  f"(max {a['max']:.1f})")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
