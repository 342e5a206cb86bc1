"""aureacore-db: service configuration history from Git, in SQLite.

The public API, importable from the package itself::

    from aureacore_db import ingest, ServiceRegistry

Names are imported on first use (PEP 562), so ``import aureacore_db.cli`` does not pay
for Datasette, the dependency graph or the webhooks until a command needs them. Two
functions share their name with the module that defines them, ``ingest`` and
``rollback``: they are imported at once, so ``aureacore_db.ingest`` is always the
function (the modules stay ``sys.modules["aureacore_db.ingest"]``, or
``from aureacore_db.ingest import Ingest``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_HOMES = {
    # walking a repository into a database
    "ingest": "ingest", "Ingest": "ingest", "IngestResult": "ingest", "IngestBusy": "ingest",
    "SourceError": "gitsource",
    # registering, syncing and pushing services
    "ServiceRegistry": "registry", "RegistrationRejected": "registry",
    "RegistrationResult": "registry", "RegistryError": "registry", "SyncResult": "registry",
    "PushResult": "registry",
    "Service": "models", "ServiceConfig": "models", "ServiceDependency": "models",
    "ServiceStatus": "models", "ConfigError": "models",
    "GitProvider": "gitprovider", "GitProviderError": "gitprovider",
    "ConfigStore": "configstore",
    # checking files without a database
    "check_paths": "checkfiles", "Finding": "checkfiles",
    # rolling back
    "rollback": "rollback", "describe": "rollback", "RollbackRefused": "rollback",
    "RollbackResult": "rollback",
    # reading a database
    "connect": "db", "load_graph": "depgraph", "DepGraph": "depgraph",
    "DepGraphError": "depgraph", "run_query": "queries", "canned_queries": "queries",
    "QueryError": "queries",
    # serving it, webhooks and health
    "make_datasette": "web", "serve": "web",
    "add_webhook": "webhooks", "list_webhooks": "webhooks", "remove_webhook": "webhooks",
    "deliver": "webhooks",
    "check_once": "health", "check_forever": "health",
    # the sample repository
    "build_demo_repo": "demo",
}

__all__ = [
    "__version__", "add_webhook", "build_demo_repo", "canned_queries", "check_forever",
    "check_once", "check_paths", "ConfigError", "ConfigStore", "connect", "deliver",
    "DepGraph", "DepGraphError", "describe", "Finding", "GitProvider", "GitProviderError",
    "ingest", "Ingest", "IngestBusy", "IngestResult", "list_webhooks", "load_graph",
    "make_datasette", "PushResult", "QueryError", "RegistrationRejected",
    "RegistrationResult", "RegistryError", "remove_webhook", "rollback", "RollbackRefused",
    "RollbackResult", "run_query", "serve", "Service", "ServiceConfig", "ServiceDependency",
    "ServiceRegistry", "ServiceStatus", "SourceError", "SyncResult",
]

from .ingest import ingest  # noqa: E402  (after __version__, which .ingest imports)
from .rollback import rollback  # noqa: E402

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from .checkfiles import Finding, check_paths
    from .configstore import ConfigStore
    from .db import connect
    from .demo import build_demo_repo
    from .depgraph import DepGraph, DepGraphError, load_graph
    from .gitprovider import GitProvider, GitProviderError
    from .gitsource import SourceError
    from .health import check_forever, check_once
    from .ingest import Ingest, IngestBusy, IngestResult
    from .models import ConfigError, Service, ServiceConfig, ServiceDependency, ServiceStatus
    from .queries import QueryError, canned_queries, run_query
    from .registry import (
        PushResult,
        RegistrationRejected,
        RegistrationResult,
        RegistryError,
        ServiceRegistry,
        SyncResult,
    )
    from .rollback import RollbackRefused, RollbackResult, describe
    from .web import make_datasette, serve
    from .webhooks import add_webhook, deliver, list_webhooks, remove_webhook


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
