"""Reports: a study's self-contained HTML page, its figures and the answers in words."""

from medtransfer.report.page import REPORT_NAME, build_figures, write_report

__all__ = ["REPORT_NAME", "build_figures", "write_report"]
