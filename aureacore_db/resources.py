"""Locate the files shipped beside the package: schemas/, plugins/, metadata.yml.

An installed wheel carries them in ``aureacore_db/_data/``; a source checkout (or an
editable install) keeps them at the project root.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_path(name: str) -> Path:
    """Path of a shipped data file or folder, e.g. ``data_path("schemas")``."""
    installed = _PACKAGE / "_data" / name
    if installed.exists():
        return installed
    return _PACKAGE.parent / name
