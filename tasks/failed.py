"""What a failed step looks like: the error it raises (``StepFailed``), a unit's failure as it travels
back from a worker (``UnitError``: its innermost cause in one line and the traceback), the one-line
message per failed unit and the log file of their tracebacks (``_logs/<step>-<time>.log``)."""

from __future__ import annotations

import datetime as dt
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from magicvl.storage.diskfull import DiskFullError
from magicvl.tasks.unit import Unit

log = logging.getLogger("magicvl")


class StepFailed(RuntimeError):
    """Some units of a step raised (not bad records: those are quarantined), or none could start. Rerun resumes."""


class UnitError(Exception):
    """A unit's failure as it travels back from a worker: its innermost cause in one line (Python's
    ``__cause__`` chain does not survive pickling) and the full traceback."""

    def __init__(self, cause: str, trace: str) -> None:
        super().__init__(cause, trace)
        self.cause_line, self.trace = cause, trace

    def __str__(self) -> str:
        return self.cause_line


def traced(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` on a worker; an exception comes back as a ``UnitError`` (out of disk space as is)."""
    try:
        return fn(*args)
    except DiskFullError:
        raise
    except Exception as e:
        raise UnitError(cause_line(root_cause(e)), "".join(traceback.format_exception(e))) from None


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """``traced`` and the seconds it took on the worker (for ``run_tasks(clock=...)``)."""
    t0 = time.perf_counter()
    res = traced(fn, *args)
    return time.perf_counter() - t0, res


def root_cause(e: BaseException) -> BaseException:
    """The innermost exception: through a Ray task error's ``cause`` and Python's ``__cause__``/``__context__``."""
    seen = {id(e)}
    while True:
        nxt = getattr(e, "cause", None)
        if not isinstance(nxt, BaseException):
            nxt = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
        if nxt is None or id(nxt) in seen:
            return e
        seen.add(id(nxt))
        e = nxt


def cause_line(cause: BaseException) -> str:
    """``<Type>: <first line of the message>`` (300 characters at most)."""
    lines = [x.strip() for x in str(cause).strip().splitlines() if x.strip()]
    return f"{type(cause).__name__}: {lines[0][:300] if lines else '(no message)'}"


def failure_line(step: str, what: str, e: BaseException) -> str:
    """``<step> <what>: <Type>: <message>`` in one line (``what``: the unit's dataset/shard, or its index)."""
    cause = root_cause(e)
    return f"{step} {what}: {cause.cause_line if isinstance(cause, UnitError) else cause_line(cause)}"


def failure(step: str, what: str, e: BaseException) -> tuple[str, str]:
    """A failed item of a fan-out: (its one line, the traceback for the log file)."""
    cause = root_cause(e)
    tb = cause.trace if isinstance(cause, UnitError) else "".join(traceback.format_exception(e))
    return failure_line(step, what, e), tb


def unit_of(call: Any) -> Unit | None:
    """The ``Unit`` a task call carries (a unit, or a tuple/list holding one), for naming a failure."""
    items = call if isinstance(call, tuple | list) else (call,)
    for x in items:
        if isinstance(x, Unit):
            return x
        if isinstance(x, list | tuple) and x and isinstance(x[0], Unit):
            return x[0]
    return None


def write_failures(step: str, failures: list[tuple[str, str]], units: list[Unit | None]) -> str:
    """The tracebacks behind ``failures`` in ``_logs/<step>-<time>.log`` under the units' output root,
    else in the driver's log; returns where they went."""
    text = "\n\n".join(f"== {line}\n{tb}" for line, tb in failures)
    root = next((u.layout for u in units if u is not None), None)
    if root is not None:
        path = root.failure_log(step, dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n", encoding="utf-8")
            return f"full tracebacks in {path}"
        except OSError as e:
            log.warning("cannot write %s: %s", path, e)
    log.error("%s: tracebacks of failed units:\n%s", step, text)
    return "full tracebacks in the driver's log"


def raise_failures(step: str, total: int, failures: list[tuple[str, str]], units: list[Unit | None]) -> None:
    if not failures:
        return
    where = write_failures(step, failures, units)
    lines = [line for line, _ in failures]
    more = f"\n... and {len(lines) - 20} more" if len(lines) > 20 else ""
    raise StepFailed(f"{len(lines)} of {total} {step} units failed ({where}):\n" + "\n".join(lines[:20]) + more)


def disk_full_error(e: BaseException) -> DiskFullError | None:
    """The DiskFullError behind a failed Ray task (its ``cause``), if that is why it failed."""
    cause = getattr(e, "cause", e)
    return cause if isinstance(cause, DiskFullError) else None
