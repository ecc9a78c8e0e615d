"""Hooks for the end-to-end tests, loaded into every Python process of a test stack.

With ``LLM_BATCH_CHAOS_CRASH_AFTER_CREATE`` naming a marker file, the first process that has
just created a batch dies (``os._exit``) before the ledger learns the batch id, as a worker
killed at the worst moment would; the marker makes it happen once per stack.

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
                os._exit(137)
            return _update(self, key, **changes)

        _ledger.BatchLedger.update = _update_or_die
