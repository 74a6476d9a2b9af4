from __future__ import annotations

import os

import pytest

# GUI tests need a display (xvfb-run); without one they fail loudly rather than skip.
if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
    raise pytest.UsageError(
        "tests/napari needs a display: run the suite as `xvfb-run -a pytest` (see README)"
    )
