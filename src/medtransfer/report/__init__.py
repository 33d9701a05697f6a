"""Reports: a study's self-contained HTML page, its figures and the answers in words."""

from medtransfer.report.page import build_figures, write_report
from medtransfer.study.folder import REPORT as REPORT_NAME

__all__ = ["REPORT_NAME", "build_figures", "write_report"]
