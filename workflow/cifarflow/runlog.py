"""Run a pipeline stage with all of its output (Python's and TensorFlow's native logs) in one log file."""

import contextlib
import os
import sys
import traceback

from .errors import UserError

# Errors whose message is the whole story for the user: no traceback.
USER_ERRORS = (UserError, ValueError, FileNotFoundError)


@contextlib.contextmanager
def logged(log_path: str):
    """Send stdout/stderr (file descriptors 1 and 2) to ``log_path``; report a failure in one clear line."""
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(2), "w")
    saved = os.dup(1), os.dup(2)
    with open(log_path, "a", buffering=1) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = os.fdopen(os.dup(1), "w", buffering=1)
        sys.stderr = os.fdopen(os.dup(2), "w", buffering=1)
        failure = None
        try:
            yield
        except USER_ERRORS as error:
            failure = f"ERROR: {error}"
        except BaseException as error:
            traceback.print_exc()
            failure = f"ERROR: {type(error).__name__}: {error} (full traceback in {log_path})"
        finally:
            if failure:
                print(failure, flush=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    if failure:
        print(failure, file=terminal, flush=True)
        sys.exit(1)
