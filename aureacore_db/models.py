"""The registry's data classes: :class:`ServiceConfig`, :class:`ServiceStatus`, :class:`Service`.

Each round-trips to and from a service file (YAML or JSON, DESIGN §1) and the database
rows of DESIGN §4: ``ServiceConfig.from_yaml(cfg.to_yaml()) == cfg`` and
``ServiceConfig.from_dict(d).to_dict() == d`` for any mapping ``d`` (unknown keys are
kept in :attr:`ServiceConfig.extra`, so that validation can report them as errors
instead of silently dropping them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .names import DEFAULT_NAMESPACE, PENDING, STATES, State
from .parsing import DEFAULT_MAX_BYTES, parse_config
from .timestamps import now_iso
from .validation import Problem, check_config, dependency_fields

# Top-level keys of a schema-1.x service file, in the order files are written.
_KNOWN_KEYS = (
    "schema_version", "name", "namespace", "version", "description", "owner",
    "documentation_url", "service_type", "endpoints", "dependencies", "parameters",
    "health_check", "metadata",
)


class ConfigError(ValueError):
    """A file or row cannot be turned into a :class:`ServiceConfig` at all."""


@dataclass
class ServiceDependency:
    """One entry of a config's ``dependencies`` list.

    ``required`` is ``None`` when the file leaves it out (which means required);
    keeping that distinction makes files round-trip unchanged.
    """

    service: str
    version_constraint: str | None = None
    required: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_required(self) -> bool:
        return self.required is not False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.service is None else {"service": self.service}
        if self.version_constraint is not None:
            out["version_constraint"] = self.version_constraint
        if self.required is not None:
            out["required"] = self.required
        out.update(self.extra)
        return out

    @classmethod
    def from_value(cls, value: Any) -> ServiceDependency:
        fields = dependency_fields(value)
        if fields is None:
            raise ConfigError(f"a dependency must be a mapping, not {type(value).__name__}")
        # values are kept as written (even mistyped) so validation sees the file as it is
        return cls(*fields)


@dataclass
class ServiceConfig:
    """A service file's content (schema version 1.x)."""

    name: str | None
    version: str | None = None
    namespace: str | None = None
    schema_version: str | None = None  # None: not written, defaults to "1.0.0"
    description: str | None = None
    owner: str | None = None
    documentation_url: str | None = None
    service_type: dict[str, Any] | None = None
    endpoints: list[dict[str, Any]] | None = None
    dependencies: list[ServiceDependency] = field(default_factory=list)
    parameters: dict[str, Any] | None = None
    health_check: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys (schema errors)
    _had_dependencies: bool = field(default=False, repr=False, compare=False)

    # -- identity -------------------------------------------------------------
    def service_id(self, default_namespace: str = DEFAULT_NAMESPACE) -> str:
        return f"{self.namespace or default_namespace}/{self.name}"

    # -- dict / file forms ----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The file's mapping: known keys in schema order, unset ones left out."""
        out: dict[str, Any] = {}
        for key in _KNOWN_KEYS:
            if key == "dependencies":
                if self.dependencies or self._had_dependencies:
                    out[key] = [d.to_dict() for d in self.dependencies]
                continue
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceConfig:
        if not isinstance(data, Mapping):
            raise ConfigError(f"a service config must be a mapping, not {type(data).__name__}")
        rest = dict(data)
        kwargs: dict[str, Any] = {}
        for key in _KNOWN_KEYS:
            if key in rest and key != "dependencies":
                kwargs[key] = rest.pop(key)
        deps = rest.pop("dependencies", None)
        had = deps is not None
        if had and not isinstance(deps, list):
            rest["dependencies"] = deps  # kept verbatim so validation reports it
            had, deps = False, None
        config = cls(
            name=kwargs.pop("name", None),
            dependencies=[ServiceDependency.from_value(d) for d in deps or []],
            extra=rest, **kwargs,
        )
        config._had_dependencies = had
        return config

    def to_yaml(self) -> str:
        return self.dumps("yaml")

    def to_json(self) -> str:
        return self.dumps("json")

    def dumps(self, fmt: str = "yaml") -> str:
        """The file text in ``yaml`` or ``json``, checked to read back (with the ingest
        parser) as exactly this config; raises :class:`ConfigError` when it cannot be.

        YAML is written with readable Unicode unless that does not round-trip (U+0085
        is a YAML line break), then with escapes.
        """
        data = self.to_dict()
        try:
            expected = json.dumps(data, sort_keys=True, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"config cannot be written as a file: {exc}") from exc
        if fmt == "json":
            candidates = [lambda: json.dumps(data, indent=2, ensure_ascii=False) + "\n"]
        else:
            candidates = [lambda unicode=unicode: yaml.safe_dump(  # type: ignore[misc]
                data, sort_keys=False, allow_unicode=unicode) for unicode in (True, False)]
        for make in candidates:
            text = make()
            if _reads_back(text, fmt) == expected:
                return text
        raise ConfigError("config cannot be written so that it reads back unchanged "
                          f"(as {fmt}); check its values for invalid Unicode")

    @classmethod
    def loads(cls, text: str | bytes, path: str = "service.yaml") -> ServiceConfig:
        """Parse file text (format from ``path``'s suffix) with the ingest parser."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        parsed = parse_config(data, path, max_bytes=DEFAULT_MAX_BYTES)
        if parsed.content is None:
            raise ConfigError(f"{path}: {parsed.error}")
        return cls.from_dict(parsed.content)

    @classmethod
    def from_yaml(cls, text: str | bytes) -> ServiceConfig:
        return cls.loads(text, "service.yaml")

    @classmethod
    def from_json(cls, text: str | bytes) -> ServiceConfig:
        return cls.loads(text, "service.json")

    @classmethod
    def from_file(cls, path: str | Path) -> ServiceConfig:
        path = Path(path)
        return cls.loads(path.read_bytes(), path.name)

    # -- database forms -------------------------------------------------------
    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ServiceConfig:
        """From a ``configs`` row: its ``raw`` text when present (the file exactly as
        written), else its ``content`` JSON (which ingest may have normalised)."""
        raw = row.get("raw")
        if raw:
            try:
                return cls.loads(raw, f"service.{row.get('format') or 'yaml'}")
            except ConfigError:
                pass
        content = row.get("content")
        if not content:
            raise ConfigError(f"config {row.get('id')} could not be parsed: "
                              f"{row.get('parse_error')}")
        return cls.from_dict(json.loads(content))

    def content_json(self) -> str:
        """The ``configs.content`` form (JSON text, keys sorted)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    # -- checks ---------------------------------------------------------------
    def validate_schema(self, fmt: str = "yaml") -> list[Problem]:
        """Problems of this config on its own (parse, schema version, JSON Schema).

        Exactly the checks ingest makes per file (:func:`validation.check_config`);
        checks that need the whole tree are :meth:`ServiceRegistry.validate_service`'s.
        """
        path = "service.json" if fmt == "json" else "service.yaml"
        try:
            text = self.dumps(fmt)
        except ConfigError as exc:
            return [Problem("error", "parse", str(exc))]
        parsed = parse_config(text.encode("utf-8"), path)
        return list(check_config(parsed).problems)

    def copy(self, **changes: Any) -> ServiceConfig:
        clone = ServiceConfig.from_dict(json.loads(json.dumps(self.to_dict())))
        return replace(clone, **changes) if changes else clone


def _reads_back(text: str, fmt: str) -> str | None:
    """The canonical JSON of ``text`` parsed as a service file, None if unreadable."""
    try:
        parsed = parse_config(text.encode("utf-8"), f"service.{fmt}")
    except UnicodeEncodeError:  # a lone surrogate
        return None
    if parsed.content is None:
        return None
    return json.dumps(parsed.content, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class ServiceStatus:
    """A service's state: PENDING (not yet validated), CONFIGURED or ERROR."""

    state: State
    message: str = ""
    last_checked: str | None = None
    problems: tuple[Problem, ...] = ()

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown state {self.state!r} (known: {', '.join(STATES)})")

    @classmethod
    def pending(cls, message: str = "registered, not yet validated") -> ServiceStatus:
        return cls(PENDING, message, now_iso())

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "message": self.message,
                "last_checked": self.last_checked,
                "problems": [p.as_row() for p in self.problems]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceStatus:
        return cls(data["state"], data.get("message") or "", data.get("last_checked"),
                   tuple(Problem(**p) for p in data.get("problems") or ()))

    @classmethod
    def from_row(cls, row: Mapping[str, Any],
                 problems: tuple[Problem, ...] = ()) -> ServiceStatus:
        """From a ``status`` row (``status``, ``message``, ``checked_at``) or a
        ``services`` row (``status``, ``status_message``, ``last_updated``)."""
        state = row.get("status") or PENDING
        message = row.get("message", row.get("status_message")) or ""
        checked = row.get("checked_at", row.get("last_updated"))
        return cls(state, message, checked, problems)


@dataclass
class Service:
    """A registered service: its identity, config and status."""

    name: str
    namespace: str
    config: ServiceConfig | None
    status: ServiceStatus = field(default_factory=ServiceStatus.pending)
    last_updated: str | None = None
    path: str | None = None  # file path in the config repository, when known
    commit: str | None = None  # last commit that changed it, when known

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_config(cls, config: ServiceConfig,
                    default_namespace: str = DEFAULT_NAMESPACE) -> Service:
        """A new (PENDING) service for a config."""
        if not isinstance(config.name, str) or not config.name:
            raise ConfigError("a service config needs a name")
        return cls(config.name, config.namespace or default_namespace, config)

    def validate(self) -> list[Problem]:
        """Problems of the service on its own: its config's, and identity mismatches."""
        if self.config is None:
            return [Problem("error", "parse", f"service {self.id} has no readable config")]
        problems = self.config.validate_schema()
        if self.config.name != self.name:
            problems.append(Problem("error", "schema", f"config name {self.config.name!r} "
                                    f"differs from the service name {self.name!r}", "$.name"))
        if self.config.namespace and self.config.namespace != self.namespace:
            problems.append(Problem("error", "schema", f"config namespace "
                                    f"{self.config.namespace!r} differs from the service "
                                    f"namespace {self.namespace!r}", "$.namespace"))
        return problems

    def update_config(self, config: ServiceConfig) -> None:
        """Replace the config; the service is PENDING until validated again."""
        self.config = config
        self.status = ServiceStatus.pending("changed, not yet validated")
        self.last_updated = now_iso()

    # -- database forms -------------------------------------------------------
    def to_row(self) -> dict[str, Any]:
        """The ``services`` row columns this object determines."""
        return {
            "id": self.id, "namespace": self.namespace, "name": self.name, "path": self.path,
            "version": self.config.version if self.config else None,
            "status": self.status.state, "status_message": self.status.message,
            "last_updated": self.last_updated, "last_commit": self.commit,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any], config_row: Mapping[str, Any] | None = None,
                 problems: tuple[Problem, ...] = (), last_checked: str | None = None) -> Service:
        """From a ``services`` row and, optionally, its ``configs`` row."""
        config = None
        if config_row is not None and config_row.get("content"):
            config = ServiceConfig.from_row(config_row)
        status = ServiceStatus.from_row(row, problems)
        if last_checked:
            status = replace(status, last_checked=last_checked)
        return cls(row["name"], row["namespace"], config, status, row.get("last_updated"),
                   row.get("path"), row.get("last_commit"))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "namespace": self.namespace,
                "config": self.config.to_dict() if self.config else None,
                "status": self.status.to_dict(), "last_updated": self.last_updated,
                "path": self.path, "commit": self.commit}
