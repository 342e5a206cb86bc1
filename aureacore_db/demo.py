"""The built-in sample config repository: ~36 services over ~200 commits.

``build_demo_repo(path)`` writes a fresh Git repository (with pygit2 only, no git CLI)
in the convention layout of DESIGN.md section 1: ``services/<namespace>/<name>.yaml``
(some ``.json``) plus one service-specific parameter schema at
``schemas/platform/auth-service.json``. Authors, timestamps and contents are fixed, so
two builds give the same commit ids. The history contains the events listed in
``DEMO_STORY`` (broken YAML, schema errors, a move, a merged side branch, a removal and
re-add, a missing dependency, a dependency cycle, an unsatisfied version constraint and
a commit that touches no config), each later fixed. That history is branch ``dev``;
``staging`` and ``prod`` (``ENVIRONMENTS``) branch off it and are promoted by merge, so
they drift from it: a fix waiting in staging, a hotfix made on prod only, versions only
in dev.

Self-check: ``python -m aureacore_db.demo /tmp/demo`` builds it and prints counts.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pygit2
import yaml

Doc = dict[str, Any]
Op = Callable[[Doc, int], "str | None"]

START = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)
TOTAL_COMMITS = 200

# key: (name, email, UTC offset in minutes)
AUTHORS: dict[str, tuple[str, str, int]] = {
    "alice": ("Alice Nguyen", "alice.nguyen@example.com", -300),
    "bram": ("Bram de Vries", "bram.devries@example.com", 60),
    "chen": ("Chen Wei", "chen.wei@example.com", 480),
    "dana": ("Dana Okafor", "dana.okafor@example.com", 0),
    "emil": ("Emil Larsen", "emil.larsen@example.com", 60),
    "farah": ("Farah Haddad", "farah.haddad@example.com", 120),
    "gabriel": ("Gabriel Costa", "gabriel.costa@example.com", -180),
    "hana": ("Hana Sato", "hana.sato@example.com", 540),
}
TEAMS: dict[str, tuple[str, ...]] = {
    "platform": ("alice", "bram"),
    "payments": ("chen", "dana"),
    "data": ("emil", "farah"),
    "frontend": ("gabriel",),
    "ops": ("hana",),
}

MSG: dict[str, str] = {
    "readme": "docs: explain repository layout and review process",
    "yaml_break": "rate-limiter: add per-user burst limits",
    "yaml_fix": "rate-limiter: fix YAML syntax in burst limits (unclosed brace)",
    "param_break": "auth-service: scale to three replicas for launch week",
    "param_fix": "auth-service: replicas must be an integer ('three' -> 3)",
    "missing_break": "recommendation-engine: read features from feature-store",
    "missing_fix": "Onboard data/feature-store",
    "branch_start": "invoice-generator: accept ledger 2.x",
    "merge": "Merge branch 'feature/ledger-grpc'",
    "typo_break": "etl-scheduler: depend on warehouse-loader and search-indexer",
    "typo_fix": "etl-scheduler: fix typo 'dependancies' -> 'dependencies'",
    "constraint_break": "api-gateway: require auth-service >=3.0.0 for OIDC tokens",
    "constraint_fix": "auth-service: release 3.0.0 with OIDC support",
    "remove": "Decommission ops/status-page (moving to a hosted status page)",
    "readd": "Restore ops/status-page: hosted provider contract dropped",
    "move": "Move search-indexer config to services/data/search/",
    "cycle_break": "ledger: require billing for balance reconciliation",
    "cycle_fix": "ledger: make billing dependency optional (async reconciliation)",
    "open_break": "web-frontend: use the search-indexer 3.x suggest API",
    "to_staging": "Merge branch 'dev' into staging",
    "to_prod": "Merge branch 'staging' into prod",
    "hotfix": "payment-gateway: hotfix, raise timeout_ms to 4000 (card network latency)",
}

# The environments, in promotion order: (name, branch).
ENVIRONMENTS: list[tuple[str, str]] = [("dev", "dev"), ("staging", "staging"), ("prod", "prod")]


def _q(key: str) -> str:
    """A commit message of ``MSG``, quoted for ``DEMO_STORY``."""
    return f'"{MSG[key]}"'


DEMO_STORY: list[str] = [
    f"No config touched: {_q('readme')} only edits README.md.",
    f"Unparseable YAML: {_q('yaml_break')} leaves an unclosed brace in "
    f"services/platform/rate-limiter.yaml; fixed 4 commits later by {_q('yaml_fix')}.",
    f"Parameter schema error: {_q('param_break')} sets replicas to 'three', rejected by "
    f"schemas/platform/auth-service.json; fixed by {_q('param_fix')}.",
    f"Missing required dependency: {_q('missing_break')} needs data/feature-store, which "
    f"does not exist until {_q('missing_fix')} 11 commits later.",
    f"Side branch feature/ledger-grpc: 5 commits from {_q('branch_start')} to ledger 2.0.0 "
    f"and the new payments/tax-calculator, merged back by {_q('merge')} (two parents).",
    f"Schema error, unknown key: {_q('typo_break')} writes 'dependancies'; "
    f"fixed by {_q('typo_fix')}.",
    f"Unsatisfied version constraint: {_q('constraint_break')} while auth-service is 2.x; "
    f"fixed without touching api-gateway by {_q('constraint_fix')}.",
    f"Removed and re-added: {_q('remove')} (ops/alert-manager's optional dependency on it "
    f"becomes a warning), then {_q('readd')}.",
    f"Move: {_q('move')} moves the file (same name and namespace, new path).",
    f"Dependency cycle: {_q('cycle_break')} closes billing -> invoice-generator -> ledger -> "
    f"billing; broken by {_q('cycle_fix')}.",
    f"Still open at the tip: {_q('open_break')} requires data/search-indexer ^3.0.0 while it "
    "is at 2.x, so frontend/web-frontend is in ERROR now.",
    "Environments: the history above is branch dev; staging and prod branch off at "
    f"{_q('move')} and are promoted by merge ({_q('to_staging')}, then {_q('to_prod')}).",
    f"Fix waiting in staging: prod got {_q('cycle_break')} but not the fix, so "
    "payments/ledger, billing and invoice-generator are in ERROR in prod only; staging "
    f"has {_q('cycle_fix')} (try `aureacore-db promote payments/ledger --from staging "
    "--to prod`).",
    f"Prod hotfix not yet in dev: {_q('hotfix')} was committed on prod directly.",
    "Only in dev: what came after the last promotion, e.g. platform/user-service 1.9.0 and "
    "the web-frontend error above.",
]

KEY_ORDER = (
    "schema_version name namespace version description owner documentation_url service_type "
    "endpoints dependencies parameters health_check metadata"
).split()

AUTH_PARAMETER_SCHEMA: Doc = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "platform/auth-service parameters",
    "type": "object",
    "required": ["replicas"],
    "properties": {
        "replicas": {"type": "integer", "minimum": 1},
        "timeout_ms": {"type": "integer", "minimum": 50, "maximum": 30000},
        "token_ttl_s": {"type": "integer", "minimum": 60},
        "features": {"type": "object", "additionalProperties": {"type": "boolean"}},
    },
}

README = """# Service configurations

One file per service under `services/<namespace>/<name>.yaml` (or `.json`), read by
AureaCore in its convention layout. `namespace` defaults to the folder, so frontend
files omit it. Service-specific parameter schemas live in `schemas/<namespace>/<name>.json`
and are applied to that service's `parameters`.

This is the aureacore-db demo repository; every person and URL in it is made up.
"""

README_MORE = """
## Review process

- Every change goes through a pull request reviewed by the owning team (see `owner`).
- Bump `version` when the deployed artifact changes; tune `parameters` freely.
- Declare every service you call under `dependencies`, with a `version_constraint`.
  Use `required: false` for calls that can fail without taking the service down.
"""


def _pool(min_size: int, max_size: int, idle: int = 300) -> Doc:
    return {"pool": {"min_size": min_size, "max_size": max_size, "idle_timeout_s": idle}}


def _consumer(group: str, batch: int = 100) -> Doc:
    return {"group": group, "batch_size": batch, "max_poll_interval_ms": 300000}


def _dep(service: str, constraint: str | None = None, required: bool = True) -> Doc:
    dep: Doc = {"service": service}
    if constraint:
        dep["version_constraint"] = constraint
    dep["required"] = required
    return dep


# namespace -> name -> (file ext, type, version, description, endpoints, deps, parameters)
# A type "other:x" means {type: other, custom_type: x}; endpoints are "METHOD /path name".
# fmt: off
CATALOG: dict[str, dict[str, tuple[str, str, str, str, list[str], list[Doc], Doc]]] = {
    "platform": {
        "user-service": ("yaml", "rest", "1.8.0", "User profiles and account lifecycle",
                         ["GET /api/v1/users/{id} get_user", "POST /api/v1/users create_user",
                          "DELETE /api/v1/users/{id} delete_user"], [],
                         {"replicas": 3, "timeout_ms": 800, "db": _pool(5, 20),
                          "features": {"gdpr_export": True}}),
        "session-store": ("yaml", "other:redis-cluster", "1.2.0",
                          "Redis cluster holding login sessions", [], [],
                          {"replicas": 3, "shards": 3, "maxmemory_policy": "allkeys-lru"}),
        "auth-service": ("yaml", "rest", "2.3.1", "Authentication and token issuing",
                         ["POST /api/v1/login login", "POST /api/v1/logout logout",
                          "POST /oauth/token token"],
                         [_dep("user-service", ">=1.5.0"), _dep("session-store", "^1.2.0")],
                         {"replicas": 3, "timeout_ms": 500, "token_ttl_s": 3600,
                          "features": {"mfa": False}}),
        "api-gateway": ("yaml", "rest", "4.1.0", "Public API edge: routing, auth, CORS",
                        ["GET /api/v1/routes routes"],
                        [_dep("auth-service", ">=2.0.0"), _dep("user-service", ">=1.0.0")],
                        {"replicas": 4, "timeout_ms": 3000, "routes_cache_ttl_s": 60,
                         "features": {"http3": False},
                         "cors": {"allowed_origins": ["https://www.example.com"]}}),
        "config-service": ("yaml", "grpc", "1.2.0", "Runtime configuration for all services",
                           [" /aureacore.config.v1.Config/Get get_config"], [],
                           {"replicas": 2, "timeout_ms": 1000, "db": _pool(2, 10)}),
        "feature-flags": ("yaml", "rest", "0.9.0", "Feature flag evaluation",
                          ["GET /api/v1/flags/{key} evaluate"],
                          [_dep("config-service", ">=1.0.0")],
                          {"replicas": 2, "timeout_ms": 200, "cache_ttl_s": 30}),
        "rate-limiter": ("yaml", "other:envoy-filter", "1.0.3", "Global rate limiting", [], [],
                         {"replicas": 2, "timeout_ms": 20, "default_rps": 100}),
        "notification-service": ("yaml", "eventdriven", "1.4.2", "Email, SMS and push", [],
                                 [_dep("user-service", ">=1.0.0"),
                                  _dep("data/kafka-bridge", "^1.4.0")],
                                 {"replicas": 2, "timeout_ms": 1500,
                                  "consumer": _consumer("notifications"),
                                  "channels": ["email", "sms", "push"]}),
        "audit-log": ("json", "eventdriven", "0.4.0", "Tamper-evident audit trail", [],
                      [_dep("data/kafka-bridge", ">=1.0.0")],
                      {"replicas": 1, "timeout_ms": 1000, "retention_days": 365,
                       "consumer": _consumer("audit", 500)}),
    },
    "data": {
        "kafka-bridge": ("yaml", "eventdriven", "1.4.0", "Bridges services to the Kafka cluster",
                         [], [],
                         {"replicas": 3, "timeout_ms": 1000,
                          "producer": {"acks": "all", "linger_ms": 5, "compression": "snappy"},
                          "topics": ["user-events", "payments", "audit"]}),
        "event-store": ("json", "eventdriven", "3.0.2", "Append-only store of domain events",
                        [], [],
                        {"replicas": 3, "timeout_ms": 2000, "db": _pool(10, 40, 600),
                         "retention_days": 30}),
        "search-indexer": ("yaml", "eventdriven", "2.2.0", "Keeps the search index current", [],
                           [_dep("kafka-bridge", ">=1.2.0")],
                           {"replicas": 2, "timeout_ms": 1500,
                            "consumer": _consumer("search-indexer", 200),
                            "elasticsearch": {"shards": 5, "refresh_interval": "1s"}}),
        "analytics-pipeline": ("yaml", "eventdriven", "0.12.0", "Sessionizes product events",
                               [], [_dep("kafka-bridge", ">=1.0.0"),
                                    _dep("event-store", "^3.0.0")],
                               {"replicas": 2, "consumer": _consumer("analytics", 1000),
                                "features": {"sessionization": False}}),
        "warehouse-loader": ("yaml", "other:batch", "1.0.1", "Nightly load into the warehouse",
                             [], [_dep("event-store", ">=3.0.0")],
                             {"replicas": 1, "schedule": "0 2 * * *", "batch_rows": 50000}),
        "etl-scheduler": ("yaml", "other:airflow", "2.1.0", "Schedules the ETL jobs", [], [],
                          {"replicas": 2, "timeout_ms": 2500, "db": _pool(2, 8),
                           "parallelism": 16}),
        "recommendation-engine": ("yaml", "grpc", "0.5.0", "Product recommendations",
                                  [" /reco.v1.Recommender/Recommend recommend"],
                                  [_dep("search-indexer", ">=2.0.0", required=False)],
                                  {"replicas": 2, "timeout_ms": 250,
                                   "model": {"name": "als-v3", "refresh_h": 6},
                                   "features": {"diversity_boost": False}}),
        "metrics-collector": ("yaml", "other:prometheus-agent", "1.9.1", "Scrapes metrics", [],
                              [], {"replicas": 2, "scrape_interval_s": 15,
                                   "remote_write": {"url": "https://metrics.example.com/write",
                                                    "queue": {"capacity": 10000,
                                                              "max_shards": 8}}}),
        "feature-store": ("yaml", "grpc", "1.0.0", "Online feature store for ML models",
                          [" /features.v1.FeatureStore/Get get_features"], [],
                          {"replicas": 2, "timeout_ms": 150, "db": _pool(5, 25)}),
    },
    "payments": {
        "payment-gateway": ("yaml", "rest", "3.2.0", "Card and wallet payments",
                            ["POST /api/v1/charges charge", "POST /api/v1/refunds refund"], [],
                            {"replicas": 4, "timeout_ms": 2000,
                             "providers": {"stripe": {"enabled": True},
                                           "adyen": {"enabled": False}},
                             "features": {"three_ds2": True}}),
        "ledger": ("json", "rest", "1.4.0", "Double-entry ledger",
                   ["POST /api/v1/entries post_entry",
                    "GET /api/v1/accounts/{id}/balance get_balance"], [],
                   {"replicas": 3, "timeout_ms": 800, "db": _pool(10, 40, 600)}),
        "invoice-generator": ("yaml", "rest", "1.3.2", "Renders and stores invoices",
                              ["POST /api/v1/invoices create_invoice"],
                              [_dep("ledger", ">=1.2.0,<2.0.0")],
                              {"replicas": 2, "timeout_ms": 2500,
                               "pdf": {"renderer": "weasyprint", "dpi": 150}}),
        "billing": ("yaml", "rest", "2.6.0", "Subscriptions and usage billing",
                    ["GET /api/v1/subscriptions/{id} get_subscription",
                     "POST /api/v1/subscriptions create_subscription"],
                    [_dep("invoice-generator", "^1.3.0"), _dep("payment-gateway", ">=3.0.0"),
                     _dep("platform/user-service", ">=1.0.0")],
                    {"replicas": 3, "timeout_ms": 1200, "db": _pool(5, 30),
                     "features": {"proration": True, "usage_billing": False},
                     "retry": {"max_attempts": 3, "backoff_ms": 200}}),
        "fraud-detector": ("yaml", "rest", "0.7.1", "Scores payments for fraud",
                           ["POST /api/v1/score score"],
                           [_dep("data/event-store", ">=3.0.0"),
                            _dep("payment-gateway", ">=3.0.0", required=False)],
                           {"replicas": 2, "timeout_ms": 150, "model": {"threshold": 0.82}}),
        "refund-service": ("yaml", "rest", "1.0.0", "Refund workflows",
                           ["POST /api/v1/refund-requests request_refund"],
                           [_dep("payment-gateway", ">=3.1.0"),
                            _dep("ledger", ">=1.0.0,<2.0.0")],
                           {"replicas": 2, "timeout_ms": 1000}),
        "tax-calculator": ("yaml", "rest", "1.0.0", "Sales tax and VAT",
                           ["POST /api/v1/quotes quote"], [],
                           {"replicas": 2, "timeout_ms": 300, "regions": ["EU", "UK", "US"]}),
    },
    "frontend": {
        "web-frontend": ("yaml", "other:spa", "5.2.0", "Customer web app", [],
                         [_dep("platform/api-gateway", ">=4.0.0")],
                         {"replicas": 3, "cdn": {"cache_ttl_s": 300},
                          "features": {"new_checkout": False, "dark_mode": True}}),
        "mobile-bff": ("yaml", "graphql", "2.0.1", "Backend for the mobile apps",
                       ["POST /graphql graphql"], [_dep("platform/api-gateway", ">=4.0.0")],
                       {"replicas": 2, "timeout_ms": 1500, "features": {"offline_sync": False}}),
        "graphql-gateway": ("json", "graphql", "1.2.0", "Federated GraphQL API",
                            ["POST /graphql graphql"],
                            [_dep("platform/user-service", ">=1.0.0"),
                             _dep("payments/billing", ">=2.0.0")],
                            {"replicas": 2, "timeout_ms": 2000, "max_query_depth": 10}),
        "admin-console": ("yaml", "other:spa", "1.6.0", "Internal admin UI", [],
                          [_dep("platform/api-gateway", ">=4.0.0"),
                           _dep("platform/auth-service", ">=2.0.0")],
                          {"replicas": 1, "features": {"audit_view": False}}),
        "storefront-ssr": ("yaml", "rest", "3.3.0", "Server-rendered storefront",
                           ["GET /products/{slug} product_page"],
                           [_dep("graphql-gateway", "^1.0.0"),
                            _dep("platform/feature-flags", ">=0.9.0", required=False)],
                           {"replicas": 4, "timeout_ms": 1200,
                            "cache": {"ttl_s": 60, "stale_while_revalidate_s": 300}}),
    },
    "ops": {
        "log-shipper": ("yaml", "other:daemonset", "2.4.0", "Ships node logs to Loki", [], [],
                        {"buffer": {"max_mb": 256, "flush_interval_s": 5},
                         "outputs": ["loki"]}),
        "alert-manager": ("yaml", "rest", "0.27.0", "Routes alerts to on-call",
                          ["POST /api/v2/alerts post_alerts"], [],
                          {"replicas": 2, "timeout_ms": 1000,
                           "routes": {"critical": "pagerduty", "warning": "slack"}}),
        "status-page": ("yaml", "rest", "1.0.0", "Public status page",
                        ["GET /api/v1/status status"], [],
                        {"replicas": 1, "timeout_ms": 1000}),
        "backup-runner": ("yaml", "other:cronjob", "1.1.0", "Database backups", [], [],
                          {"schedule": "0 3 * * *", "retention_days": 14,
                           "targets": ["payments/ledger", "data/event-store"]}),
        "deploy-bot": ("yaml", "eventdriven", "0.3.0", "ChatOps deployments", [],
                       [_dep("platform/notification-service", ">=1.0.0", required=False)],
                       {"replicas": 1, "features": {"auto_rollback": False}}),
        "secrets-rotator": ("json", "other:cronjob", "0.8.0", "Rotates database credentials",
                            [], [], {"schedule": "0 4 * * 0", "max_age_days": 90}),
    },
}

# fmt: on

OWNERS = {
    "platform": "team-platform",
    "payments": "team-payments",
    "data": "team-data",
    "frontend": "team-web",
    "ops": "team-sre",
}
NO_HEALTH = ("other:cronjob", "other:daemonset", "other:batch")


def _service_doc(namespace: str, name: str) -> Doc:
    """The initial service document of one catalog entry."""
    _ext, kind, version, description, endpoints, deps, params = CATALOG[namespace][name]
    doc: Doc = {}
    if namespace != "ops":  # ops files rely on the schema_version default
        doc["schema_version"] = "1.0.0"
    doc["name"] = name
    if namespace != "frontend":  # frontend files rely on the folder for their namespace
        doc["namespace"] = namespace
    doc["version"] = version
    doc["description"] = description
    owner = "team-identity" if name in ("auth-service", "user-service", "session-store") else None
    doc["owner"] = owner or OWNERS[namespace]
    doc["documentation_url"] = f"https://docs.example.com/{namespace}/{name}"
    base, _, custom = kind.partition(":")
    doc["service_type"] = {"type": base, "custom_type": custom} if custom else {"type": base}
    if endpoints:
        doc["endpoints"] = []
        for spec in endpoints:
            method, path, ep_name = spec.split(" ")
            endpoint: Doc = {"name": ep_name, "path": path}
            if method:
                endpoint["method"] = method
            doc["endpoints"].append(endpoint)
    if deps:
        doc["dependencies"] = [dict(d) for d in deps]
    doc["parameters"] = json.loads(json.dumps(params))
    if kind not in NO_HEALTH:
        doc["health_check"] = {
            "url": f"http://{name}.{namespace}.svc.cluster.local:8080/healthz",
            "interval_s": 30,
            "timeout_s": 2,
            "expected_status": 200,
        }
    tier = 1 if namespace in ("platform", "payments") else 2
    doc["metadata"] = {"slack": f"#{doc['owner']}", "tier": tier}
    return doc


# --- routine changes: each mutates a document and returns a message, or None -------------

PATCH_REASONS = (
    "fix retry jitter",
    "dependency updates",
    "redact tokens in logs",
    "fix connection leak",
    "CVE patch for base image",
    "faster cold start",
)
MINOR_REASONS = (
    "structured logging",
    "OpenTelemetry tracing",
    "bulk API",
    "per-tenant quotas",
    "graceful shutdown",
)
FLAGS = ("canary_routing", "shadow_traffic", "strict_validation", "async_writes")
ONCALL = ("alice", "bram", "chen", "dana", "emil", "farah", "gabriel", "hana")


def _bump(doc: Doc, part: int) -> str:
    nums = [int(x) for x in doc["version"].split(".")]
    nums[part] += 1
    nums[part + 1 :] = [0] * (2 - part)
    doc["version"] = ".".join(map(str, nums))
    return doc["version"]


def _op_replicas(doc: Doc, k: int) -> str | None:
    p = doc["parameters"]
    old = p.get("replicas")
    if not isinstance(old, int):
        return None
    p["replicas"] = old + 1 if old < 6 else 2
    return f"scale {'up' if p['replicas'] > old else 'down'} to {p['replicas']} replicas"


def _op_timeout(doc: Doc, k: int) -> str | None:
    p = doc["parameters"]
    old = p.get("timeout_ms")
    if not isinstance(old, int):
        return None
    p["timeout_ms"] = old + 250 if k % 3 or old <= 250 else old - 250
    return f"{'raise' if p['timeout_ms'] > old else 'lower'} timeout_ms to {p['timeout_ms']}"


def _op_patch(doc: Doc, k: int) -> str | None:
    return f"release {_bump(doc, 2)} ({PATCH_REASONS[k % len(PATCH_REASONS)]})"


def _op_minor(doc: Doc, k: int) -> str | None:
    return f"release {_bump(doc, 1)} with {MINOR_REASONS[k % len(MINOR_REASONS)]}"


def _op_flag(doc: Doc, k: int) -> str | None:
    features = doc["parameters"].get("features")
    if features is None:
        return None
    flag = FLAGS[k % len(FLAGS)] if k % 2 else sorted(features)[k % len(features)]
    features[flag] = not features.get(flag, False)
    return f"{'enable' if features[flag] else 'disable'} {flag} flag"


def _op_pool(doc: Doc, k: int) -> str | None:
    pool = doc["parameters"].get("db", {}).get("pool")
    if pool is None:
        return None
    pool["max_size"] = pool["max_size"] + 10 if pool["max_size"] < 60 else 20
    return f"set DB pool max_size to {pool['max_size']}"


def _op_consumer(doc: Doc, k: int) -> str | None:
    consumer = doc["parameters"].get("consumer")
    if consumer is None:
        return None
    consumer["batch_size"] = consumer["batch_size"] * 2 if consumer["batch_size"] < 2000 else 100
    return f"set consumer batch_size to {consumer['batch_size']}"


def _op_health(doc: Doc, k: int) -> str | None:
    check = doc.get("health_check")
    if check is None:
        return None
    check["interval_s"] = 15 if check["interval_s"] == 30 else 30
    return f"probe health every {check['interval_s']}s"


def _op_oncall(doc: Doc, k: int) -> str | None:
    doc["metadata"]["oncall"] = ONCALL[k % len(ONCALL)]
    return f"hand on-call to {ONCALL[k % len(ONCALL)]}"


OPS: tuple[Op, ...] = (
    _op_replicas,
    _op_patch,
    _op_timeout,
    _op_flag,
    _op_pool,
    _op_patch,
    _op_consumer,
    _op_health,
    _op_minor,
    _op_replicas,
    _op_oncall,
)


# --- the builder ---------------------------------------------------------------------------


@dataclass
class _Line:
    """A line of development: its file contents and its last commit."""

    files: dict[str, bytes] = field(default_factory=dict)
    tip: pygit2.Oid | None = None


@dataclass(frozen=True)
class _Logged:
    """A commit of main as written: id, files, subject and signature."""

    oid: pygit2.Oid
    files: dict[str, bytes]
    subject: str
    signature: pygit2.Signature


class _Demo:
    """Writes the demo history commit by commit."""

    def __init__(self, repo: pygit2.Repository) -> None:
        self.repo = repo
        self.docs: dict[str, Doc] = {}  # service id -> current document
        self.paths: dict[str, str] = {}  # service id -> current path
        self.mangle: dict[str, Callable[[str], str]] = {}  # deliberate breakage
        self.frozen: set[str] = set()  # not touched by routine changes
        self.quiet_ns: set[str] = set()  # namespaces not touched by routine changes
        self.main = _Line()
        self.log: list[_Logged] = []  # every commit of main, oldest first
        self.clock = START
        self.count = 0
        self.k = 0

    # low level
    def _signature(self, who: str) -> pygit2.Signature:
        gaps = (37, 83, 142, 55, 211, 96, 64, 175, 48, 120, 29, 158)
        gap = gaps[self.count % len(gaps)]
        t = self.clock + timedelta(minutes=gap)
        if t.hour >= 18 or t.date() != self.clock.date():
            day = self.clock.date() + timedelta(days=1)
            while day.weekday() >= 5:
                day += timedelta(days=1)
            t = datetime.combine(day, time(9), timezone.utc) + timedelta(minutes=gap % 45)
        self.clock = t
        name, email, offset = AUTHORS[who]
        return pygit2.Signature(name, email, int(t.timestamp()), offset)

    def _write(self, line: _Line, who: str, message: str, parents: list[pygit2.Oid]) -> None:
        index = pygit2.Index()
        for path, data in line.files.items():
            blob = self.repo.create_blob(data)
            index.add(pygit2.IndexEntry(path, blob, pygit2.enums.FileMode.BLOB))
        tree = index.write_tree(self.repo)
        sig = self._signature(who)
        line.tip = self.repo.create_commit(None, sig, sig, message + "\n", tree, parents)
        self.count += 1
        if line is self.main:
            self.log.append(_Logged(line.tip, dict(line.files), message.split("\n")[0], sig))

    def render(self, sid: str) -> bytes:
        """The file content of a service, in its path's format, with any breakage applied."""
        doc = self.docs[sid]
        ordered = {k: doc[k] for k in KEY_ORDER if k in doc}
        if self.paths[sid].endswith(".json"):
            text = json.dumps(ordered, indent=2) + "\n"
        else:
            text = yaml.safe_dump(ordered, sort_keys=False, width=100)
        if sid in self.mangle:
            text = self.mangle[sid](text)
        return text.encode()

    # operations
    def commit(
        self,
        who: str,
        message: str,
        *sids: str,
        line: _Line | None = None,
        files: dict[str, bytes | None] | None = None,
    ) -> None:
        """Commit the current documents of ``sids`` plus raw ``files`` (None deletes)."""
        line = line or self.main
        for sid in sids:
            line.files[self.paths[sid]] = self.render(sid)
        for path, data in (files or {}).items():
            if data is None:
                line.files.pop(path, None)
            else:
                line.files[path] = data
        self._write(line, who, message, [line.tip] if line.tip else [])

    def add(
        self,
        who: str,
        message: str,
        *sids: str,
        line: _Line | None = None,
        files: dict[str, bytes | None] | None = None,
    ) -> None:
        """Onboard catalog services (``namespace/name``) and commit them."""
        for sid in sids:
            namespace, name = sid.split("/")
            self.docs[sid] = _service_doc(namespace, name)
            self.paths[sid] = f"services/{namespace}/{name}.{CATALOG[namespace][name][0]}"
        self.commit(who, message, *sids, line=line, files=files)

    def remove(self, who: str, message: str, sid: str) -> None:
        """Delete a service file."""
        path = self.paths.pop(sid)
        del self.docs[sid]
        self.commit(who, message, files={path: None})

    def move(self, who: str, message: str, sid: str, new_path: str) -> None:
        """Move a service file without changing it."""
        old = self.paths[sid]
        self.paths[sid] = new_path
        self.commit(who, message, sid, files={old: None})

    def merge(self, who: str, message: str, branch: _Line, base: dict[str, bytes]) -> None:
        """Two-parent merge of ``branch`` (forked at ``base``) into main; no conflicts."""
        merged = dict(self.main.files)
        for path in set(base) | set(branch.files):
            if branch.files.get(path) != base.get(path):
                assert self.main.files.get(path) == base.get(path), f"conflict on {path}"
                if path in branch.files:
                    merged[path] = branch.files[path]
                else:
                    merged.pop(path, None)
        self.main.files = merged
        assert self.main.tip and branch.tip
        self._write(self.main, who, message, [self.main.tip, branch.tip])

    def routine(self, n: int) -> None:
        """``n`` everyday tuning commits on main, chosen deterministically."""
        for _ in range(n):
            self.k += 1
            k = self.k
            pool = sorted(
                s
                for s in self.docs
                if s not in self.frozen and s.split("/")[0] not in self.quiet_ns
            )
            if k % 10 == 0:  # a capacity review touching several services of one team
                namespaces = sorted({s.split("/")[0] for s in pool})
                ns = namespaces[(k // 10) % len(namespaces)]
                picked = [
                    s
                    for s in pool
                    if s.startswith(ns + "/")
                    and isinstance(self.docs[s]["parameters"].get("replicas"), int)
                ][:3]
                for sid in picked:
                    _op_replicas(self.docs[sid], k)
                names = ", ".join(s.split("/")[1] for s in picked)
                self.commit(
                    TEAMS[ns][k % len(TEAMS[ns])],
                    f"{ns}: capacity review, adjust replicas of {names}",
                    *picked,
                )
                continue
            sid = pool[(k * 13 + 5) % len(pool)]
            for i in range(len(OPS)):
                msg = OPS[(k * 5 + i) % len(OPS)](self.docs[sid], k)
                if msg:
                    break
            ns, name = sid.split("/")
            self.commit(TEAMS[ns][k % len(TEAMS[ns])], f"{name}: {msg}", sid)


def _story(d: _Demo) -> None:
    """The whole scripted history."""
    d.add(
        "alice",
        "Initial import of platform service configs",
        "platform/user-service",
        "platform/session-store",
        "platform/auth-service",
        "platform/api-gateway",
        files={"README.md": README.encode()},
    )
    d.add(
        "bram",
        "Onboard platform/config-service and platform/feature-flags",
        "platform/config-service",
        "platform/feature-flags",
    )
    d.commit(
        "alice",
        "Add parameter schema for platform/auth-service",
        files={
            "schemas/platform/auth-service.json": (
                json.dumps(AUTH_PARAMETER_SCHEMA, indent=2) + "\n"
            ).encode()
        },
    )
    d.add("bram", "Onboard platform/rate-limiter", "platform/rate-limiter")
    d.add(
        "emil",
        "Onboard data/kafka-bridge and data/event-store",
        "data/kafka-bridge",
        "data/event-store",
    )
    d.add("bram", "Onboard platform/notification-service", "platform/notification-service")
    d.add(
        "chen",
        "Onboard payments/payment-gateway and payments/ledger",
        "payments/payment-gateway",
        "payments/ledger",
    )
    d.add("dana", "Onboard payments/invoice-generator", "payments/invoice-generator")
    d.add("chen", "Onboard payments/billing", "payments/billing")
    d.add("farah", "Onboard data/search-indexer", "data/search-indexer")
    d.add(
        "emil",
        "Onboard data/analytics-pipeline and data/warehouse-loader",
        "data/analytics-pipeline",
        "data/warehouse-loader",
    )
    d.add("gabriel", "Onboard frontend/web-frontend", "frontend/web-frontend")
    d.add(
        "gabriel",
        "Onboard frontend/mobile-bff and frontend/graphql-gateway",
        "frontend/mobile-bff",
        "frontend/graphql-gateway",
    )
    d.add(
        "hana",
        "Onboard ops/log-shipper and ops/alert-manager",
        "ops/log-shipper",
        "ops/alert-manager",
    )
    d.add("dana", "Onboard payments/fraud-detector", "payments/fraud-detector")
    d.add("farah", "Onboard data/etl-scheduler", "data/etl-scheduler")
    d.add(
        "hana",
        "Onboard ops/status-page and ops/backup-runner",
        "ops/status-page",
        "ops/backup-runner",
    )
    d.add(
        "gabriel",
        "Onboard frontend/admin-console and frontend/storefront-ssr",
        "frontend/admin-console",
        "frontend/storefront-ssr",
    )
    d.add(
        "emil",
        "Onboard data/recommendation-engine and data/metrics-collector",
        "data/recommendation-engine",
        "data/metrics-collector",
    )
    d.add(
        "hana",
        "Onboard ops/deploy-bot and ops/secrets-rotator",
        "ops/deploy-bot",
        "ops/secrets-rotator",
    )
    d.add("dana", "Onboard payments/refund-service", "payments/refund-service")
    d.add("bram", "Onboard platform/audit-log", "platform/audit-log")
    d.docs["ops/alert-manager"]["dependencies"] = [_dep("status-page", ">=1.0.0", False)]
    d.commit(
        "hana",
        "alert-manager: link incidents to status-page (optional dependency)",
        "ops/alert-manager",
    )
    d.routine(8)

    d.commit("hana", MSG["readme"], files={"README.md": (README + README_MORE).encode()})
    d.routine(6)

    rl = "platform/rate-limiter"  # unparseable YAML, fixed 4 commits later
    d.mangle[rl] = lambda text: text.replace(
        "parameters:\n", "parameters:\n  burst: {per_ip: 100, per_user: 400\n", 1
    )
    d.frozen.add(rl)
    d.commit("bram", MSG["yaml_break"], rl)
    d.routine(3)
    del d.mangle[rl]
    d.docs[rl]["parameters"]["burst"] = {"per_ip": 100, "per_user": 400}
    d.frozen.discard(rl)
    d.commit(
        "bram",
        MSG["yaml_fix"] + "\n\nThe flow mapping was never closed, so the whole "
        "file failed to parse.",
        rl,
    )
    d.routine(8)

    auth = "platform/auth-service"  # parameter schema error
    d.docs[auth]["parameters"]["replicas"] = "three"
    d.frozen.add(auth)
    d.commit("gabriel", MSG["param_break"], auth)
    d.routine(4)
    d.docs[auth]["parameters"]["replicas"] = 3
    d.frozen.discard(auth)
    d.commit("alice", MSG["param_fix"] + "\n\nCaught by schemas/platform/auth-service.json.", auth)
    d.routine(6)

    reco = "data/recommendation-engine"  # required dependency on a service that is missing
    d.docs[reco]["dependencies"].append(_dep("feature-store", "^1.0.0"))
    d.commit("emil", MSG["missing_break"], reco)
    d.routine(10)
    d.add("farah", MSG["missing_fix"], "data/feature-store")
    d.routine(6)

    # side branch feature/ledger-grpc, 5 commits, while main goes on
    base = dict(d.main.files)
    branch = _Line(dict(base), d.main.tip)
    d.quiet_ns.add("payments")
    docs = d.docs
    docs["payments/invoice-generator"]["dependencies"][0]["version_constraint"] = ">=1.2.0,<3.0.0"
    d.commit("chen", MSG["branch_start"], "payments/invoice-generator", line=branch)
    docs["payments/refund-service"]["dependencies"][1]["version_constraint"] = ">=1.0.0,<3.0.0"
    d.commit("chen", "refund-service: accept ledger 2.x", "payments/refund-service", line=branch)
    d.routine(1)
    ledger = docs["payments/ledger"]
    ledger["version"] = "2.0.0"
    ledger["service_type"] = {"type": "grpc"}
    ledger["endpoints"] = [
        {"name": "post_entry", "path": "/ledger.v2.Ledger/PostEntry"},
        {"name": "get_balance", "path": "/ledger.v2.Ledger/GetBalance"},
    ]
    ledger["health_check"]["url"] = "grpc://ledger.payments.svc.cluster.local:9090/health"
    d.commit("chen", "ledger: release 2.0.0 with gRPC API", "payments/ledger", line=branch)
    d.routine(1)
    d.add("dana", "Onboard payments/tax-calculator", "payments/tax-calculator", line=branch)
    docs["payments/billing"]["dependencies"].append(_dep("tax-calculator", "^1.0.0"))
    d.commit(
        "dana", "billing: call tax-calculator for invoice totals", "payments/billing", line=branch
    )
    d.routine(1)
    d.merge("chen", MSG["merge"], branch, base)
    d.quiet_ns.discard("payments")
    d.routine(8)

    etl = "data/etl-scheduler"  # unknown top-level key
    d.docs[etl]["dependencies"] = [
        _dep("warehouse-loader", ">=1.0.0"),
        _dep("search-indexer", ">=2.0.0", required=False),
    ]
    d.mangle[etl] = lambda text: text.replace("\ndependencies:", "\ndependancies:")
    d.frozen.add(etl)
    d.commit("farah", MSG["typo_break"], etl)
    d.routine(5)
    del d.mangle[etl]
    d.frozen.discard(etl)
    d.commit(
        "farah",
        MSG["typo_fix"] + "\n\nThe schema rejects unknown keys, so the service "
        "was in ERROR since the dependency was added.",
        etl,
    )
    d.routine(6)

    gw = "platform/api-gateway"  # constraint not satisfied until auth-service 3.0.0
    d.docs[gw]["dependencies"][0]["version_constraint"] = ">=3.0.0"
    d.commit("bram", MSG["constraint_break"], gw)
    d.frozen.add(auth)
    d.routine(8)
    d.docs[auth]["version"] = "3.0.0"
    d.docs[auth]["endpoints"].append(
        {
            "name": "openid_configuration",
            "path": "/.well-known/openid-configuration",
            "method": "GET",
        }
    )
    d.docs[auth]["parameters"]["features"]["oidc"] = True
    d.frozen.discard(auth)
    d.commit("alice", MSG["constraint_fix"], auth)
    d.routine(6)

    d.remove("hana", MSG["remove"], "ops/status-page")
    d.routine(12)
    d.add("hana", MSG["readd"], "ops/status-page")
    d.docs["ops/status-page"]["version"] = "1.1.0"
    d.commit("hana", "status-page: release 1.1.0 (incident templates)", "ops/status-page")
    d.routine(6)

    d.move("farah", MSG["move"], "data/search-indexer", "services/data/search/search-indexer.yaml")
    d.routine(6)

    led = "payments/ledger"  # cycle billing -> invoice-generator -> ledger -> billing
    d.docs[led]["dependencies"] = [_dep("billing", ">=2.0.0")]
    d.commit("chen", MSG["cycle_break"], led)
    d.routine(6)
    d.docs[led]["dependencies"][0]["required"] = False
    d.commit(
        "dana",
        MSG["cycle_fix"] + "\n\nledger -> billing closed a cycle of required "
        "dependencies (billing -> invoice-generator -> ledger).",
        led,
    )
    d.routine(TOTAL_COMMITS - d.count - 3)

    web = "frontend/web-frontend"  # left broken: something for `errors_now` to show
    d.docs[web]["dependencies"].append(_dep("data/search-indexer", "^3.0.0"))
    d.frozen.add(web)
    d.commit("gabriel", MSG["open_break"], web)
    d.routine(TOTAL_COMMITS - d.count)


def next_steps(db_path: Path, repo_dir: Path) -> str:
    """What to try after the demo is built: queries, the environments page, a promotion."""
    return (
        "\nNext:\n"
        f"  aureacore-db query errors_now --db {db_path}\n"
        f"  aureacore-db query first_errors --db {db_path}\n"
        f"  aureacore-db query parameter_blame --db {db_path} "
        "-p service=platform/auth-service -p key=replicas\n"
        f"  aureacore-db deps payments/billing --db {db_path}\n"
        f"  aureacore-db query environment_matrix --db {db_path}\n"
        f"  aureacore-db promote payments/ledger --from staging --to prod --db {db_path}\n"
        f"  aureacore-db validate {repo_dir}\n"
        f"  aureacore-db ingest {repo_dir} --db {db_path}   # after new commits\n"
        f"  aureacore-db serve {db_path} --root   # then open /-/aureacore/environments"
    )


def _environments(d: _Demo) -> dict[str, pygit2.Oid]:
    """The tips of staging and prod, built beside the finished history of main (dev) and
    dated between its commits, so main's commits stay as they are.

    staging and prod branch off at the move; dev is merged into staging two commits after
    the cycle broke, staging into prod, then a hotfix lands on prod only, and dev is
    merged into staging again seven commits after the cycle's fix.
    """
    at = {entry.subject: i for i, entry in enumerate(d.log)}

    def commit(files: dict[str, bytes], parents: list[pygit2.Oid], who: str, message: str,
               after: pygit2.Signature, minutes: int) -> pygit2.Oid:
        index = pygit2.Index()
        for path, data in files.items():
            index.add(pygit2.IndexEntry(path, d.repo.create_blob(data),
                                        pygit2.enums.FileMode.BLOB))
        name, email, offset = AUTHORS[who]
        sig = pygit2.Signature(name, email, after.time + 60 * minutes, offset)
        return d.repo.create_commit(None, sig, sig, message + "\n",
                                    index.write_tree(d.repo), parents)

    fork = d.log[at[MSG["move"]]]
    first = d.log[at[MSG["cycle_break"]] + 2]
    second = d.log[at[MSG["cycle_fix"]] + 7]
    staging = commit(first.files, [fork.oid, first.oid], "hana", MSG["to_staging"],
                     first.signature, 20)
    prod = commit(first.files, [fork.oid, staging], "hana", MSG["to_prod"],
                  first.signature, 50)
    gateway = "services/payments/payment-gateway.yaml"
    doc = yaml.safe_load(first.files[gateway])
    _bump(doc, 2)
    doc["parameters"]["timeout_ms"] = 4000
    hotfixed = {**first.files, gateway: yaml.safe_dump(doc, sort_keys=False, width=100).encode()}
    prod = commit(hotfixed, [prod], "chen", MSG["hotfix"] + "\n\nApplied on prod during "
                  "the incident; to be brought back to dev.", first.signature, 95)
    staging = commit(second.files, [staging, second.oid], "hana", MSG["to_staging"],
                     second.signature, 30)
    return {"staging": staging, "prod": prod}


def build_demo_repo(path: Path) -> Path:
    """Create the demo config repository at ``path`` (absent or empty) and return it:
    branches dev (checked out), staging and prod (``ENVIRONMENTS``)."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} exists and is not an empty folder")
    repo = pygit2.init_repository(str(path), bare=False, initial_head="dev")
    demo = _Demo(repo)
    _story(demo)
    assert demo.main.tip is not None
    tips = {"dev": demo.main.tip, **_environments(demo)}
    for branch, tip in tips.items():
        repo.references.create(f"refs/heads/{branch}", tip, force=True)
    repo.set_head("refs/heads/dev")
    repo.checkout_head(strategy=pygit2.enums.CheckoutStrategy.FORCE)
    return path


def main(argv: list[str] | None = None) -> None:
    """Self-check: build the demo repository and print what it holds."""
    parser = argparse.ArgumentParser(description="Build the aureacore-db demo config repo.")
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    repo = pygit2.Repository(str(build_demo_repo(args.path)))
    commits = sum(1 for _ in repo.walk(repo.head.target))
    services = sorted(
        p.relative_to(args.path).as_posix()
        for p in (args.path / "services").rglob("*")
        if p.is_file()
    )
    print(f"{args.path}: {commits} commits, {len(services)} services at the tip of dev")
    for _name, branch in ENVIRONMENTS[1:]:
        tip = repo.branches[branch].target
        print(f"  {branch}: {sum(1 for _ in repo.walk(tip))} commits, tip {str(tip)[:12]}")
    for line in DEMO_STORY:
        print(f"- {line}")


if __name__ == "__main__":
    main()
