"""The allocator settings of the array-heavy commands (monitor.core.heap)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_accepts_every_setting_that_keeps_freed_memory():
    # In a child: the settings are process-wide, and the test process is not a short one.
    code = "from monitor.core.heap import keep_freed_memory; print(keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads counted in /proc")
def test_numpy_starts_no_idle_threads_for_the_array_commands():
    code = (
        "from monitor.core.heap import for_arrays; for_arrays(); import numpy, os;"
        " print(len(os.listdir('/proc/self/task')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"
