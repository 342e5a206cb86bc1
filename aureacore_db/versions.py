"""Dependency references and version constraints (npm or comma syntax, semantic versions)."""

from __future__ import annotations

from functools import lru_cache

import semantic_version


def service_ref(ref: str, namespace: str) -> str:
    """Service id of a dependency reference (``name`` means the same namespace)."""
    return ref if "/" in ref else f"{namespace}/{ref}"


@lru_cache(maxsize=4096)
def version_spec(constraint: str) -> semantic_version.BaseSpec | None:
    """A version constraint in npm syntax (``^1.2``, ``>=1 <2``, ``1.x || 2.x``) or the
    comma form (``>=1.2.0,<2.0.0``); None when it is neither."""
    kinds = (semantic_version.SimpleSpec, semantic_version.NpmSpec)
    if "," not in constraint:
        kinds = kinds[::-1]
    for kind in kinds:
        try:
            return kind(constraint)
        except ValueError:
            continue
    return None


@lru_cache(maxsize=4096)
def _semver(version: str) -> semantic_version.Version | None:
    try:
        return semantic_version.Version(version)
    except ValueError:
        return None


@lru_cache(maxsize=16384)
def satisfies(constraint: str, version: str) -> bool | None:
    """Whether ``version`` meets ``constraint``; None when either cannot be read."""
    spec, parsed = version_spec(constraint), _semver(version)
    if spec is None or parsed is None:
        return None
    return bool(spec.match(parsed))
