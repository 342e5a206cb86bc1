"""JSON Schema validation that is safe on schemas kept in a config repository.

A parameter schema (``schemas/<namespace>/<name>.json``) is untrusted input, so:

* ``pattern`` / ``patternProperties`` / ``additionalProperties`` match with the
  ``regex`` package under a timeout (no catastrophic backtracking hangs a run), with
  ECMA-262 meaning (JSON Schema's): ``$`` is the end of the string (Python's ``$``
  also matches before a final newline, which let ``"a\\n"`` pass a name pattern), and
  ``\\d`` / ``\\w`` are ASCII;
* ``$ref`` / ``$dynamicRef`` resolve only inside the schema and the bundled
  meta-schemas: the referencing registry retrieves nothing (no network);
* one validation has a time budget, and a reference loop (``{"$ref": "#"}``) ends it.

Whatever stops a validation is a :class:`SchemaRunError` with a readable message.
The built-in schemas use the same pattern semantics (:func:`ecma_validator`).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from functools import cache, lru_cache
from typing import Any

import referencing
import referencing.exceptions
import regex
from jsonschema import ValidationError, validators
from jsonschema.exceptions import SchemaError

PATTERN_TIMEOUT = 0.5  # seconds for one regex match
VALIDATION_BUDGET = 2.0  # seconds for validating one instance against a repo schema

_deadline: contextvars.ContextVar[float] = contextvars.ContextVar("deadline",
                                                                  default=float("inf"))


class SchemaRunError(Exception):
    """A schema could not be applied to a value (the message says why)."""


class _OverBudget(Exception):
    pass


def ecma_to_python(pattern: str) -> str:
    """An ECMA-262 pattern rewritten for Python's ``re`` / ``regex``: ``$`` -> ``\\Z``,
    ``\\d`` -> ``[0-9]``, ``\\w`` -> ``[A-Za-z0-9_]`` (and their negations)."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt in "dw":
                body = "0-9" if nxt == "d" else "A-Za-z0-9_"
                out.append(body if in_class else f"[{body}]")
            elif nxt in "DW" and not in_class:
                out.append("[^0-9]" if nxt == "D" else "[^A-Za-z0-9_]")
            else:
                out.append(char + nxt)
            i += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
            out.append(char)
            if pattern[i + 1:i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1:i + 2] == "]":  # a literal ] first in a class
                out.append("\\]")
                i += 1
            i += 1
            continue
        elif char == "$":
            char = r"\Z"
        out.append(char)
        i += 1
    return "".join(out)


@lru_cache(maxsize=2048)
def _compiled(pattern: str) -> regex.Pattern[str]:
    try:
        return regex.compile(ecma_to_python(pattern))
    except (regex.error, RecursionError, OverflowError, ValueError) as exc:
        raise SchemaRunError(f"pattern {_quote(pattern)} is not a usable regular "
                             f"expression: {exc}") from None


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` (ECMA-262) matches somewhere in ``text``, within the timeout."""
    compiled = _compiled(pattern)
    remaining = _deadline.get() - time.monotonic()
    try:
        return compiled.search(text, timeout=max(0.01, min(PATTERN_TIMEOUT, remaining))) \
            is not None
    except TimeoutError:
        raise SchemaRunError(f"pattern {_quote(pattern)} took too long on a "
                             f"{len(text):,}-character string (over {PATTERN_TIMEOUT} s); "
                             "simplify the pattern") from None


def _quote(pattern: str) -> str:
    return repr(pattern if len(pattern) <= 80 else pattern[:79] + "…")


# -- keywords with bounded, ECMA-262 patterns (same messages as jsonschema's) ---------------

def _pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not search(patrn, instance):
        yield ValidationError(f"{instance!r} does not match {patrn!r}")


def _pattern_properties(validator: Any, patterns: dict, instance: Any,
                        schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, extra_schema: Any, instance: Any,
                           schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = sorted(key for key in instance if key not in properties
                    and not any(search(p, key) for p in patterns))
    if validator.is_type(extra_schema, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], extra_schema, path=extra)
    elif not extra_schema and extras:
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in extras)
            listed = ", ".join(repr(each) for each in sorted(patterns))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {listed}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            joined = ", ".join(repr(each) for each in extras)
            yield ValidationError(f"Additional properties are not allowed ({joined} {verb} "
                                  "unexpected)")


_PATTERN_KEYWORDS = {"pattern": _pattern, "patternProperties": _pattern_properties,
                     "additionalProperties": _additional_properties}


def _budgeted(keyword: Any) -> Any:
    def check(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        if time.monotonic() > _deadline.get():
            raise _OverBudget
        return keyword(validator, value, instance, schema)
    return check


@cache
def ecma_validator(cls: type) -> type:
    """``cls`` with ECMA-262, time-bounded patterns (for the built-in schemas)."""
    return validators.extend(cls, _PATTERN_KEYWORDS)


@cache
def untrusted_validator(cls: type) -> type:
    """``cls`` for schemas kept in a config repository: bounded patterns, and every
    keyword checks the validation's time budget."""
    keywords = {**cls.VALIDATORS, **_PATTERN_KEYWORDS}
    return validators.extend(cls, {k: _budgeted(v) for k, v in keywords.items()})


NO_RETRIEVAL = referencing.Registry()  # retrieves nothing: unknown URIs are unresolvable


def _walk(schema: Any) -> Iterator[dict]:
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def compile_untrusted(schema: Any) -> Any:
    """A validator for a repo schema; raises :class:`SchemaError` when it is not a valid
    JSON Schema or uses what cannot be checked safely."""
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    cls.check_schema(schema)
    nodes = list(_walk(schema))
    if any("unevaluatedProperties" in n for n in nodes) and any(
            "patternProperties" in n for n in nodes):
        # jsonschema evaluates these patterns with ``re`` inside unevaluatedProperties,
        # out of reach of the time bound
        raise SchemaError("unevaluatedProperties together with patternProperties is not "
                          "supported in a parameter schema")
    for node in nodes:
        patterns = list(node.get("patternProperties") or {}) if isinstance(
            node.get("patternProperties"), dict) else []
        if isinstance(node.get("pattern"), str):
            patterns.append(node["pattern"])
        for pattern in patterns:
            try:
                _compiled(pattern)
            except SchemaRunError as exc:
                raise SchemaError(str(exc)) from None
    safe = untrusted_validator(cls)
    return safe(schema, registry=NO_RETRIEVAL, format_checker=cls.FORMAT_CHECKER)


def run_untrusted(validator: Any, instance: Any,
                  budget: float = VALIDATION_BUDGET) -> list[ValidationError]:
    """Every error of ``instance``; raises :class:`SchemaRunError` when the schema
    cannot be applied (slow pattern, unresolvable or looping reference, over budget)."""
    token = _deadline.set(time.monotonic() + budget)
    try:
        return list(validator.iter_errors(instance))
    except _OverBudget:
        raise SchemaRunError(f"validation took longer than {budget:g} s; simplify the "
                             "schema") from None
    except RecursionError:
        raise SchemaRunError("the schema refers to itself without end ($ref loop)") from None
    except referencing.exceptions.Unresolvable as exc:
        raise SchemaRunError(f"cannot resolve reference {_ref_of(exc)}: only references "
                             "inside the schema are followed, nothing is fetched") from None
    except SchemaRunError:
        raise
    except Exception as exc:  # noqa: BLE001 - an untrusted schema must not crash a run
        raise SchemaRunError(f"cannot be applied: {type(exc).__name__}: {exc}") from None
    finally:
        _deadline.reset(token)


def _ref_of(exc: referencing.exceptions.Unresolvable) -> str:
    ref = getattr(exc, "ref", None)
    return repr(ref) if ref is not None else str(exc)
