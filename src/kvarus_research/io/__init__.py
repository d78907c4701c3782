"""Reading and validating MRS extracts, completeness, and export for SPSS/Stata users.

``read_extract(folder)`` returns a :class:`~kvarus_research.Registry` whose ``validation`` attribute is a
:class:`ValidationReport`: every row read is either in the registry or rejected with a finding.
"""

from kvarus_research.io.completeness import completeness, course_completeness
from kvarus_research.io.csv import FileProblem
from kvarus_research.io.export import export_table
from kvarus_research.io.read import read_extract, read_table
from kvarus_research.io.validate import ValidationReport

__all__ = [
    "FileProblem",
    "ValidationReport",
    "completeness",
    "course_completeness",
    "export_table",
    "read_extract",
    "read_table",
]
