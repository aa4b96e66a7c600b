"""Fixtures of the recorder tests."""

from __future__ import annotations

import sys
from pathlib import Path

# tests/ is not a package; share the deliverer's builders as tests.deliverer.helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
