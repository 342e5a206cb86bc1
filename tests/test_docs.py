"""docs/DESIGN.md §8 lists every table and column a real database has."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import run_ingest

from aureacore_db import db as database

DESIGN = Path(__file__).resolve().parent.parent / "docs" / "DESIGN.md"


def _documented() -> dict[str, str]:
    """Table name -> its row in §8 (``| `table` | columns |``)."""
    section = DESIGN.read_text().partition("## 8.")[2]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \|(.*)$", section, re.M)}


def test_every_table_and_column_is_documented(repo, db_path):
    repo.service("auth")
    repo.commit("one service")
    run_ingest(repo, db_path)
    db = database.connect(db_path)
    documented = _documented()
    hidden = ("_fts", "sqlite_")
    for table in db.table_names():
        if any(mark in table for mark in hidden):
            continue
        assert table in documented, f"table {table} is not in docs/DESIGN.md §8"
        for column in db[table].columns_dict:
            assert f"`{column}`" in documented[table], f"{table}.{column} is not in §8"
    for view in db.view_names():
        assert f"`{view}`" in DESIGN.read_text(), f"view {view} is not in docs/DESIGN.md"
