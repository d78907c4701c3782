"""The HTML report: the main job (``kvarus-research report``)."""

from kvarus_research.report.build import build_report
from kvarus_research.report.writer import ReportWriter

__all__ = ["ReportWriter", "build_report"]
