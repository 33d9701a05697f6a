"""Reports: figures and pages built from finished runs and studies."""

from medtransfer.report.figures import plot_training_curve

__all__ = ["plot_training_curve", "write_report"]


def __getattr__(name: str):
    # ``write_report`` is imported on first use: it needs the study package, which itself imports this package.
    if name == "write_report":
        from medtransfer.report.study_report import write_report

        return write_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
