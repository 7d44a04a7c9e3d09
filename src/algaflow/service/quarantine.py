"""Stored records the live pipeline cannot use: kept in the store as they are, listed here with the reason,
skipped by the estimator, shown to an admin (``GET /api/v1/quarantine``, the dashboard's alarms page).

What lands here (each a :class:`QuarantinedItem`): an event whose parameters or time the event table refuses
(catalog.events, catalog.frames.checked_time), readings whose value is not finite or whose time lies outside
[2000-01-01, now + 5 min], a unit whose registered metadata cannot be read (its defaults are used), a saved
pipeline state that cannot be loaded (everything is replayed instead), and a batch on which the pipeline
failed (the error). A record found again (the same unit, what, kind, time and reason: a replay after a
restart) is not listed twice. The list is saved in the store's state table under ``quarantine``; it keeps the
newest ``MAX_ITEMS`` and counts all.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass

from algaflow.store import Store

log = logging.getLogger("algaflow.pipeline")
STATE_NAME = "quarantine"
MAX_ITEMS = 1000
MAX_DETAIL = 500  # characters of a record shown beside the reason


@dataclass(frozen=True, slots=True)
class QuarantinedItem:
    """One record set aside: whose (``unit_id``), what (``event``, ``readings``, ``metadata``, ``state``,
    ``batch``), its kind or sensor, its time (µs since the epoch; 0 where it has none), why, and what it held."""

    unit_id: str
    what: str
    kind: str
    time_us: int
    reason: str
    detail: str = ""
    noticed_us: int = 0  # wall-clock time it was set aside

    def key(self) -> tuple:
        return self.unit_id, self.what, self.kind, self.time_us, self.reason


class Quarantine:
    """The list of the module doc, saved in ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._items: list[QuarantinedItem] = []
        self._keys: set[tuple] = set()
        self.total = 0
        self._load()

    def _load(self) -> None:
        try:
            blob = self.store.load_state(STATE_NAME)
            saved = json.loads(blob.decode()) if blob else {}
            self._items = [QuarantinedItem(**item) for item in saved.get("items", [])][-MAX_ITEMS:]
            self.total = int(saved.get("total", len(self._items)))
        except Exception as error:  # a damaged list must not stop the service: start a new one, say so
            log.warning("the saved quarantine list could not be read (%s); starting a new one", error)
            self._items, self.total = [], 0
        self._keys = {item.key() for item in self._items}

    def add(self, unit_id: str, what: str, kind: str, time_us: int, reason: str, detail: str = "") -> bool:
        """Set a record aside (module doc); False when it was already listed."""
        item = QuarantinedItem(str(unit_id)[:64], what, str(kind)[:64], int(time_us), reason[:MAX_DETAIL],
                               detail[:MAX_DETAIL], int(time.time() * 1e6))  # fmt: skip
        with self._lock:
            if item.key() in self._keys:
                return False
            self._items.append(item)
            self._keys.add(item.key())
            self.total += 1
            if len(self._items) > MAX_ITEMS:
                dropped = self._items.pop(0)
                self._keys.discard(dropped.key())
            payload = json.dumps({"total": self.total, "items": [asdict(i) for i in self._items]}).encode()
        log.warning("quarantined %s %s of unit %s at %d: %s", what, kind, unit_id, time_us, reason)
        try:
            self.store.save_state(STATE_NAME, payload)
        except Exception:  # the store is down: the item stays listed in memory and is saved with the next one
            log.exception("could not save the quarantine list")
        return True

    def items(self, unit_id: str | None = None) -> list[QuarantinedItem]:
        """The listed items, oldest first (of one unit, or all)."""
        with self._lock:
            return [item for item in self._items if unit_id is None or item.unit_id == unit_id]


__all__ = ["MAX_ITEMS", "Quarantine", "QuarantinedItem"]
