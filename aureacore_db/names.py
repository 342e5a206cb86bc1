"""Names shared across the package: a service's states (DESIGN §2) and the namespace of
a service whose files name none."""

from __future__ import annotations

from typing import Literal

PENDING, CONFIGURED, ERROR = "PENDING", "CONFIGURED", "ERROR"
State = Literal["PENDING", "CONFIGURED", "ERROR"]
STATES: tuple[State, ...] = (PENDING, CONFIGURED, ERROR)

DEFAULT_NAMESPACE = "default"
