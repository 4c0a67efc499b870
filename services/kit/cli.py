"""`kepu`: the operator's command line.

    kepu token --role school --org sch_123 [--ttl 12h]
    kepu dlq list | kepu dlq replay EVENT_ID | kepu dlq replay --all
    kepu outbox status
    kepu allocation explain SESSION_ID
    kepu ping SERVICE [--timeout 5]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import timedelta
from typing import Any

from services.kit import auth, dlq
from services.kit.config import Settings
from services.kit.mongo import OUTBOX_INDEX, connect
from services.kit.outbox import PENDING_FIELD


def _ttl(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError("ttl like 90m, 12h or 7d")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "": "seconds"}
    return timedelta(**{unit[match.group(2)]: int(match.group(1))})


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    try:
        print(auth.mint(settings.jwt_secret, args.role, args.org, args.sub, args.ttl))
    except ValueError as exc:
        print(f"kepu token: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_dlq_list(args: argparse.Namespace, settings: Settings) -> int:
    parked = dlq.list_parked(settings.amqp_url, quorum=settings.quorum_queues)
    if args.json:
        print(json.dumps([p.as_dict(with_data=True) for p in parked], ensure_ascii=False,
                         indent=2))
        return 0
    if not parked:
        print("dead-letter queue is empty")
        return 0
    print(f"{'EVENT ID':34} {'TYPE':32} {'TRIES':>5}  QUEUE / ERROR")
    for p in parked:
        print(f"{p.event_id or '-':34} {p.event_type or '-':32} {p.attempts:>5}  {p.queue}")
        print(f"{'':74}{p.error[:200]}")
    return 0


def cmd_dlq_replay(args: argparse.Namespace, settings: Settings) -> int:
    if not args.all and not args.event_id:
        print("kepu dlq replay: give an EVENT_ID or --all", file=sys.stderr)
        return 2
    replayed = dlq.replay(settings.amqp_url, None if args.all else args.event_id,
                          quorum=settings.quorum_queues)
    for p in replayed:
        print(f"replayed {p.event_id} ({p.event_type}) to {p.queue}")
    if not replayed:
        print("nothing replayed" + ("" if args.all else f": {args.event_id} is not parked"))
        return 0 if args.all else 1
    return 0


def outbox_status(settings: Settings) -> dict[str, dict[str, int]]:
    """Unsent events per service and collection."""
    client = connect(settings, "kepu-cli")
    status: dict[str, dict[str, int]] = {}
    try:
        prefix = f"{settings.db_prefix}_"
        for db_name in sorted(client.list_database_names()):
            if not db_name.startswith(prefix):
                continue
            db = client[db_name]
            for name in sorted(db.list_collection_names()):
                info = db[name].index_information()
                if not any(spec["key"][0][0] == OUTBOX_INDEX for spec in info.values()):
                    continue
                unsent = sum(d.get(PENDING_FIELD, 0) for d in
                             db[name].find({PENDING_FIELD: {"$gt": 0}}, {PENDING_FIELD: 1}))
                status.setdefault(db_name[len(prefix):], {})[name] = unsent
    finally:
        client.close()
    return status


def cmd_outbox_status(args: argparse.Namespace, settings: Settings) -> int:
    status = outbox_status(settings)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"{'SERVICE':16} {'COLLECTION':24} {'UNSENT':>7}")
    for service, colls in status.items():
        for coll, unsent in colls.items():
            print(f"{service:16} {coll:24} {unsent:>7}")
    return 0


def cmd_allocation_explain(args: argparse.Namespace, settings: Settings) -> int:
    from services.kit.errors import DomainError
    from services.kit.rpc_client import RpcClient

    client = RpcClient(settings.amqp_url, timeout=30)
    try:
        result: Any = client.call("booking", "explain_allocation", args.session_id)
    except DomainError as exc:
        print(f"kepu allocation explain: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if result.get("reproduced", True) else 1


def cmd_ping(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 when some replica of SERVICE answers `ping` (its consumers and database are up)."""
    from services.kit.rpc_client import RpcClient

    client = RpcClient(settings.amqp_url, timeout=args.timeout)
    try:
        result: Any = client.call(args.service, "ping")
    except Exception as exc:  # noqa: BLE001 - a health check reports, never raises
        print(f"kepu ping {args.service}: {getattr(exc, 'detail', exc)}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(json.dumps(result))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kepu", description="Kepu operator tools")
    sub = p.add_subparsers(dest="command", required=True)

    token = sub.add_parser("token", help="print a bearer token")
    token.add_argument("--role", required=True, choices=auth.ROLES)
    token.add_argument("--org", help="venue, school or district id")
    token.add_argument("--sub", help="the person (default: a generated id)")
    token.add_argument("--ttl", type=_ttl, default=timedelta(hours=12))
    token.set_defaults(func=cmd_token)

    dlq_p = sub.add_parser("dlq", help="dead-lettered events").add_subparsers(
        dest="action", required=True)
    lst = dlq_p.add_parser("list")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_dlq_list)
    rep = dlq_p.add_parser("replay")
    rep.add_argument("event_id", nargs="?")
    rep.add_argument("--all", action="store_true")
    rep.set_defaults(func=cmd_dlq_replay)

    outbox = sub.add_parser("outbox", help="the transactional outboxes").add_subparsers(
        dest="action", required=True)
    st = outbox.add_parser("status")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_outbox_status)

    alloc = sub.add_parser("allocation", help="window allocations").add_subparsers(
        dest="action", required=True)
    exp = alloc.add_parser("explain", help="re-run a session's allocation from its seed")
    exp.add_argument("session_id")
    exp.set_defaults(func=cmd_allocation_explain)

    ping = sub.add_parser("ping", help="health check: does SERVICE answer by RPC?")
    ping.add_argument("service")
    ping.add_argument("--timeout", type=float, default=5.0)
    ping.set_defaults(func=cmd_ping)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    return args.func(args, settings)


if __name__ == "__main__":
    sys.exit(main())
