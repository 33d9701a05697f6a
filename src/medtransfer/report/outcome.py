"""How the ``study`` and ``report`` commands end: the results and the report, and an error when no trial finished.

A study whose every trial failed still gets its report (which trials failed, and why), but the command does not
end as if it had answered anything: it exits with code 2 and one line naming the failure.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medtransfer.console import stdout
from medtransfer.errors import MedTransferError
from medtransfer.report.page import write_report
from medtransfer.report.terminal import print_study
from medtransfer.study.store import StudyStore
from medtransfer.study.summary import complete_trials
from medtransfer.study.folder import StudyFolder


class NoTrialFinished(MedTransferError):
    """Every recorded trial of a study failed: there is no result, recommendation or model."""


def no_trial_finished(failed: pd.DataFrame, folder: Path, report: Path) -> NoTrialFinished:
    """The error for a study whose trials ``failed`` (strategy, fraction, seed, error) are all it recorded."""
    first = failed.iloc[0]
    reasons = failed.error.fillna("").astype(str).nunique()
    n, reason = len(failed), str(first.error or "no reason recorded").rstrip(". ")
    others = f"; {reasons - 1} other reason(s) among the rest" if reasons > 1 else ""
    failures = StudyFolder(folder).failures_log
    log = f", tracebacks in {failures}" if failures.is_file() else ""
    return NoTrialFinished(
        f"no trial finished: {'the' if n == 1 else 'all'} {n} trial{'' if n == 1 else 's'} of the study in {folder} "
        f"failed, so it has no result, recommendation or model. {first.strategy} · {first.fraction:.0%} · seed "
        f"{first.seed}: {reason}{others}. Every failed trial and its reason is in "
        f"{report}{log}. Fix the cause, then run the study again with --new-folder (failed trials are not run "
        f"again in this folder).")


def end_study(summary, folder: Path, on_report=None) -> None:
    """Print the study's results, write its report (handed to ``on_report``, e.g. the trackers), and raise
    :class:`NoTrialFinished` when no trial finished."""
    print_study(summary, folder, StudyFolder(folder).saved_names())
    report = write_report(folder)
    stdout.print(f"Report: {report}", markup=False, highlight=False)
    if on_report is not None:
        on_report(report)
    if summary.table.empty and len(summary.failed):
        raise no_trial_finished(summary.failed, Path(folder), report)


def report_study(folder: Path, *, show_filenames: bool = False) -> Path:
    """Write the study's report; raise :class:`NoTrialFinished` (once it is written) when no trial finished."""
    report = write_report(folder, show_filenames=show_filenames)
    stdout.print(f"Report: {report}", markup=False, highlight=False)
    trials = StudyStore(folder).trials()
    failed = trials[trials.status == "failed"] if len(trials) else trials
    if len(failed) and not len(complete_trials(trials)):
        raise no_trial_finished(failed, Path(folder), report)
    return report
