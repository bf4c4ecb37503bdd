"""The one exception the command line turns into a one-line error (bad file, bad data, bad flag)."""

from __future__ import annotations


class SqueezeNetError(Exception):
    """A problem with the user's input, reported in one line that names it; never a traceback."""
