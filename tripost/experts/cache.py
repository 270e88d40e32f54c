"""A persistent cache of expert replies (sqlite3), so a repeated run makes no API calls.

The key is the sha256 of the canonical JSON of the whole request: endpoint kind, model,
messages or prompt, temperature, max_tokens, stop and anything else sent. The API key and
the base URL are not part of it (the same request to a proxy and to the API is the same
question), and the key is never stored.

Modes:
- ``readwrite`` (default): hits are served, misses go to the API and are stored;
- ``readonly``: exact replays; a miss raises ``CacheMiss``. It is deliberately *not* an
  ExpertError: an ExpertError only drops one trajectory and the run goes on, while a replay
  that is not exact should stop loudly instead of silently producing a different run;
- ``off``: no file is read or written.

Only usable replies are stored (the expert stores a reply after it parsed it): a garbage,
empty or refused reply drops its trajectory in the run that got it, and a rerun asks again
instead of losing the same trajectory for good. Such a reply is paid for again, which is
cheaper than a trajectory lost in every rerun. ``discard`` removes an unusable reply that an
older version stored. Delete the file (or use another path) to ask everything again.

One connection (``check_same_thread=False``) serves all threads, guarded by a lock; WAL lets
another process read the file while a run writes it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODES = ("readwrite", "readonly", "off")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    reply TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


class CacheMiss(RuntimeError):
    """A readonly cache has no reply for a request: the run is not an exact replay."""


@dataclass(frozen=True)
class CachedReply:
    text: str
    prompt_tokens: int
    completion_tokens: int


def canonical_json(request: dict[str, Any]) -> str:
    """One text per request, whatever the order of its keys."""
    return json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(request: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(request).encode("utf-8")).hexdigest()


class ReplyCache:
    """Replies by request; ``lookup`` and ``store`` are safe from any thread."""

    def __init__(self, path: str | Path | None, mode: str = "readwrite"):
        if mode not in MODES:
            raise ValueError(f"cache mode must be one of {list(MODES)}, got {mode!r}")
        if mode != "off" and not path:
            raise ValueError(f"cache mode {mode!r} needs a cache path")
        self.path = Path(path) if path else None
        self.mode = mode
        self._lock = threading.Lock()
        self._conn = self._connect()

    def _connect(self) -> sqlite3.Connection | None:
        if self.mode == "off":
            return None
        if self.mode == "readonly":
            if not self.path.is_file():
                return None  # nothing cached yet: every lookup misses
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            return sqlite3.connect(uri, uri=True, check_same_thread=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        conn.commit()
        return conn

    def lookup(self, request: dict[str, Any]) -> CachedReply | None:
        """The stored reply, or None (mode readwrite or off); a miss in readonly mode raises CacheMiss."""
        if self.mode == "off":
            return None
        key = request_key(request)
        row = None
        if self._conn is not None:
            with self._lock:
                row = self._conn.execute(
                    "SELECT reply, prompt_tokens, completion_tokens FROM replies WHERE key = ?", (key,)
                ).fetchone()
        if row is None:
            if self.mode == "readonly":
                raise CacheMiss(
                    f"expert cache {self.path} (mode readonly) has no reply for this {request.get('role', '')} request "
                    f"(model {request.get('model')!r}, key {key[:12]}); set verifier.cache.mode=readwrite to call the API"
                )
            return None
        return CachedReply(row[0], int(row[1]), int(row[2]))

    def store(self, request: dict[str, Any], reply: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Keep a reply (readwrite mode only; the first stored reply of a request wins)."""
        if self.mode != "readwrite" or self._conn is None:
            return
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO replies VALUES (?, ?, ?, ?, ?, ?)",
                (request_key(request), canonical_json(request), reply, prompt_tokens, completion_tokens, time.time()),
            )
            self._conn.commit()

    def discard(self, request: dict[str, Any]) -> None:
        """Forget the reply of a request (readwrite mode only), so that it is asked again."""
        if self.mode != "readwrite" or self._conn is None:
            return
        with self._lock:
            self._conn.execute("DELETE FROM replies WHERE key = ?", (request_key(request),))
            self._conn.commit()

    def __len__(self) -> int:
        if self._conn is None:
            return 0
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"ReplyCache(path={str(self.path) if self.path else None!r}, mode={self.mode!r})"
