"""The synthetic Kvarus registry: ``generate()`` with known ground truth, ``write_extract()`` MRS-format folders.

Examples
--------
>>> import kvarus_research as kr
>>> reg = kr.synthetic.generate(n_courses=100, seed=1)
>>> len(reg.courses)
100
"""

from kvarus_research.synthetic.generate import generate
from kvarus_research.synthetic.writer import write_extract

__all__ = ["generate", "write_extract"]
