"""Results: the strategy comparison table, statistics, leakage checks, figures, Fréchet distance.

Submodules are imported on demand (``from brainaug.results.table import ...``) so that
importing one does not pull in matplotlib or scipy for the others. This is the last
layer of the pipeline: nothing else in the package imports it.
"""

from __future__ import annotations
