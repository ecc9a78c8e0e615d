"""``python -m local_batch_api``: run the server."""

from __future__ import annotations

import os
import sys

import uvicorn

from local_batch_api.app import create_app
from local_batch_api.settings import build_parser, settings_from_args


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = settings_from_args(args, dict(os.environ))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    sys.exit(main())
