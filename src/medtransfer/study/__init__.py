"""Studies: the grid of strategies × training fractions × seeds, its durable store, summary and recommendation."""

from medtransfer.study.config import StudyConfig
from medtransfer.study.runner import Study, StudyInterrupted, Trial
from medtransfer.study.store import StoreError, StudyStore
from medtransfer.study.summary import StudySummary, summarize

__all__ = ["Study", "StudyConfig", "StudyInterrupted", "StudyStore", "StudySummary", "StoreError", "Trial", "summarize"]
