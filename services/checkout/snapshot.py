"""`python -m services.checkout.snapshot [NAMESPACE_ID ...]`: republish every
namespace's facts (or those given) as `directory.namespace_snapshot` events
(services/checkout/usecases/snapshot.py). The worker relays them; trials'
read model catches up with whatever it missed. Safe to run any time, twice."""

from __future__ import annotations

import argparse
import sys

from services.checkout.adapters.models import ExposureRow, FunnelEventRow, OutboxMessage
from services.checkout.usecases import snapshot
from services.common.config import Settings
from services.common.service import ServiceContext, build_context


def publish(ctx: ServiceContext, namespace_ids: list[int] | None = None) -> int:
    with ctx.uow() as uow:
        published = snapshot.publish(uow, namespace_ids)
        uow.commit()
    return published


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("namespace_ids", type=int, nargs="*", help="only these namespaces (default: all)")
    args = parser.parse_args(argv)
    ctx = build_context("checkout", Settings.from_env("checkout"), None, OutboxMessage, FunnelEventRow,
                        ExposureRow)
    try:
        print(f"published {publish(ctx, args.namespace_ids or None)} namespace snapshots")
    finally:
        ctx.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
