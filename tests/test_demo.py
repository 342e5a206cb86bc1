"""The built-in demo: every event its story promises is in the database."""

from __future__ import annotations

import json

from click.testing import CliRunner
from conftest import rows

from aureacore_db.cli import cli
from aureacore_db.demo import DEMO_STORY


def test_demo_builds_ingests_and_tells_its_story(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "d"), "--no-serve"])
    assert result.exit_code == 0, result.output
    assert all(line in result.output for line in DEMO_STORY)
    db = tmp_path / "d" / "registry.db"

    # 200 commits on dev, then 4 on staging and prod only: 3 merges and prod's hotfix
    assert rows(db, "select count(*) n from commits")[0]["n"] == 204
    assert rows(db, "select count(*) n from commits where mainline = 1")[0]["n"] == 195
    assert rows(db, "select count(*) n from services where removed = 0")[0]["n"] == 36
    assert rows(db, "select id from services_in_error") == [{"id": "frontend/web-frontend"}]

    kinds = {r["kind"] for r in rows(db, "select distinct kind from validation_errors")}
    assert {"parse", "schema", "dependency", "cycle"} <= kinds
    assert rows(db, "select count(*) n from validation_errors where kind = 'schema' and "
                    "message like '%dependancies%'")[0]["n"] >= 1
    changes = {(r["service_id"], r["change"]) for r in rows(
        db, "select service_id, change from history where mainline = 1")}
    assert ("data/search-indexer", "renamed") in changes
    assert {("ops/status-page", "removed"), ("ops/status-page", "added")} <= changes

    merges = rows(db, "select sha, parents from commits where json_array_length(parents) = 2 "
                      "and message like 'Merge branch ''feature/%'")
    assert len(merges) == 1 and rows(db, "select mainline from commits where sha = ?",
                                     (merges[0]["sha"],))[0]["mainline"] == 1
    side = json.loads(merges[0]["parents"])[1]
    assert rows(db, "select mainline from commits where sha = ?", (side,))[0]["mainline"] == 0
    untouched = rows(db, "select sha from commits where services_changed = 0 and "
                         "message like 'docs:%'")
    assert untouched and not rows(db, "select 1 from history where commit_sha = ?",
                                  (untouched[0]["sha"],))


def test_demo_on_a_busy_port_is_one_clear_error_before_any_work(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "d"),
                                          "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot serve on 127.0.0.1:{port}" in result.output
    assert "Errno" not in result.output and "Serving" not in result.output
    assert not (tmp_path / "d").exists()


def test_rebuilding_the_demo_says_what_it_discards(tmp_path):
    folder = str(tmp_path / "d")
    runner = CliRunner()
    assert runner.invoke(cli, ["demo", "--dir", folder, "--no-serve", "-q"]).exit_code == 0
    db = tmp_path / "d" / "registry.db"
    older = rows(db, "select commit_sha from history where service_id = 'payments/billing' "
                     "and mainline = 1 order by seq limit 1")[0]["commit_sha"]
    rolled = runner.invoke(cli, ["rollback", "payments/billing", "--to", older, "--db", str(db),
                                 "--yes", "--actor", "tester"])
    assert rolled.exit_code == 0, rolled.output
    again = runner.invoke(cli, ["demo", "--dir", folder, "--no-serve", "-q"])
    assert again.exit_code == 0
    assert f"Replacing the earlier demo in {folder} (its 1 rollback and their commits are " \
           "discarded)" in again.output


def state(db, environment: str) -> dict[str, tuple[str, str]]:
    """service -> (version, status) in one environment, as of its tip."""
    return {r["service_id"]: (r["version"], r["status"]) for r in rows(
        db, "select service_id, version, status from environment_services "
            "where environment = ? and removed = 0", (environment,))}


def test_the_demo_has_dev_staging_and_prod_drifting_apart(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "d"), "--no-serve",
                                      "-q"])
    assert result.exit_code == 0, result.output
    assert "/-/aureacore/environments" in result.output
    assert "aureacore-db promote payments/ledger --from staging --to prod" in result.output
    db = tmp_path / "d" / "registry.db"
    assert rows(db, "select name, branch, position from environments order by position") == [
        {"name": "dev", "branch": "dev", "position": 0},
        {"name": "staging", "branch": "staging", "position": 1},
        {"name": "prod", "branch": "prod", "position": 2}]
    dev, staging, prod = state(db, "dev"), state(db, "staging"), state(db, "prod")
    assert len(dev) == 36 and set(staging) == set(prod) == set(dev)

    # dev is where the open error is; staging and prod never got the change
    assert dev["frontend/web-frontend"][1] == "ERROR"
    assert staging["frontend/web-frontend"][1] == prod["frontend/web-frontend"][1] == "CONFIGURED"
    # a fix waiting in staging: the ledger -> billing cycle is in prod only
    cycle = ("payments/ledger", "payments/billing", "payments/invoice-generator")
    assert {sid for sid, (_, status) in prod.items() if status == "ERROR"} == set(cycle)
    assert {sid for sid, (_, status) in staging.items() if status == "ERROR"} == set()
    # a version only in dev, and prod's hotfix that dev does not have
    assert dev["platform/user-service"][0] == "1.9.0"
    assert "1.9.0" not in (staging["platform/user-service"][0], prod["platform/user-service"][0])
    assert (prod["payments/payment-gateway"][0], dev["payments/payment-gateway"][0]) == (
        "3.2.1", "3.2.0")

    def subjects(environment: str) -> list[str]:
        return [r["message"].splitlines()[0] for r in rows(
            db, "select c.message from environment_commits e join commits c "
                "on c.sha = e.commit_sha where e.environment = ? order by e.seq",
            (environment,))]

    hotfix = [m for m in subjects("prod") if "hotfix" in m]
    assert hotfix and not set(hotfix) & set(subjects("dev"))
    # promotion by merge: dev into staging twice, staging into prod once
    assert subjects("staging").count("Merge branch 'dev' into staging") == 2
    assert subjects("prod").count("Merge branch 'staging' into prod") == 1
    # the branches share the history up to where staging and prod branched off
    shared = rows(db, "select count(*) n from environment_commits a join environment_commits b "
                      "on a.commit_sha = b.commit_sha where a.environment = 'dev' "
                      "and b.environment = 'prod'")[0]["n"]
    assert shared > 140


def test_the_promotion_the_demo_suggests_fixes_prod(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["demo", "--dir", str(tmp_path / "d"), "--no-serve",
                               "-q"]).exit_code == 0
    db = tmp_path / "d" / "registry.db"
    staging = state(db, "staging")
    promoted = runner.invoke(cli, ["promote", "payments/ledger", "--from", "staging", "--to",
                                   "prod", "--db", str(db), "--yes",
                                   "--actor", "Newcomer <new@example.com>"])
    assert promoted.exit_code == 0, promoted.output
    assert "fixes payments/billing: ERROR -> CONFIGURED" in promoted.output
    assert not [sid for sid, (_, status) in state(db, "prod").items() if status == "ERROR"]
    assert state(db, "prod")["payments/ledger"] == state(db, "staging")["payments/ledger"]
    assert state(db, "prod")["payments/payment-gateway"][0] == "3.2.1"  # the hotfix stays
    assert state(db, "staging") == staging
