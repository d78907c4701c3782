"""Cohorts: declarative course selection with its flow diagram, timepoint alignment and Table 1.

Examples
--------
>>> import kvarus_research as kr
>>> from kvarus_research.cohort import align_timepoints
>>> reg = kr.synthetic.generate(n_courses=200, seed=1)
>>> cohort = kr.Cohort(reg).has_baseline().ended()
>>> tp = align_timepoints(cohort)
>>> set(tp.long["course_id"]) <= set(cohort.courses["course_id"])
True
"""

from kvarus_research.cohort.builder import Cohort
from kvarus_research.cohort.timepoints import Timepoints, align_timepoints

__all__ = ["Cohort", "Timepoints", "align_timepoints", "table1", "Table1Result", "plot_flow"]


def __getattr__(name: str):  # noqa: ANN202 - lazy imports keep matplotlib/tableone off the import path
    if name in ("table1", "Table1Result"):
        import importlib

        module = importlib.import_module("kvarus_research.cohort.table1")
        # importing the submodule binds the package attribute `table1` to the module: rebind the function
        globals().update(table1=module.table1, Table1Result=module.Table1Result)
        return globals()[name]
    if name == "plot_flow":
        from kvarus_research.cohort.flow import plot_flow

        return plot_flow
    raise AttributeError(f"module 'kvarus_research.cohort' has no attribute {name!r}")
