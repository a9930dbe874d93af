"""Durable run state (SQLite): versions, strategy state, accepted updates, boards, metrics."""

from ftte.store.sqlite import RunStore, StoredUpdate

__all__ = ["RunStore", "StoredUpdate"]
