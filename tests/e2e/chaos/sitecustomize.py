"""Fault injection for the end-to-end tests, loaded into every Airflow process of a test stack.

With ``LLM_BATCH_CHAOS_CRASH_AFTER_CREATE`` naming a marker file, the first process that has
just created a batch dies (``os._exit``) before the ledger learns the batch id, as a worker
killed at the worst moment would; the marker makes it happen once per stack.
"""

import os

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
