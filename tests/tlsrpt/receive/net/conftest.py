"""The network intake's tests share helpers in receive_net_support.py (importable here)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
