"""Requests in flight: rows a submission has claimed, whose answers have not landed yet.

Runs overlap (a nightly run and a manual range over the same days, a backfill beside both). A
request (key, request fingerprint) sent by one run counts as taken for every other run until the
owner loads its answers: the others leave it to the owner. A claim is written, under one lock per
job, when a submission is claimed and before anything is uploaded; the rows another run holds,
or has answered since this run was built, are cut out of the shard first. Load releases the claims of the batches it landed. A claim
stops holding by itself when its batch failed or ended without answers, and after the holds
below, so a run that died never blocks a row for good.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from llm_batch.clock import utcnow
from llm_batch.digests import content_digest
from llm_batch.sharding import custom_id_of, shard_index, shard_lines
from llm_batch.storage import ObjectStoragePath, write_bytes, write_table
from llm_batch.warehouse import queries

if TYPE_CHECKING:
    from llm_batch.handoffs import ShardSpec
    from llm_batch.job import BatchJob
    from llm_batch.warehouse import Warehouse

log = logging.getLogger(__name__)

# How long a claim holds without news from its owner: a submission not yet created, a batch not
# yet collected (the service's 24 h completion window, and some margin), answers not yet loaded.
SUBMITTING_HOLD = dt.timedelta(hours=1)
RUNNING_HOLD = dt.timedelta(hours=26)
LANDING_HOLD = dt.timedelta(hours=1)
CLAIM_LOCK_TIMEOUT_SECONDS = 120.0

Request = tuple[str, str]  # (key, request fingerprint)


def taken_requests(
    warehouse: Warehouse,
    job: str,
    *,
    keys: list[str] | None = None,
    run_id: str | None = None,
    submission_key: str | None = None,
) -> set[Request]:
    """Requests held by a live claim of another run (or, without a run id, another submission)."""
    return {
        (claim["key"], claim["request_fingerprint"])
        for claim in _claims_of_others(warehouse, job, keys, run_id, submission_key)
    }


def _claims_of_others(
    warehouse: Warehouse, job: str, keys: list[str] | None, run_id: str | None, submission_key: str | None
) -> list[dict]:
    now = utcnow()
    live = queries.live_inflight(
        warehouse,
        job,
        submitting_since=now - SUBMITTING_HOLD,
        running_since=now - RUNNING_HOLD,
        landing_since=now - LANDING_HOLD,
        keys=keys,
    ).to_pylist()
    return [
        claim
        for claim in live
        if claim["submission_key"] != submission_key and (run_id is None or claim["run_id"] != run_id)
    ]


def claim_requests(
    warehouse: Warehouse,
    job: BatchJob,
    submission_key: str,
    run_id: str | None,
    requests: list[Request],
    *,
    row_dates: list[dt.date | None] | None = None,
    forced: bool = False,
) -> set[Request]:
    """Claim ``requests`` for a submission; return those left out: superseded, held by another run, or answered.

    A request is superseded when a newer version of its key (a later row date than its own
    ``row_dates`` entry) has landed, or gone in flight, since this run was built: the older one
    would not be loaded. Answers count too: a run that built before another landed the same rows
    must not pay for them now. Claims are read before answers, since a load lands answers and
    drops their claims at once; they are read once, under the lock, for both checks. A ``forced``
    run takes every request not superseded: it pays for fresh answers on purpose.
    """
    dates = row_dates or [None] * len(requests)
    with warehouse.exclusive(f"llm_batch_inflight:{job.name}", timeout=CLAIM_LOCK_TIMEOUT_SECONDS):
        queries.create_inflight(warehouse)
        keys = sorted({key for key, _ in requests})
        others = _claims_of_others(warehouse, job.name, keys, run_id, submission_key)
        held = _superseded(warehouse, job, requests, dates, keys, others)
        if not forced:
            held |= {(claim["key"], claim["request_fingerprint"]) for claim in others}
            held |= queries.settled_requests(warehouse, job, keys)
        taken = set(requests) & held
        mine = [(request, day) for request, day in zip(requests, dates, strict=True) if request not in taken]
        queries.record_inflight(
            warehouse,
            pa.table(
                {
                    "job": [job.name] * len(mine),
                    "key": [key for (key, _), _ in mine],
                    "request_fingerprint": [fingerprint for (_, fingerprint), _ in mine],
                    "row_date": pa.array([day for _, day in mine], pa.date32()),
                    "submission_key": [submission_key] * len(mine),
                    "run_id": [run_id] * len(mine),
                    "claimed_at": [utcnow()] * len(mine),
                }
            ),
        )
    return taken


def _superseded(
    warehouse: Warehouse,
    job: BatchJob,
    requests: list[Request],
    dates: list[dt.date | None],
    keys: list[str],
    others: list[dict],
) -> set[Request]:
    """The requests whose key has a newer row date stored, or in flight in another run."""
    if all(day is None for day in dates):
        return set()
    newest: dict[str, dt.date] = {}
    stored = queries.stored_row_dates(warehouse, job, keys)
    versions = [*((claim["key"], claim["row_date"]) for claim in others), *stored.items()]
    for key, day in versions:
        if day is not None and (key not in newest or day > newest[key]):
            newest[key] = day
    return {
        request
        for request, day in zip(requests, dates, strict=True)
        if day is not None and request[0] in newest and day < newest[request[0]]
    }


def release(warehouse: Warehouse, job: str, submission_keys: Iterable[str]) -> int:
    """Release the claims of these submissions: their answers have landed."""
    return queries.release_inflight(warehouse, job, sorted(set(submission_keys)))


# The shard without what others hold -------------------------------------------------------------


def claim_shard(
    warehouse: Warehouse, job: BatchJob, spec: ShardSpec, submission_key: str, run_id: str | None
) -> ShardSpec:
    """Claim the shard's requests; return the shard as it will be sent, without those taken."""
    index = shard_index(spec)
    requests = list(
        zip(index.column("key").to_pylist(), index.column("request_fingerprint").to_pylist(), strict=True)
    )
    taken = claim_requests(
        warehouse,
        job,
        submission_key,
        run_id,
        requests,
        row_dates=index.column("row_date").to_pylist(),
        forced=bool(spec.identity_salt),
    )
    if not taken:
        return spec
    left = [
        custom_id
        for custom_id, request in zip(index.column("custom_id").to_pylist(), requests, strict=True)
        if request in taken
    ]
    log.info(
        "%d of %d requests of shard %s round %s are answered, superseded or in flight elsewhere; not sent",
        len(left),
        len(requests),
        spec.shard,
        spec.attempt,
    )
    left_ids = set(left)
    content = b"".join(line for line in shard_lines(spec.path) if custom_id_of(line) not in left_ids)
    digest = content_digest(content)
    path = ObjectStoragePath(spec.path).parent / f"{digest[:40]}.jsonl"
    if not path.exists():
        write_bytes(path, content)
    return narrowed(spec, digest, index.num_rows - len(left))


def narrowed(spec: ShardSpec, digest: str, requests: int) -> ShardSpec:
    """The shard as sent when some of its requests were left to other runs (``digest`` of the bytes sent).

    The file sits next to the shard's, named by its digest; its index next to the run's index, so
    whoever re-attaches to the batch collects exactly the requests it holds.
    """
    if digest == spec.digest:
        return spec
    path = ObjectStoragePath(spec.path).parent / f"{digest[:40]}.jsonl"
    index_path = ObjectStoragePath(spec.index_path).parent / f"index-{spec.shard:03d}-{digest[:16]}.parquet"
    lines = list(shard_lines(str(path)))
    if not index_path.exists():
        sent = pa.array([custom_id_of(line) for line in lines], pa.string())
        index = shard_index(spec)
        write_table(index_path, index.filter(pc.is_in(index["custom_id"], sent)))
    return dataclasses.replace(
        spec,
        path=str(path),
        index_path=str(index_path),
        digest=digest,
        requests=requests,
        bytes=sum(len(line) for line in lines),
    )
