"""The one line a study prints per trial as it finishes, pauses or fails: plain text (the console colours the
leading mark, :func:`medtransfer.console.log_line`), so names and reasons are shown as they are.

A trial that failed, however it failed (an exception, a loss that became non-finite, a worker that died), is marked
✗ with its reason, never ✓: the line is chosen from the trial's recorded status, not from how its work returned.
"""

from __future__ import annotations


def failed_line(label: str, reason: str) -> str:
    """``✗ full · 100% · seed 0: failed: <reason>``."""
    return f"✗ {label}: failed: {reason}"


def paused_line(label: str, rung: int, epoch: int, epochs: int, metric_label: str, val: float, seconds: float) -> str:
    """A successive-halving trial saved at its rung, to resume or to be tested where it stopped."""
    return (f"⏸ {label}: at rung {rung} (epoch {epoch} of {epochs}), val {metric_label} "
            f"{val:.3f}, {seconds:.0f} s so far")


def finished_line(label: str, record: dict, metric, *, stopped_at_rung: int | None = None) -> str:
    """The line of a trial that trained: ✗ when its record says it failed (e.g. it diverged), ✂ when successive
    halving stopped it at a rung, else ✓, with its test and validation scores."""
    if record.get("status") == "failed":
        return failed_line(label, str(record.get("error") or "no reason recorded"))
    test = (f"test {metric.label} {record['test_metrics'][metric.name]['value']:.3f}, "
            f"val {metric.label} {record['val_score']:.3f}")
    epochs, seconds = record["epochs_run"], record["seconds"]
    if stopped_at_rung is not None:
        return (f"✂ {label}: stopped at rung {stopped_at_rung} (epoch {epochs}), {test}, "
                f"{seconds:.0f} s")
    return f"✓ {label}: {test}, {epochs} epochs, {seconds:.0f} s"
