"""The Helm-values-shaped benchmark history (benchmarks/generate_helm.py) and its baseline
(benchmarks/floor.py --parse): deterministic, Helm-shaped, and ingested as intended."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pygit2
import pytest
import yaml
from conftest import rows

from aureacore_db.ingest import ingest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def generate(out: Path, *args: str) -> str:
    """Run the generator's CLI; the sha of ``main``."""
    subprocess.run([sys.executable, str(BENCH / "generate_helm.py"), "--services", "5",
                    "--commits", "20", *args, str(out)], check=True, capture_output=True)
    return str(pygit2.Repository(str(out)).branches.local["main"].target)


@pytest.fixture
def bench(monkeypatch):
    """The benchmark scripts as modules (they import each other by name)."""
    monkeypatch.syspath_prepend(str(BENCH))
    import floor
    import generate_helm
    return generate_helm, floor


def test_same_seed_same_history_other_seed_other_history(tmp_path):
    first = generate(tmp_path / "a")
    assert generate(tmp_path / "b") == first
    assert generate(tmp_path / "c", "--seed", "2") != first
    repo = pygit2.Repository(str(tmp_path / "a"))
    assert len(list(repo.walk(repo.head.target))) == 20  # exactly --commits


def test_service_files_are_helm_values_in_our_format(tmp_path):
    generate(tmp_path / "r", "--services", "30", "--commits", "2")
    files = sorted((tmp_path / "r" / "services").glob("*/*.yaml"))
    assert len(files) == 30
    for path in files:
        text = path.read_text()
        assert 150 <= text.count("\n") <= 400, path
        doc = yaml.safe_load(text)
        assert f"{doc['namespace']}/{doc['name']}" == f"{path.parent.name}/{path.stem}"
        values = doc["parameters"]
        assert values["image"]["tag"].lstrip("v").startswith(doc["version"])
        assert {"limits", "requests"} <= values["resources"].keys()
        assert all("name" in e and ("value" in e or "valueFrom" in e) for e in values["env"])
        assert values["ingress"]["hosts"][0]["host"].endswith(".example.com")
        assert {"nodeSelector", "tolerations", "affinity", "livenessProbe",
                "autoscaling", "podAnnotations"} <= values.keys()
    texts = [p.read_text() for p in files]
    assert any("# -- " in t for t in texts)  # helm-docs comments
    assert any(": |\n" in t for t in texts)  # an embedded config file
    assert any('"true"' in t for t in texts)  # quoted strings
    assert any(re.search(r"(?m)^ +cpu: \d+m$", t) for t in texts)  # and plain ones


def test_history_ingests_with_invalid_files_as_errors(tmp_path, bench):
    generate_helm, floor = bench
    repo = generate_helm.generate(tmp_path / "r", services=8, commits=60, invalid_share=1.0)
    db = tmp_path / "helm.db"
    ingest(str(repo), db)
    assert rows(db, "select count(*) n from commits")[0]["n"] == 60
    assert rows(db, "select count(*) n from commits where parents like '%,%'")[0]["n"] > 0
    kinds = {r["kind"] for r in rows(db, "select distinct kind from validation_errors")}
    assert kinds & {"parse", "schema"}  # every hand edit wrote an invalid file here
    changed = {r["key"] for r in rows(db, "select distinct key from parameter_changes")}
    assert "$.parameters.image.tag" in changed  # the deploy bot's tag bumps
    # the baseline reads the same blobs and fails on exactly the unparsable ones
    failed: list[str] = []
    assert floor.walk_floor(str(repo), parse=True, failed=failed) >= rows(
        db, "select count(*) n from configs")[0]["n"]
    assert set(failed) == {r["id"] for r in rows(
        db, "select id from configs where parse_error is not null")}


def test_append_commit_bumps_one_tag_in_place(tmp_path, bench):
    generate_helm, _ = bench
    repo = generate_helm.generate(tmp_path / "r", services=5, commits=10)
    before = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    sha = generate_helm.append_commit(repo)
    diff = subprocess.run(["git", "-C", str(repo), "diff", "--numstat", before, sha],
                          capture_output=True, text=True, check=True).stdout.split()
    assert diff[:2] == ["2", "2"]  # the version line and the image tag line
    db = tmp_path / "helm.db"
    ingest(str(repo), db)
    changed = rows(db, "select key from parameter_changes where commit_sha = ?", (sha,))
    assert {r["key"] for r in changed} == {"$.version", "$.parameters.image.tag"}
