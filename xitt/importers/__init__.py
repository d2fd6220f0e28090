"""`xitt import`: other people's results into the scores.csv contract.

* ``tidy``: a tidy CSV with the scores.csv columns (the rest filled from the task registry);
* ``jiant``: jiant 1.x (``results.tsv``) and 2.x (``val_metrics.json``) run folders;
* ``xtreme``: XTREME submission folders (``evaluate.py``'s layout), scored with xitt's metrics;
* ``duplicates``: repeated runs of one cell, resolved only by ``--on-duplicate last|mean|error``.
"""

from xitt.importers.duplicates import CHOICES as DUPLICATE_CHOICES
from xitt.importers.jiant import import_jiant
from xitt.importers.tidy import import_csv
from xitt.importers.xtreme import import_xtreme

__all__ = ["DUPLICATE_CHOICES", "import_csv", "import_jiant", "import_xtreme"]
