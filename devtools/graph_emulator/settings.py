"""Runtime knobs of the emulator, changeable through ``PUT /_emulator/config``.

config = EmulatorConfig(quota_per_10s=default_quota_per_10s(250))
config = updated_config(config, {"failureRate": 0.1, "failureStatuses": [503]})
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Final

from devtools.graph_emulator.latency import ProfileLatency


class ConfigError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def default_quota_per_10s(user_count: int) -> int:
    """Graph's identity-and-access budget per app per tenant, by tenant size.

    S: under 50 users, M: 50 to 500, L: above 500 (Graph's service-specific throttling limits).
    """
    if user_count < 50:
        return 3_500
    if user_count <= 500:
        return 5_000
    return 8_000


DEFAULT_WRITE_QUOTA_PER_150S: Final = 3_000
#: Statuses an injected failure is drawn from: the transient answers Graph documents.
FAILURE_STATUSES: Final = (429, 500, 502, 503, 504)
MAX_QUOTA: Final = 10_000_000
#: Upper bound of every latency setting, in milliseconds.
MAX_LATENCY_MS: Final = 60_000


@dataclass(frozen=True)
class EmulatorConfig:
    quota_per_10s: int
    write_quota_per_150s: int = DEFAULT_WRITE_QUOTA_PER_150S
    latency_ms: int = 0
    #: Added to `$batch` requests only: the user list answers in time, profile reads do not.
    batch_latency_ms: int = 0
    #: Per-item latency of profile reads (SharePoint-backed $select), drawn from a log-normal
    #: with this median and p99; a median of 0 turns it off.
    profile_latency_median_ms: int = 0
    profile_latency_p99_ms: int = 0
    #: Share of Graph operations (requests or batch items) answered with an injected failure.
    failure_rate: float = 0.0
    failure_statuses: tuple[int, ...] = FAILURE_STATUSES
    #: Share of Graph HTTP requests whose connection is cut after the work is done.
    drop_rate: float = 0.0
    seed: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "quotaPer10s": self.quota_per_10s,
            "writeQuotaPer150s": self.write_quota_per_150s,
            "latencyMs": self.latency_ms,
            "batchLatencyMs": self.batch_latency_ms,
            "profileLatencyMedianMs": self.profile_latency_median_ms,
            "profileLatencyP99Ms": self.profile_latency_p99_ms,
            "failureRate": self.failure_rate,
            "failureStatuses": list(self.failure_statuses),
            "dropRate": self.drop_rate,
            "seed": self.seed,
        }

    @functools.cached_property
    def profile_latency(self) -> ProfileLatency | None:
        """The distribution profile reads are delayed by; None when they are not."""
        return ProfileLatency.fitted(self.profile_latency_median_ms, self.profile_latency_p99_ms)


# JSON name -> (attribute, minimum, maximum); all bounds inclusive.
_INT_FIELDS: Final[dict[str, tuple[str, int, int]]] = {
    "quotaPer10s": ("quota_per_10s", 0, MAX_QUOTA),
    "writeQuotaPer150s": ("write_quota_per_150s", 0, MAX_QUOTA),
    "latencyMs": ("latency_ms", 0, MAX_LATENCY_MS),
    "batchLatencyMs": ("batch_latency_ms", 0, MAX_LATENCY_MS),
    "profileLatencyMedianMs": ("profile_latency_median_ms", 0, MAX_LATENCY_MS),
    "profileLatencyP99Ms": ("profile_latency_p99_ms", 0, MAX_LATENCY_MS),
    "seed": ("seed", -(2**63), 2**63 - 1),
}
_RATE_FIELDS: Final = {"failureRate": "failure_rate", "dropRate": "drop_rate"}


def _failure_statuses(value: object) -> tuple[int, ...]:
    message = (
        "'failureStatuses' must be a non-empty list drawn from "
        + ", ".join(str(s) for s in FAILURE_STATUSES)
        + "."
    )
    if not isinstance(value, list) or not value:
        raise ConfigError("failureStatuses", message)
    statuses: list[int] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item not in FAILURE_STATUSES:
            raise ConfigError("failureStatuses", message)
        if item not in statuses:
            statuses.append(item)
    return tuple(statuses)


def updated_config(current: EmulatorConfig, body: object) -> EmulatorConfig:
    """Apply a partial update; raise ``ConfigError`` naming the first bad field."""
    if not isinstance(body, dict):
        raise ConfigError("body", "The request body must be a JSON object.")
    changes: dict[str, Any] = {}
    for name, value in body.items():
        if name in _INT_FIELDS:
            attr, low, high = _INT_FIELDS[name]
            # bool is an int subclass in Python but not a JSON integer.
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(name, f"'{name}' must be an integer.")
            if not low <= value <= high:
                raise ConfigError(name, f"'{name}' must be between {low} and {high}.")
            changes[attr] = value
        elif name in _RATE_FIELDS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(name, f"'{name}' must be a number.")
            if not 0.0 <= float(value) <= 1.0:
                raise ConfigError(name, f"'{name}' must be between 0 and 1.")
            changes[_RATE_FIELDS[name]] = float(value)
        elif name == "failureStatuses":
            changes["failure_statuses"] = _failure_statuses(value)
        else:
            raise ConfigError(name, f"Unknown configuration field '{name}'.")
    updated = dataclasses.replace(current, **changes)
    if updated.profile_latency_p99_ms < updated.profile_latency_median_ms:
        raise ConfigError(
            "profileLatencyP99Ms",
            f"'profileLatencyP99Ms' ({updated.profile_latency_p99_ms}) must be at least "
            f"'profileLatencyMedianMs' ({updated.profile_latency_median_ms}).",
        )
    return updated
