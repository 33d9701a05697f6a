"""Trackers called so that none of them can stop or corrupt a study: a failure is reported once and that tracker
is left out from then on."""

from __future__ import annotations

from pathlib import Path

from medtransfer.tracking.base import StudyFacts, StudyResults, TrialFacts


class Tracking:
    """The trackers of a study or a run. ``warn`` prints one line (the runner's log)."""

    def __init__(self, trackers: list, warn=print):
        self.trackers = list(trackers)
        self.warn = warn
        self.started = False

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def _call(self, tracker, method: str, *args) -> None:
        try:
            getattr(tracker, method)(*args)
        except Exception as e:  # noqa: BLE001 - a tracker's failure, whatever it is, must not end the study
            self.trackers.remove(tracker)
            reason = " ".join(str(e).split())[:300] or type(e).__name__
            self.warn(f"warning: tracking with {tracker.label} failed ({reason}); the study goes "
                      f"on without it")

    def _each(self, method: str, *args) -> None:
        for tracker in list(self.trackers):
            self._call(tracker, method, *args)

    def start(self, study: StudyFacts, memory_for) -> None:
        """Once: open each tracker; ``memory_for(tracker.key)`` is that tracker's
        :class:`~medtransfer.tracking.base.RunMemory`."""
        if self.started:
            return
        self.started = True
        for tracker in list(self.trackers):
            self._call(tracker, "on_study_start", study, memory_for(tracker.key))

    def trial_done(self, trial: TrialFacts) -> None:
        self._each("on_trial_done", trial)

    def end(self, results: StudyResults) -> None:
        self._each("on_study_end", results)

    def artifacts(self, paths: list[Path]) -> None:
        self._each("on_artifacts", [Path(p) for p in paths if Path(p).exists()])
