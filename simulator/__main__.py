"""`python -m simulator --host 127.0.0.1 --port 8900 [--config file.json]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import uvicorn

from simulator.app import create_app
from simulator.config import SimConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--config", type=Path, help="JSON file of SimConfig keys")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    config = SimConfig()
    if args.config is not None:
        config = SimConfig.from_dict(json.loads(args.config.read_text()))
    # h11 explicitly: the connection faults reach into uvicorn's per-request cycle.
    uvicorn.run(
        create_app(config), host=args.host, port=args.port, http="h11", log_level=args.log_level
    )


if __name__ == "__main__":
    main()
