"""Failures whose message is the whole story for the user: a stage reports them in one line, without a traceback."""


class UserError(Exception):
    """Raised for bad input or a bad setting; the message says what is wrong and what to do."""


class StageError(UserError, RuntimeError):
    """A stage failed for a reason the message states fully (NaN loss, bad setting...)."""
