"""Experiment trackers: a study's (or a run's) trials as MLflow runs and TensorBoard curves.

Optional extras (``medtransfer[mlflow]``, ``medtransfer[tensorboard]``): this package imports neither library until
a tracker is opened. Trackers log from the study's own process, after the store has recorded a trial, so every
executor logs the same; a tracker that fails is reported once and then left out (:class:`Tracking`).
"""

from medtransfer.tracking.base import RunMemory, StudyFacts, StudyResults, Tracker, TrialFacts
from medtransfer.tracking.guard import Tracking
from medtransfer.tracking.spec import TRACKERS, TrackSpec, check_installed, open_trackers, parse_track

__all__ = ["TRACKERS", "RunMemory", "StudyFacts", "StudyResults", "TrackSpec", "Tracker", "Tracking", "TrialFacts",
           "check_installed", "open_trackers", "parse_track"]
