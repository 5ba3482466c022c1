"""Progress lines for the terminal that runs a chapter, kept off the book's page."""

import os
import sys


def terminal_log(line):
    """Progress lines for the terminal that runs the chapter, kept off the book's page.

    ipykernel forwards everything written to the kernel's stdout and stderr,
    file descriptors included, into the notebook; it keeps a copy of the
    terminal's stderr descriptor, and a line written there reaches only the
    terminal. Outside a kernel this is plain stderr.
    """
    fd = getattr(sys.stderr, "_original_stdstream_copy", None)
    if fd is None:
        print(line, file=sys.stderr, flush=True)
    else:
        os.write(fd, (line + "\n").encode())

def _expected_retracing(record):
    """Drops TF's "triggered tf.function retracing" warning: every meta-training run and evaluation compiles
    its own functions by design (one per run and problem), which TF counts as retracing one function."""
    return "triggered tf.function retracing" not in record.getMessage()
