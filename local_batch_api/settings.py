"""Server settings: where state lives, how long "24h" lasts, limits, engine and faults."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from local_batch_api.faults import CrashPoint, Faults

MB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str | None = None
    engine: str = "local"
    upstream_base_url: str | None = None
    upstream_api_key: str | None = None
    upstream_concurrency: int = 16
    upstream_max_retries: int = 3
    # Time: the completion window and the pauses the real service takes, shrinkable for tests.
    window_seconds: float = 86400.0
    validating_seconds: float = 1.0
    finalizing_seconds: float = 1.0
    cancelling_seconds: float = 1.0
    request_seconds: float = 0.0
    # Limits of the contract.
    max_batch_requests: int = 50_000
    max_batch_bytes: int = 200 * MB
    max_upload_bytes: int = 512 * MB
    max_message_batch_requests: int = 100_000
    max_message_batch_bytes: int = 256 * MB
    enqueued_token_limit: int | None = None
    chunk_requests: int = 2_000
    poll_interval_seconds: float = 0.05
    faults: Faults = field(default_factory=Faults)
    crash_at: CrashPoint = field(default_factory=CrashPoint)
    # A full disk pauses the batches that need to write; they try again this often.
    disk_full_retry_seconds: float = 1.0

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "state.sqlite3"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m local_batch_api",
        description="Local server implementing the OpenAI Files + Batches API (also as Azure OpenAI) and Anthropic Message Batches.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--data-dir", type=Path, default=Path(".local/batch-api"), help="state and files")
    p.add_argument(
        "--api-key", default=None, help="require 'Authorization: Bearer <key>' (or env LOCAL_BATCH_API_KEY)"
    )
    p.add_argument("--engine", choices=["local", "upstream"], default="local")
    p.add_argument(
        "--upstream-base-url", default=None, help="OpenAI-compatible base URL, e.g. http://host/v1"
    )
    p.add_argument("--upstream-concurrency", type=int, default=16)
    p.add_argument("--upstream-max-retries", type=int, default=3)
    p.add_argument("--window-seconds", type=float, default=86400.0, help='how long "24h" lasts')
    p.add_argument("--validating-seconds", type=float, default=1.0)
    p.add_argument("--finalizing-seconds", type=float, default=1.0)
    p.add_argument("--cancelling-seconds", type=float, default=1.0)
    p.add_argument("--request-seconds", type=float, default=0.0, help="simulated time per request")
    p.add_argument("--max-batch-requests", type=int, default=50_000)
    p.add_argument("--max-batch-bytes", type=int, default=200 * MB)
    p.add_argument("--max-upload-bytes", type=int, default=512 * MB)
    p.add_argument("--max-message-batch-requests", type=int, default=100_000, help="Anthropic batches")
    p.add_argument("--max-message-batch-bytes", type=int, default=256 * MB, help="Anthropic batches")
    p.add_argument("--enqueued-token-limit", type=int, default=None, help="per model, over active batches")
    p.add_argument("--disk-full-retry-seconds", type=float, default=1.0, help="pause after ENOSPC")
    p.add_argument("--fault", action="append", default=[], metavar="KEY=VALUE", help="server-wide fault")
    p.add_argument("--log-level", default="warning")
    return p


def settings_from_args(args: argparse.Namespace, env: dict[str, str]) -> Settings:
    raw_faults = {}
    for item in args.fault:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--fault expects KEY=VALUE, got {item!r}")
        raw_faults[key.strip()] = value.strip()
    return Settings(
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        api_key=args.api_key or env.get("LOCAL_BATCH_API_KEY") or None,
        engine=args.engine,
        upstream_base_url=args.upstream_base_url,
        upstream_api_key=env.get("LOCAL_BATCH_API_UPSTREAM_KEY") or None,
        upstream_concurrency=args.upstream_concurrency,
        upstream_max_retries=args.upstream_max_retries,
        window_seconds=args.window_seconds,
        validating_seconds=args.validating_seconds,
        finalizing_seconds=args.finalizing_seconds,
        cancelling_seconds=args.cancelling_seconds,
        request_seconds=args.request_seconds,
        max_batch_requests=args.max_batch_requests,
        max_batch_bytes=args.max_batch_bytes,
        max_upload_bytes=args.max_upload_bytes,
        max_message_batch_requests=args.max_message_batch_requests,
        max_message_batch_bytes=args.max_message_batch_bytes,
        enqueued_token_limit=args.enqueued_token_limit,
        faults=Faults.from_mapping(raw_faults),
        crash_at=CrashPoint.from_env(env),
        disk_full_retry_seconds=args.disk_full_retry_seconds,
    )
