"""Locate the files shipped beside the package: schemas/ and metadata.yml.

An installed wheel carries them in ``aureacore_db/_data/``; a source checkout (or an
editable install) keeps them at the project root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_PACKAGE = Path(__file__).resolve().parent


def data_path(name: str) -> Path:
    """Path of a shipped data file or folder, e.g. ``data_path("schemas")``."""
    installed = _PACKAGE / "_data" / name
    if installed.exists():
        return installed
    return _PACKAGE.parent / name


# The database key of metadata.yml's section; the plugin applies it to every registry.
METADATA_DATABASE = "registry"


def read_metadata() -> dict[str, Any]:
    """The shipped ``metadata.yml``, parsed (a fresh copy each call)."""
    with open(data_path("metadata.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}
