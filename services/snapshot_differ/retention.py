"""Retention: which snapshots of a shard to keep.

    removed = prune_snapshots(store, prefix, keep=10, protect={"<run id>", ...})

Keeps the newest `keep` snapshots that have a manifest, plus the protected
ones (the one LATEST names, a held run's, the running run's). Removes the
rest, including the parts of runs that died before writing their manifest.
Run ids sort by start time, so "newest" is "greatest id".
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from services.snapshot_differ.object_store import ObjectStore

__all__ = ["prune_snapshots"]

log = logging.getLogger(__name__)


def prune_snapshots(
    store: ObjectStore, prefix: str, *, keep: int, protect: Collection[str] = ()
) -> list[str]:
    """Removes old snapshots under `prefix`; returns the run ids removed."""
    runs = store.children(prefix)
    complete = [run for run in runs if store.get(f"{prefix}/{run}/manifest.json") is not None]
    kept = set(complete[-keep:] if keep > 0 else []) | set(protect)
    removed = []
    for run in runs:
        if run in kept:
            continue
        store.delete_prefix(f"{prefix}/{run}")
        removed.append(run)
    if removed:
        log.info("removed %d old snapshot(s)", len(removed), extra={"runs": removed[:20]})
    return removed
