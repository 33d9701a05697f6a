"""``--track`` values: ``mlflow``, ``mlflow=URI`` and ``tensorboard``, parsed and turned into trackers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medtransfer.errors import ConfigError

TRACKERS = ("mlflow", "tensorboard")


@dataclass(frozen=True)
class TrackSpec:
    kind: str  # mlflow or tensorboard
    uri: str | None = None  # mlflow: a tracking URI (default: a SQLite file in the study folder)


def parse_track(values, where: str = "--track") -> list[TrackSpec]:
    """``["mlflow=http://host:5000", "tensorboard"]`` (or one string) as specs; a bad value is a ConfigError."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise ConfigError(f"{where} {values!r}: give mlflow, mlflow=URI or tensorboard (a list for several)")
    specs = []
    for value in values:
        kind, sep, uri = str(value).partition("=")
        kind = kind.strip().lower()
        if kind not in TRACKERS or (sep and (kind != "mlflow" or not uri.strip())):
            raise ConfigError(f"{where} {value!r}: give mlflow, mlflow=URI (e.g. mlflow=http://localhost:5000) or "
                              f"tensorboard")
        specs.append(TrackSpec(kind, uri.strip() or None))
    return list(dict.fromkeys(specs))


def default_mlflow_uri(folder: Path) -> str:
    """A SQLite store in ``folder``: MLflow 3 deprecated its file store, and a local database needs no server."""
    return f"sqlite:///{(Path(folder) / 'mlflow.db').resolve()}"


def check_installed(specs: list[TrackSpec]) -> None:
    """A ConfigError saying what to install when a tracker's library is missing (before any training)."""
    import importlib.util

    for spec in specs:
        if importlib.util.find_spec(spec.kind) is None:
            raise ConfigError(f"--track {spec.kind}: the {spec.kind} package is not installed; install it with "
                              f"pip install 'medtransfer[{spec.kind}]'")


def open_trackers(specs: list[TrackSpec], folder: Path) -> list:
    """The trackers of ``specs`` for the study (or run) folder ``folder``."""
    trackers = []
    for spec in specs:
        if spec.kind == "mlflow":
            from medtransfer.tracking.mlflow import MlflowTracker

            trackers.append(MlflowTracker(spec.uri or default_mlflow_uri(folder)))
        else:
            from medtransfer.tracking.tensorboard import TensorBoardTracker

            trackers.append(TensorBoardTracker())
    return trackers
