"""Errors a user can fix without reading minigrad's code.

:class:`UserError` marks a problem with the *input* -- a missing data directory,
a corrupt file, a checkpoint of another architecture, a bad command-line
option -- as opposed to a bug.  The command line (``python -m minigrad``)
catches it and prints its message as one line on stderr, with exit code 2 and
no traceback; library callers get an ordinary exception they can catch.

Every message says what went wrong *and* what to do about it.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input; the message says how to fix it."""
