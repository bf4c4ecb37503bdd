"""The project's exceptions: what the command line turns into a one-line error (bad file, bad data, bad flag).

Anything else is a bug and keeps its traceback.
"""


class SqueezeNetError(Exception):
    """A problem with the user's input, reported in one line that names it; never a traceback."""


class ConfigError(SqueezeNetError, ValueError):
    """An impossible setting (a configuration value, an option out of range); a ValueError too, for callers that
    expect one."""
