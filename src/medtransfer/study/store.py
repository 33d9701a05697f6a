"""The study's durable record: one SQLite file in the study folder, written trial by trial.

Each finished trial is one transaction (status, metrics, curve, per-case records), so a run killed at any moment
loses at most the trial in flight. The file also holds the configuration and its hash, the task, the package versions,
the device and the example test images the report shows. A damaged file is reported, never overwritten.

Per-case records are task-neutral: each trial stores named columns, one entry per test case, as its task fills
them (probabilities and targets, a per-image Dice, …), and since schema 3 the same columns for its validation cases,
which the recommendation's uncertainty is computed from (the test split is never used to choose). Stores of schema 1 kept a ``targets`` and a ``probs`` array per
trial instead; they are read as they are (the task says what those arrays meant) and gain the new tables when a
study resumes into them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd

from medtransfer.errors import MedTransferError
from medtransfer.study.folder import StudyFolder

SCHEMA_VERSION = 3

#: each trial's run in an experiment tracker (MLflow, TensorBoard); a store without it gains it on first use
_TRACKED = """CREATE TABLE IF NOT EXISTS tracked (
    tracker TEXT NOT NULL,
    key TEXT NOT NULL,
    run_id TEXT NOT NULL,
    complete INTEGER NOT NULL,
    PRIMARY KEY (tracker, key)
);"""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id TEXT PRIMARY KEY,
    strategy TEXT NOT NULL,
    fraction REAL NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    val_score REAL,
    test_metrics TEXT,
    best_epoch INTEGER,
    epochs_run INTEGER,
    stopped TEXT,
    train_size INTEGER,
    trainable_parameters INTEGER,
    seconds REAL,
    device TEXT,
    error TEXT,
    finished REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS curves (
    trial_id TEXT NOT NULL REFERENCES trials(id),
    epoch INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (trial_id, epoch)
);
CREATE TABLE IF NOT EXISTS cases (
    trial_id TEXT PRIMARY KEY REFERENCES trials(id),
    samples TEXT NOT NULL,
    columns TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS val_cases (
    trial_id TEXT PRIMARY KEY REFERENCES trials(id),
    samples TEXT NOT NULL,
    columns TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, value BLOB NOT NULL);
""" + _TRACKED
#: schema 1's per-trial predictions, read by :meth:`StudyStore.cases` when a trial has no ``cases`` row
_LEGACY_TABLE = "predictions"


class StoreError(MedTransferError):
    """The study database is damaged, foreign or was made for another configuration."""


def trial_id(strategy: str, fraction: float, seed: int) -> str:
    return f"{strategy}|{fraction:g}|{seed}"


class StudyStore:
    """Read and write a study's SQLite file."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = StudyFolder(self.folder).store_file

    # -- connection --------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            return conn
        except sqlite3.DatabaseError as e:
            raise self._damaged(e) from None
        except OSError as e:
            raise StoreError(f"{self.path}: cannot open ({e.strerror}); is the study folder writable?") from None

    def _damaged(self, e: Exception) -> StoreError:
        return StoreError(
            f"{self.path}: the study database is damaged or not a medtransfer study ({e}). It was left untouched; "
            f"move it away to start over, or run the study into a new folder."
        )

    def _run(self, fn):
        try:
            with closing(self._connect()) as conn:
                with conn:  # one transaction
                    return fn(conn)
        except sqlite3.OperationalError as e:
            text = str(e)
            if "disk" in text or "full" in text or "readonly" in text or "unable to open" in text:
                raise StoreError(f"{self.path}: cannot write ({text}); nothing finished was lost. Free disk space "
                                 f"or make the folder writable, then rerun the same command to resume.") from None
            raise self._damaged(e) from None
        except sqlite3.DatabaseError as e:
            raise self._damaged(e) from None

    # -- meta --------------------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.path.is_file()

    def check(self) -> None:
        """Raise :class:`StoreError` if the file is not a sound medtransfer study database."""
        def probe(conn):
            ok = conn.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise sqlite3.DatabaseError(ok)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"meta", "trials", "curves"} <= tables or not ({"cases", _LEGACY_TABLE} & tables):
                raise sqlite3.DatabaseError(f"tables {sorted(tables)} are not a study's")
        self._run(probe)

    def create(self, config: dict, config_hash: str, environment: dict) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"{self.folder}: cannot create the study folder ({e.strerror})") from None

        def init(conn):
            conn.executescript(_SCHEMA)
            rows = {
                "schema_version": str(SCHEMA_VERSION),
                "config": json.dumps(config, sort_keys=True),
                "config_hash": config_hash,
                "environment": json.dumps(environment),
                "created": str(time.time()),
            }
            conn.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)", rows.items())
        self._run(init)

    def upgrade(self) -> None:
        """Bring a store of an older schema up to this one: new tables are added, old rows are left as they are."""
        def up(conn):
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self._run(up)

    def meta(self) -> dict:
        rows = self._run(lambda c: c.execute("SELECT key, value FROM meta").fetchall())
        return dict(rows)

    def set_meta(self, key: str, value) -> None:
        self._run(lambda c: c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value))))

    def config(self) -> dict:
        return json.loads(self.meta()["config"])

    def set_config(self, config: dict, config_hash: str) -> None:
        """Replace the stored configuration and its hash (as :meth:`create` wrote them)."""
        self._run(lambda c: c.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
            ("config", json.dumps(config, sort_keys=True)), ("config_hash", config_hash)]))

    # -- trials ------------------------------------------------------------------------------------------
    def finished_ids(self) -> set[str]:
        return {r[0] for r in self._run(lambda c: c.execute("SELECT id FROM trials").fetchall())}

    def record(self, *, strategy: str, fraction: float, seed: int, status: str, val_score: float | None = None,
               test_metrics: dict | None = None, best_epoch: int | None = None, epochs_run: int | None = None,
               stopped: str | None = None, train_size: int | None = None, trainable_parameters: int | None = None,
               seconds: float | None = None, device: str | None = None, error: str | None = None,
               history: list[dict] | None = None, samples: np.ndarray | None = None,
               cases: dict[str, np.ndarray] | None = None, val_samples: np.ndarray | None = None,
               val_cases: dict[str, np.ndarray] | None = None) -> None:
        """Write one finished (or failed) trial, all or nothing. ``cases``: the per-case columns of the test cases
        ``samples``; ``val_cases``: those of the validation cases ``val_samples``."""
        tid = trial_id(strategy, fraction, seed)

        def write(conn):
            conn.execute(
                "INSERT OR REPLACE INTO trials VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (tid, strategy, fraction, seed, status, _num(val_score), json.dumps(test_metrics) if test_metrics else None,
                 best_epoch, epochs_run, stopped, train_size, trainable_parameters, seconds, device, error, time.time()),
            )
            conn.execute("DELETE FROM curves WHERE trial_id = ?", (tid,))
            conn.executemany("INSERT INTO curves VALUES (?,?,?)",
                             [(tid, h["epoch"], json.dumps(h)) for h in history or []])
            for table, idx, columns in (("cases", samples, cases), ("val_cases", val_samples, val_cases)):
                conn.execute(f"DELETE FROM {table} WHERE trial_id = ?", (tid,))
                if columns is not None:
                    conn.execute(f"INSERT INTO {table} VALUES (?,?,?)",
                                 (tid, json.dumps(np.asarray(idx).tolist()),
                                  json.dumps({k: _column(v) for k, v in columns.items()})))
        self._run(write)

    def trials(self) -> pd.DataFrame:
        """One row per recorded trial, test metrics flattened to ``test_<metric>`` (+ ``_low``/``_high``)."""
        rows = self._run(lambda c: c.execute("SELECT * FROM trials ORDER BY finished").fetchall())
        cols = ["id", "strategy", "fraction", "seed", "status", "val_score", "test_metrics", "best_epoch", "epochs_run",
                "stopped", "train_size", "trainable_parameters", "seconds", "device", "error", "finished"]
        df = pd.DataFrame(rows, columns=cols)
        for i, m in enumerate(df["test_metrics"]):
            for name, v in (json.loads(m) if m else {}).items():
                df.loc[i, f"test_{name}"] = v["value"]
                df.loc[i, f"test_{name}_low"] = v["ci_low"]
                df.loc[i, f"test_{name}_high"] = v["ci_high"]
        return df.drop(columns=["test_metrics"])

    def curves(self) -> pd.DataFrame:
        rows = self._run(lambda c: c.execute("SELECT trial_id, record FROM curves ORDER BY trial_id, epoch").fetchall())
        return pd.DataFrame([{"trial_id": t, **json.loads(r)} for t, r in rows])

    def histories(self) -> dict[str, list[dict]]:
        """trial id → its epoch records as the trainer wrote them (a record has only the fields it was given)."""
        rows = self._run(lambda c: c.execute("SELECT trial_id, record FROM curves ORDER BY trial_id, epoch").fetchall())
        out: dict[str, list[dict]] = {}
        for t, r in rows:
            out.setdefault(t, []).append(json.loads(r))
        return out

    def cases(self, tid: str, legacy=None) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """(sample indices, per-case columns) of one trial's test split, or ``None``. A schema-1 record is turned
        into columns by ``legacy(targets, probs)`` (:func:`medtransfer.compat.schema1_columns`)."""
        def read(c):
            row = c.execute("SELECT samples, columns FROM cases WHERE trial_id = ?", (tid,)).fetchone() \
                if _has_table(c, "cases") else None
            if row is not None:
                return np.asarray(json.loads(row[0])), {k: np.asarray(v) for k, v in json.loads(row[1]).items()}
            if legacy is None or not _has_table(c, _LEGACY_TABLE):
                return None
            old = c.execute(f"SELECT samples, targets, probs FROM {_LEGACY_TABLE} WHERE trial_id = ?", (tid,)).fetchone()
            if old is None:
                return None
            samples, targets, probs = (np.asarray(json.loads(x)) for x in old)
            return samples, legacy(targets, probs)
        return self._run(read)

    def val_cases(self, tid: str) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """(sample indices, per-case columns) of one trial's validation split; ``None`` for a trial recorded before
        schema 3 (or a failed one)."""
        def read(c):
            if not _has_table(c, "val_cases"):
                return None
            row = c.execute("SELECT samples, columns FROM val_cases WHERE trial_id = ?", (tid,)).fetchone()
            return None if row is None else (np.asarray(json.loads(row[0])),
                                             {k: np.asarray(v) for k, v in json.loads(row[1]).items()})
        return self._run(read)

    def put_blob(self, key: str, value: bytes) -> None:
        self._run(lambda c: c.execute("INSERT OR REPLACE INTO blobs VALUES (?, ?)", (key, sqlite3.Binary(value))))

    def blob(self, key: str) -> bytes | None:
        def read(c):
            if not _has_table(c, "blobs"):
                return None
            row = c.execute("SELECT value FROM blobs WHERE key = ?", (key,)).fetchone()
            return None if row is None else bytes(row[0])
        return self._run(read)


    # -- experiment trackers -----------------------------------------------------------------------------
    def tracked(self, tracker: str) -> dict[str, tuple[str, bool]]:
        """key (a trial id, or the study's own) → (its run id in ``tracker``, whether it was logged in full), so
        that a resumed study continues its runs instead of logging them again."""
        def read(c):
            if not _has_table(c, "tracked"):
                return {}
            rows = c.execute("SELECT key, run_id, complete FROM tracked WHERE tracker = ?", (tracker,)).fetchall()
            return {k: (r, bool(done)) for k, r, done in rows}
        return self._run(read)

    def set_tracked(self, tracker: str, key: str, run_id: str, complete: bool) -> None:
        def write(c):
            c.execute(_TRACKED)
            c.execute("INSERT OR REPLACE INTO tracked VALUES (?, ?, ?, ?)", (tracker, key, run_id, int(complete)))
        self._run(write)


def _has_table(conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None


def _column(values) -> list:
    a = np.asarray(values)
    return np.round(a.astype(float), 6).tolist() if a.dtype.kind == "f" else a.tolist()


def _num(v):
    return None if v is None or (isinstance(v, float) and not np.isfinite(v)) else float(v)
