"""The pseudo-terminal harness itself: a hang-up must not close another test's file descriptor later."""

from __future__ import annotations

import gc
import os

from tests._pty_app import PtyApp


def test_a_hang_up_closes_the_terminal_once_and_leaves_later_descriptors_alone() -> None:
    app = PtyApp(["--version"])
    master = app.proc.fd
    app.hang_up()
    app._reader.join(60)  # the reader stops on the closed terminal: nothing refers to the pty after this
    app.kill()
    read_end, write_end = os.pipe()
    os.dup2(read_end, master)  # the terminal's number, free again, now another test's descriptor
    try:
        del app
        gc.collect()  # ptyprocess's file object, collected: it must not close that number a second time
        os.fstat(master)
    finally:
        for fd in (read_end, write_end, master):
            os.close(fd)
