"""Hooks for the end-to-end tests, loaded into every Python process of a test stack.

With ``LLM_BATCH_CHAOS_CRASH_AFTER_CREATE`` naming a marker file, the first process that has
just created a batch dies (``os._exit``) before the ledger learns the batch id, as a worker
killed at the worst moment would; the marker makes it happen once per stack. Under
``airflow dags test`` every task runs in the one process, whose death would end the run itself:
there ``LLM_BATCH_CHAOS_CRASH_AS=exception`` makes the try fail at that point instead, with
nothing between the create and the ledger run, and Airflow retries it as it would a dead worker's.

With ``E2E_CLOCK_OFFSET_SECONDS`` (set by ``tests/e2e/at_clock.py``), the wall clock of the
process runs that many seconds ahead (``time-machine``), so that every process of a stack, and
the test process, live at the same other time of day. Monotonic clocks stay real.
"""

import os

_CLOCK_OFFSET = os.environ.get("E2E_CLOCK_OFFSET_SECONDS")

if _CLOCK_OFFSET:
    import time as _time

    import time_machine as _time_machine

    _time_machine.travel(_time.time() + float(_CLOCK_OFFSET), tick=True).start()

    # SQLite's CURRENT_TIMESTAMP reads the real clock in C: Airflow's ``func.now()`` (which runs
    # are due, which runs may start) must read the moved one.
    try:
        import datetime as _dt
        import sqlite3 as _sqlite3

        from sqlalchemy import event as _event
        from sqlalchemy.dialects.sqlite.base import SQLiteCompiler as _SQLiteCompiler
        from sqlalchemy.engine import Engine as _Engine
    except ImportError:  # a process without SQLAlchemy
        pass
    else:

        def _moved_now() -> str:
            return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

        @_event.listens_for(_Engine, "connect")
        def _register_moved_now(dbapi_connection, _record) -> None:
            if isinstance(dbapi_connection, _sqlite3.Connection):
                dbapi_connection.create_function("e2e_moved_now", 0, _moved_now)

        _SQLiteCompiler.visit_now_func = lambda self, fn, **kw: "e2e_moved_now()"

_MARKER = os.environ.get("LLM_BATCH_CHAOS_CRASH_AFTER_CREATE")

if _MARKER:
    try:
        from llm_batch import ledger as _ledger
    except ImportError:  # a process without the plugins on its path
        _ledger = None

    if _ledger is not None:
        _update = _ledger.BatchLedger.update

        def _update_or_die(self, key, **changes):
            if changes.get("batch_id") and not os.path.exists(_MARKER):
                with open(_MARKER, "w") as marker:
                    marker.write(f"{key} {changes['batch_id']}\n")
                if os.environ.get("LLM_BATCH_CHAOS_CRASH_AS") == "exception":
                    raise RuntimeError(f"chaos: the try dies after creating batch {changes['batch_id']}")
                os._exit(137)
            return _update(self, key, **changes)

        _ledger.BatchLedger.update = _update_or_die
