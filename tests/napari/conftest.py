from __future__ import annotations

import os

import pytest

# GUI tests need a display (xvfb-run); without one they fail loudly rather than skip.
if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
    raise pytest.UsageError(
        "tests/napari needs a display: run the suite as `xvfb-run -a pytest` (see README)"
    )


# Qt/vispy sometimes crash in native static destructors *after* the whole session has finished
# and reported (about 1 run in 8 here: "Segmentation fault" with no Python frame, exit 139).
# Once pytest has printed its summary, leave the process directly with pytest's own exit
# status instead of running that teardown. Test results are unaffected.
_exit_status: list[int] = []


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    _exit_status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    import os
    import sys

    if _exit_status:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[-1])
