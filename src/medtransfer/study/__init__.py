"""Studies: the grid of strategies × training fractions × seeds, its durable store, summary and recommendation."""

from medtransfer.study.config import StudyConfig
from medtransfer.study.folder import StudyFolder
from medtransfer.study.runner import Study
from medtransfer.study.store import StoreError, StudyStore
from medtransfer.study.summary import StudySummary, summarize
from medtransfer.study.trial_loop import StudyInterrupted
from medtransfer.study.trial_plan import Trial

__all__ = ["Study", "StudyConfig", "StudyFolder", "StudyInterrupted", "StudyStore", "StudySummary", "StoreError",
           "Trial", "summarize"]
