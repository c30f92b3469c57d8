"""The retail database: an in-memory copy of tau2's `db.json`, with reset, hashing and persistence.

The raw file is never written. On load every record is normalised to the shape tau2's pydantic
models dump (orders carry all seven optional fields, money is a float), so the canonical JSON of a
store and of tau2's `RetailDB.model_dump()` are byte-identical for the same state.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("DEPUTY_SHARED_DIR", REPO.parent / "shared")) / "data"
RETAIL_DATA = SHARED_DATA / "tau2-bench" / "data" / "tau2" / "domains" / "retail"
DEFAULT_DB_PATH = RETAIL_DATA / "db.json"

ORDER_OPTIONAL_FIELDS = (
    "cancel_reason",
    "exchange_items",
    "exchange_new_items",
    "exchange_payment_method_id",
    "exchange_price_difference",
    "return_items",
    "return_payment_method_id",
)

DB = dict[str, Any]


def default_db_path() -> Path:
    """`$RETAIL_DB_PATH`, else tau2's retail `db.json` in the shared data folder."""
    configured = os.environ.get("RETAIL_DB_PATH")
    return Path(configured) if configured else DEFAULT_DB_PATH


def canonical_json(value: Any) -> str:
    """The one serialisation used for state comparison (same on tau2's side, see the oracle)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def sha256_of(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def _money(value: Any) -> Any:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def normalise(raw: DB) -> DB:
    """A deep copy of `raw` in tau2's dumped shape."""
    db = copy.deepcopy(raw)
    for key in ("products", "users", "orders"):
        if not isinstance(db.get(key), dict):
            raise ValueError(f"retail database has no {key!r} object")
    for product in db["products"].values():
        for variant in product["variants"].values():
            variant["price"] = _money(variant["price"])
    for user in db["users"].values():
        for method in user["payment_methods"].values():
            if "balance" in method:
                method["balance"] = _money(method["balance"])
    for order in db["orders"].values():
        for item in order["items"]:
            item["price"] = _money(item["price"])
        for payment in order["payment_history"]:
            payment["amount"] = _money(payment["amount"])
        if order.get("exchange_price_difference") is not None:
            order["exchange_price_difference"] = _money(order["exchange_price_difference"])
        for name in ORDER_OPTIONAL_FIELDS:
            order.setdefault(name, None)
    return db


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class RetailStore:
    """The live database. Tool functions read it under `reading()` and change it under `writing()`.

    `state_path`, when given, is where the state is saved (atomically) after every write and after
    `reset()`; if that file exists at start-up the store resumes from it, so a restart keeps state.
    """

    _data: DB
    _sha256: str | None

    def __init__(self, db_path: Path | str | None = None, state_path: Path | str | None = None):
        self.db_path = Path(db_path) if db_path is not None else default_db_path()
        self.state_path = Path(state_path) if state_path is not None else None
        with self.db_path.open(encoding="utf-8") as stream:
            initial = normalise(json.load(stream))
        self._setup(initial)
        if self.state_path is not None and self.state_path.exists():
            with self.state_path.open(encoding="utf-8") as stream:
                self._data = normalise(json.load(stream))
            self._sha256 = None

    def _setup(self, initial: DB) -> None:
        # The initial state is kept as JSON text: json.loads copies it faster than deepcopy.
        self._initial_json = json.dumps(initial)
        self._initial_sha256 = sha256_of(initial)
        self._data = initial
        self._sha256 = self._initial_sha256
        self._lock = threading.RLock()
        self.writes = 0

    @classmethod
    def from_data(cls, raw: DB) -> RetailStore:
        """A store over an in-memory database (no file, no persistence): handy in tests."""
        store = cls.__new__(cls)
        store.db_path = Path("<memory>")
        store.state_path = None
        store._setup(normalise(raw))
        return store

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lock across several tool calls (it is re-entrant)."""
        with self._lock:
            yield

    @contextmanager
    def reading(self) -> Iterator[DB]:
        """The live data, for reading only."""
        with self._lock:
            yield self._data

    @contextmanager
    def writing(self) -> Iterator[DB]:
        """Hold the lock while changing the data, then persist. Tool functions validate everything
        before their first change, so an error inside leaves the state untouched."""
        with self._lock:
            try:
                yield self._data
            finally:
                self._sha256 = None
            self.writes += 1
            self.save()

    def reset(self) -> None:
        with self._lock:
            self._data = json.loads(self._initial_json)
            self._sha256 = self._initial_sha256
            self.save()

    def snapshot(self) -> DB:
        """A deep copy of the whole database."""
        with self._lock:
            copied: DB = json.loads(json.dumps(self._data))
            return copied

    def state_json(self) -> str:
        """The whole database as JSON text (not canonical: keys in record order)."""
        with self._lock:
            return json.dumps(self._data)

    def canonical_json(self) -> str:
        with self._lock:
            return canonical_json(self._data)

    def sha256(self) -> str:
        """sha256 of `canonical_json()`: equal hashes mean equal states."""
        with self._lock:
            if self._sha256 is None:
                self._sha256 = hashlib.sha256(self.canonical_json().encode()).hexdigest()
            return self._sha256

    def save(self) -> None:
        if self.state_path is not None:
            with self._lock:
                _write_atomically(self.state_path, json.dumps(self._data))
