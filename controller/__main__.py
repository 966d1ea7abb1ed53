"""`autolabel-controller` / `python -m controller`: run the operator.

Serves liveness on :8080/healthz and Prometheus metrics on :9090/metrics (both
configurable). Watches AutoLabelRuns in all namespaces, or in those given with
--namespace. Run one active replica: kopf's peering is not leader election
(the chart uses replicas 1 and the Recreate strategy).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import kopf

from controller import handlers, metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autolabel-controller", description=__doc__)
    parser.add_argument(
        "--namespace", action="append", default=[], help="watch only this namespace (repeatable); default all"
    )
    parser.add_argument("--liveness-port", type=int, default=8080)
    parser.add_argument("--metrics-port", type=int, default=9090)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.PLAIN)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    assert handlers.on_change  # registers the handlers on import
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    asyncio.run(
        kopf.operator(
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            standalone=True,
            liveness_endpoint=f"http://0.0.0.0:{args.liveness_port}/healthz" if args.liveness_port else None,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
