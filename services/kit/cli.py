"""`kepu`: the operator's command line.

    kepu token --role school --org sch_123 [--ttl 12h]     (at most 24h; audited)
    kepu user create-admin --identifier ops@example.cn [--password-file FILE]
    kepu dlq list | kepu dlq replay EVENT_ID | kepu dlq replay --all
    kepu outbox status
    kepu allocation explain SESSION_ID
    kepu ping SERVICE [--timeout 5]
    kepu migrate districts [--map NAME=DIS_ID]   (one-off: names to ids, docs/districts.md)
    kepu monitoring rebuild | kepu monitoring check   (docs/monitoring.md)
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


def _operator(settings: Settings) -> dict[str, Any]:
    """The CLI acts as a system admin, signed with the platform secret only operators hold."""
    from services.kit.actor import Actor, actor_key, sign

    return sign(Actor.system("kepu-cli"), actor_key(settings.jwt_secret))


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    """Mint a token, after identity has recorded it in the audit trail (else none)."""
    import uuid

    from services.kit.rpc_client import RpcClient

    jti = uuid.uuid4().hex
    sub = args.sub or f"{args.role}-{uuid.uuid4().hex[:8]}"
    try:
        token = auth.mint(settings.jwt_secret, args.role, args.org, sub, args.ttl, jti=jti)
    except ValueError as exc:
        print(f"kepu token: {exc}", file=sys.stderr)
        return 2
    client = RpcClient(settings.amqp_url, timeout=10)
    try:
        client.call("identity", "record_token", {
            "jti": jti, "sub": sub, "role": args.role, "org_id": args.org,
            "ttl_s": int(args.ttl.total_seconds())}, actor=_operator(settings))
    except Exception as exc:  # noqa: BLE001 - no audit record, no token
        print(f"kepu token: could not record the token in the audit trail: "
              f"{getattr(exc, 'detail', exc)}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(token)
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as handle:
            return handle.read().strip()
    import getpass

    first = getpass.getpass("password for the new admin: ")
    if first != getpass.getpass("again: "):
        raise ValueError("the passwords differ")
    return first


def cmd_create_admin(args: argparse.Namespace, settings: Settings) -> int:
    """The first admin (or another): idempotent — an existing person keeps their password."""
    from services.kit.errors import DomainError
    from services.kit.rpc_client import RpcClient

    try:
        password = _read_password(args)
    except (OSError, ValueError) as exc:
        print(f"kepu user create-admin: {exc}", file=sys.stderr)
        return 2
    client = RpcClient(settings.amqp_url, timeout=30)
    try:
        result: Any = client.call("identity", "provision", {
            "identifier": args.identifier, "password": password,
            "display_name": args.name, "role": "admin", "manager": True},
            actor=_operator(settings))
    except DomainError as exc:
        print(f"kepu user create-admin: {exc.detail} {exc.errors or ''}", file=sys.stderr)
        return 1
    finally:
        client.close()
    state = "created" if result["created"] else "already exists; password unchanged"
    print(f"admin {result['user']['user_id']} ({args.identifier}): {state}")
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


def _name_to_id(text: str) -> tuple[str, str]:
    name, _, district_id = text.rpartition("=")
    if not name or not district_id.startswith("dis_"):
        raise argparse.ArgumentTypeError("NAME=DISTRICT_ID, e.g. 浦东新区=dis_0123abcd")
    return name, district_id


def cmd_migrate_districts(args: argparse.Namespace, settings: Settings) -> int:
    """Move schools, venues and funding from district names to identity's district ids."""
    from services.kit.actor import Actor, actor_key, sign
    from services.kit.errors import DomainError
    from services.kit.migrations import migrate_districts
    from services.kit.rpc_client import RpcClient

    key = actor_key(settings.jwt_secret)
    client = RpcClient(settings.amqp_url, timeout=args.timeout)
    try:
        report = migrate_districts(client.call,
                                   lambda: sign(Actor.system("migrate-districts"), key),
                                   given=dict(args.map or []))
    except DomainError as exc:
        print(f"kepu migrate districts: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


def cmd_monitoring_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    """Drop monitoring's read models and fold its event archive again."""
    from services.monitoring.operations import rebuild

    print(json.dumps({"folded": rebuild(settings)}))
    return 0


def cmd_monitoring_check(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 1, printing each difference, when monitoring's counts differ from booking's."""
    from services.kit.rpc_client import RpcClient
    from services.monitoring.operations import check

    client = RpcClient(settings.amqp_url, timeout=args.timeout)
    try:
        differences = check(settings, client)
    finally:
        client.close()
    for line in differences:
        print(line)
    print("monitoring agrees with booking" if not differences else
          f"{len(differences)} difference(s)", file=sys.stderr)
    return 1 if differences else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kepu", description="Kepu operator tools")
    sub = p.add_subparsers(dest="command", required=True)

    token = sub.add_parser("token", help="print a bearer token")
    token.add_argument("--role", required=True, choices=auth.ROLES)
    token.add_argument("--org", help="venue, school or district id")
    token.add_argument("--sub", help="the person (default: a generated id)")
    token.add_argument("--ttl", type=_ttl, default=timedelta(hours=12),
                       help="lifetime, at most 24h")
    token.set_defaults(func=cmd_token)

    user = sub.add_parser("user", help="people").add_subparsers(dest="action", required=True)
    admin = user.add_parser("create-admin", help="bootstrap an admin (idempotent)")
    admin.add_argument("--identifier", required=True, help="e-mail address or mobile")
    admin.add_argument("--name", default="Kepu operator", help="display name")
    admin.add_argument("--password-file", help="read the password from this file")
    admin.set_defaults(func=cmd_create_admin)

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

    migrate = sub.add_parser("migrate", help="one-off data migrations").add_subparsers(
        dest="action", required=True)
    districts = migrate.add_parser("districts", help="district names to district ids")
    districts.add_argument("--timeout", type=float, default=120.0)
    districts.add_argument("--map", action="append", type=_name_to_id, metavar="NAME=DIS_ID",
                           help="link NAME to a district registered under another name")
    districts.set_defaults(func=cmd_migrate_districts)

    monitoring = sub.add_parser("monitoring", help="district monitoring's read models"
                                ).add_subparsers(dest="action", required=True)
    monitoring.add_parser("rebuild", help="refold the event archive from scratch"
                          ).set_defaults(func=cmd_monitoring_rebuild)
    mcheck = monitoring.add_parser("check", help="compare counts with booking's own")
    mcheck.add_argument("--timeout", type=float, default=120.0)
    mcheck.set_defaults(func=cmd_monitoring_check)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    return args.func(args, settings)


if __name__ == "__main__":
    sys.exit(main())
