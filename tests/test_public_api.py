"""The public API: every name in ``aureacore_db.__all__`` imports from the package, the
README's Python example imports work, and the CLI does not pay for what it does not use."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import aureacore_db

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.parametrize("name", aureacore_db.__all__)
def test_every_public_name_imports_from_the_package(name):
    namespace: dict = {}
    exec(f"from aureacore_db import {name}", namespace)
    value = namespace[name]
    assert value is getattr(aureacore_db, name)
    if name != "__version__":
        assert getattr(value, "__module__", "").startswith("aureacore_db."), name


def test_star_import_gives_exactly_all():
    namespace: dict = {}
    exec("from aureacore_db import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(aureacore_db.__all__)


def test_ingest_and_rollback_are_the_functions_whatever_was_imported_first():
    """The two names shared with their modules stay the functions."""
    code = ("import aureacore_db.rollback, aureacore_db.ingest, aureacore_db\n"
            "from aureacore_db import ingest, rollback\n"
            "assert callable(ingest) and ingest.__name__ == 'ingest', ingest\n"
            "assert callable(rollback) and rollback.__name__ == 'rollback', rollback\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        aureacore_db.nope  # noqa: B018


def test_the_readme_python_example_imports_work():
    block = re.search(r"The same things from Python.*?```python\n(.*?)```", README.read_text(),
                      re.S)
    assert block, "README lost its Python example"
    imports = [line for line in block.group(1).splitlines()
               if line.startswith(("from aureacore_db", "import aureacore_db"))]
    assert imports
    namespace: dict = {}
    exec("\n".join(imports), namespace)
    assert {"ingest", "ServiceRegistry"} <= set(namespace)


def test_importing_the_cli_leaves_datasette_and_the_graph_unloaded():
    code = ("import sys, aureacore_db.cli\n"
            "loaded = [m for m in ('datasette', 'aureacore_db.web', 'aureacore_db.depgraph',"
            " 'aureacore_db.webhooks', 'aureacore_db.health') if m in sys.modules]\n"
            "assert not loaded, loaded\n")
    subprocess.run([sys.executable, "-c", code], check=True)
