"""Graph as slow as a real tenant's, set on the emulator for a benchmark.

    model = realistic_latency(admin)   # admin: an httpx.Client on the emulator
    model.describe()                   # "profile reads 300 ms median, 1,500 ms p99 per item"

SharePoint-backed profile properties are slow to read in a real tenant: each
item of a `$batch` answers after its own latency and the batch after its
slowest item. The emulator models that with a per-item distribution (median
and p99). An emulator without that model refuses the keys (400, unknown
field); then every `$batch` is delayed by a fixed second instead, and the
workload text says which model was used.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

__all__ = ["L_TIER_QUOTA", "LatencyModel", "realistic_latency"]

# Graph's identity-and-access quota for a tenant above 500 users (resource units per 10 s).
L_TIER_QUOTA = 8_000
PROFILE_MEDIAN_MS = 300
PROFILE_P99_MS = 1_500
# The fallback: every `$batch` answers after this long.
BATCH_LATENCY_MS = 1_000


@dataclass(frozen=True)
class LatencyModel:
    per_item: bool

    def describe(self) -> str:
        if self.per_item:
            return (
                f"profile reads {PROFILE_MEDIAN_MS:,} ms median, {PROFILE_P99_MS:,} ms p99 per item"
            )
        return f"every $batch {BATCH_LATENCY_MS:,} ms (no per-item latency in this emulator)"


def realistic_latency(admin: httpx.Client) -> LatencyModel:
    """Sets the emulator's latency (per item where it can) and the L-tier quota."""
    admin.put("/_emulator/config", json={"quotaPer10s": L_TIER_QUOTA}).raise_for_status()
    response = admin.put(
        "/_emulator/config",
        json={"profileLatencyMedianMs": PROFILE_MEDIAN_MS, "profileLatencyP99Ms": PROFILE_P99_MS},
    )
    if response.status_code == 400 and "Unknown configuration field" in response.text:
        admin.put("/_emulator/config", json={"batchLatencyMs": BATCH_LATENCY_MS}).raise_for_status()
        return LatencyModel(per_item=False)
    response.raise_for_status()
    return LatencyModel(per_item=True)
