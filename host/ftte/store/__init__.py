"""Durable run state (SQLite): versions, strategy state, accepted updates, boards,
selections of w*, metrics."""

from ftte.store.sqlite import RunStore, SelectionRecord, StoredUpdate

__all__ = ["RunStore", "SelectionRecord", "StoredUpdate"]
