"""The one error type a user sees as a single line, the exit statuses of the `surrogap`
command and the stage scripts, and the one error boundary both run their body in
(`boundary`). The exit statuses, 0 success and those below, are README's "Exit status".

With stderr closed (`2>&-`, sys.stderr is None) the lines meant for it are dropped, never
written to stdout (print(file=None) would): the exit status still tells.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

EXIT_USER = 2  # bad input or a fault the user can fix (a `UserError`): one line on stderr
EXIT_OUTPUT = 74  # stdout closed or full (EX_IOERR of sysexits.h)
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT): 128 + 2, as a shell reports it
EXIT_PIPE = 141  # the reader of stdout went away (`surrogap bounds ... | head`): quietly


class UserError(ValueError):
    """Bad input or an unrecoverable fault the user can fix; its message is one line."""


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's final flush of what is still buffered
    cannot fail again (it would print 'Exception ignored' and exit 120)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


class _StdoutFailed(Exception):
    """Writing stdout failed (full, closed, a device error): `error` is the OSError."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


class _Stdout:
    """sys.stdout as `boundary` sees it: a failed write or flush is a `_StdoutFailed`, so
    it is told apart from an OSError of any other file (a write that failed may have
    dropped its bytes, so flushing again says nothing)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise _StdoutFailed(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise _StdoutFailed(exc) from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _say(line: str) -> None:
    if sys.stderr is None:  # started with stderr closed (`2>&-`): print(file=None) is stdout
        return
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):  # stderr closed too: the status says it
        pass


def boundary(
    prefix: str,
    body: Callable[[], int],
    say: Callable[[Exception], str],
    on_other: Callable[[OSError], str] | None = None,
) -> int:
    """Run `body` (it returns the exit status) inside the one error boundary: a
    `UserError` is ``say(exc)`` on stderr and EXIT_USER; stdout closed or full is
    ``<prefix>: cannot write to stdout: <reason>`` and EXIT_OUTPUT; Ctrl-C is
    ``<prefix>: interrupted (Ctrl-C); ...`` and EXIT_INTERRUPTED; a closed pipe ends quietly
    with EXIT_PIPE. Any other OSError is ``on_other(exc)`` and EXIT_USER where `on_other`
    is given (a stage's input it cannot read), else raised; any other exception is a bug
    and keeps its traceback."""
    if sys.stderr is None:  # `2>&-`: every print(..., file=sys.stderr) would go to stdout
        sys.stderr = open(os.devnull, "w")  # kept for the process's lifetime
    if sys.stdout is None:  # started with stdout closed (`>&-`)
        _say(f"{prefix}: stdout is closed; give it a file or a pipe (e.g. > out.txt)")
        return EXIT_OUTPUT
    stdout = sys.stdout
    sys.stdout = _Stdout(stdout)
    try:
        status = body()
        sys.stdout.flush()
        return status
    except UserError as exc:
        _say(say(exc))
        return EXIT_USER
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: no traceback
        _say(f"{prefix}: interrupted (Ctrl-C); outputs are left as they were before the run")
        return EXIT_INTERRUPTED
    except _StdoutFailed as exc:
        _silence_stdout()
        if isinstance(exc.error, BrokenPipeError):  # the reader went away: quietly
            return EXIT_PIPE
        _say(f"{prefix}: cannot write to stdout: {exc.error.strerror or exc.error}")
        return EXIT_OUTPUT
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_PIPE
    except OSError as exc:
        if on_other is None:
            raise
        _say(on_other(exc))
        return EXIT_USER
    finally:
        sys.stdout = stdout


def quiet_interrupt_hook(prefix: str) -> None:
    """Make a Ctrl-C that lands before `boundary` runs (while the modules load) one line
    too; the process then ends as killed by SIGINT (status 130 in a shell)."""
    default = sys.excepthook

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            _say(f"{prefix}: interrupted (Ctrl-C) while starting; nothing was written")
        else:
            default(kind, value, tb)

    sys.excepthook = hook
