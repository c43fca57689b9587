"""Running a child process as a user whom POSIX permission bits bind (for tests of
read-only folders and files)."""

from __future__ import annotations

import os
import shutil
import sys

import pytest


def unprivileged_prefix() -> tuple[str, ...]:
    """The command prefix that runs a child without the capabilities that let root
    ignore permission bits (CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH): `setpriv` as root,
    nothing otherwise. Skips the test on Windows, or as root without `setpriv`."""
    if sys.platform == "win32":
        pytest.skip("POSIX permission bits")
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
    return (setpriv, "--bounding-set=-dac_override,-dac_read_search", "--")
