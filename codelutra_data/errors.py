"""Errors a user can fix: the CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """Bad input or environment (unknown source, corrupt database, no disk space...).

    Raised instead of a traceback so the CLI can say what is wrong in one line.
    """


class SandboxError(RuntimeError):
    """The sandbox itself broke (not the program it ran)."""
