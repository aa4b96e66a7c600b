"""Rich consoles for the command line, wide when the output is not a terminal.

Rich lays out text and tables for 80 columns when it cannot ask a terminal for
its width, so ``switchboard dlq list > file`` would cut every row at 80. Output
that goes to a file or a pipe is read with a pager, grep or an editor, where a
long row is better than a cut one; there the console is as wide as
:data:`NON_TERMINAL_WIDTH`, unless ``COLUMNS`` says otherwise.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from rich.console import Console

# Wide enough for every table the command line prints (each long column is
# shortened by its renderer), so no row is cut; Rich pads nothing to this width.
NON_TERMINAL_WIDTH = 1000


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        # A replaced or closed stream (a test runner's buffer) is not a terminal.
        return False


def console_width(stream: TextIO) -> int | None:
    """The width to give a console writing to ``stream``; None lets Rich decide.

    Rich itself honours ``COLUMNS`` and asks a terminal for its size, so only
    output that goes elsewhere without ``COLUMNS`` gets a fixed, wide width.
    """
    if os.environ.get("COLUMNS", "").strip().isdigit() or _is_terminal(stream):
        return None
    return NON_TERMINAL_WIDTH


def make_console(stderr: bool = False, **options: Any) -> Console:
    """A console on stdout (or stderr) that is wide when not writing to a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=console_width(stream), **options)
