"""The study's durable record: one SQLite file in the study folder, written trial by trial.

Each finished trial is one transaction (status, metrics, curve, predictions), so a run killed at any moment loses at
most the trial in flight. The file also holds the configuration and its hash, the package versions and the device.
A damaged file is reported, never overwritten.
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

DB_NAME = "study.sqlite"
SCHEMA_VERSION = 1

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
CREATE TABLE IF NOT EXISTS predictions (
    trial_id TEXT PRIMARY KEY REFERENCES trials(id),
    samples TEXT NOT NULL,
    targets TEXT NOT NULL,
    probs TEXT NOT NULL
);
"""


class StoreError(MedTransferError):
    """The study database is damaged, foreign or was made for another configuration."""


def trial_id(strategy: str, fraction: float, seed: int) -> str:
    return f"{strategy}|{fraction:g}|{seed}"


class StudyStore:
    """Read and write a study's SQLite file."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME

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
            if not {"meta", "trials", "curves", "predictions"} <= tables:
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

    def meta(self) -> dict:
        rows = self._run(lambda c: c.execute("SELECT key, value FROM meta").fetchall())
        return dict(rows)

    def set_meta(self, key: str, value) -> None:
        self._run(lambda c: c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value))))

    def config(self) -> dict:
        return json.loads(self.meta()["config"])

    # -- trials ------------------------------------------------------------------------------------------
    def finished_ids(self) -> set[str]:
        return {r[0] for r in self._run(lambda c: c.execute("SELECT id FROM trials").fetchall())}

    def record(self, *, strategy: str, fraction: float, seed: int, status: str, val_score: float | None = None,
               test_metrics: dict | None = None, best_epoch: int | None = None, epochs_run: int | None = None,
               stopped: str | None = None, train_size: int | None = None, trainable_parameters: int | None = None,
               seconds: float | None = None, device: str | None = None, error: str | None = None,
               history: list[dict] | None = None, samples: np.ndarray | None = None,
               targets: np.ndarray | None = None, probs: np.ndarray | None = None) -> None:
        """Write one finished (or failed) trial, all or nothing."""
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
            if probs is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO predictions VALUES (?,?,?,?)",
                    (tid, json.dumps(np.asarray(samples).tolist()), json.dumps(np.asarray(targets).tolist()),
                     json.dumps(np.round(np.asarray(probs, dtype=float), 6).tolist())),
                )
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

    def predictions(self, tid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(sample indices, targets, probabilities) on the test split for one trial."""
        row = self._run(lambda c: c.execute("SELECT samples, targets, probs FROM predictions WHERE trial_id = ?",
                                            (tid,)).fetchone())
        if row is None:
            return None
        return tuple(np.asarray(json.loads(x)) for x in row)  # type: ignore[return-value]


def _num(v):
    return None if v is None or (isinstance(v, float) and not np.isfinite(v)) else float(v)
