"""Imported first by every rule script: puts the cifarflow package (in ``workflow/``) on the import path and hides
the GPUs, so that no stage holds one unless it claims a share of it (training)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cifarflow.backend import hide_gpus  # noqa: E402

hide_gpus()
