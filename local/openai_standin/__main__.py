"""Run the stand-in in the foreground: ``python -m local.openai_standin --port 8090 --data-dir .data/openai``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from .server import StandinServer


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m local.openai_standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port to listen on (default 8090; 0 picks one)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="persist the state here (default: in memory only)")
    parser.add_argument("--processing-seconds", type=float, default=0.0,
                        help="how long an attached vector store file stays in_progress (default 0)")
    parser.add_argument("--reasoning-share", type=float, default=None,
                        help="share of output tokens that is reasoning, 0 to 0.99 (default 0.5)")
    parser.add_argument("--openapi-document", type=Path, default=None,
                        help="OpenAI's OpenAPI document to validate requests against (default: "
                             "$OPENAI_STANDIN_OPENAPI_DOCUMENT, else ../shared/reference/openai-openapi.json if present)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        # A library that sets its own logger's level still prints nothing below the chosen one.
        handler.setLevel(level)
    options: dict[str, Any] = {"reasoning_share": args.reasoning_share}
    if args.openapi_document is not None:
        options["openapi_document"] = args.openapi_document
    server = StandinServer(data_dir=args.data_dir, host=args.host, port=args.port,
                           processing_seconds=args.processing_seconds, **options)
    log = logging.getLogger(__name__)
    log.info("OpenAI stand-in listening on %s", server.base_url)
    if server.schemas is None:
        log.warning("no OpenAPI document: requests get the stand-in's own checks only")
    else:
        log.info("requests are validated against %s", server.schemas.path)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        logging.getLogger(__name__).info("stopped")


if __name__ == "__main__":
    main()
