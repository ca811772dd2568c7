"""``flower-actors-supernode``: a Flower SuperNode that serves every run at once, each in its own process.

    flower-actors-supernode --insecure --superlink 127.0.0.1:9092

Flags of ``flower-supernode`` that apply keep their names, defaults and
meanings (``--superlink --insecure --root-certificates
--auth-supernode-private-key --node-config --max-retries --max-wait-time
-V``); ours follow (``--max-runs --idle-timeout --warm-pool
--heartbeat-interval --task-deadline --stop-timeout --timeline --log-level``).
Exit status: 0 after a clean stop (SIGINT, SIGTERM), 1 when the SuperLink
cannot be joined, 2 for a bad flag.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..runtime.logs import configure_logging
from .environment import quiet_environment

__all__ = ["build_parser", "main", "options_from_args"]

log = logging.getLogger("flower_actors.supernode")

DEFAULT_SUPERLINK = "127.0.0.1:8000"
"""flower-supernode's default Fleet API address (``SUPERLINK_DEFAULT_CLIENT_ADDRESS`` in flwr 1.42)."""
HEARTBEAT_MIN, HEARTBEAT_MAX = 10.0, 1800.0
"""The heartbeat intervals a SuperLink accepts."""


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``flower-actors-supernode``."""
    from .. import __version__
    from ..tools import add_log_level, at_least, positive

    parser = argparse.ArgumentParser(
        prog="flower-actors-supernode",
        description="A Flower SuperNode on Thespian actors: every run at once, each run's ClientApp resident "
        "in its own process with its own Context.",
    )
    parser.add_argument(
        "-V", "--version", action="version", version=f"flower-actors-supernode {__version__} (flwr 1.42.0)"
    )
    flower = parser.add_argument_group("flags of flower-supernode")
    flower.add_argument(
        "--superlink",
        default=DEFAULT_SUPERLINK,
        metavar="HOST:PORT",
        help=f"SuperLink Fleet API address as host:port, without a URL prefix (default {DEFAULT_SUPERLINK}); "
        "HTTPS unless --insecure",
    )
    flower.add_argument("--insecure", action="store_true", help="connect over plain HTTP (no TLS)")
    flower.add_argument(
        "--root-certificates",
        metavar="ROOT_CERT",
        help="PEM root CA certificate (or bundle) that verifies the SuperLink's TLS certificate",
    )
    flower.add_argument(
        "--auth-supernode-private-key",
        metavar="PATH",
        help="the node's EC private key (OpenSSH format) for SuperNode authentication (needs TLS)",
    )
    flower.add_argument(
        "--node-config",
        metavar="'k=v ...'",
        help="space separated key=value pairs (TOML values) given to every run's Context.node_config, or a .toml file",
    )
    flower.add_argument(
        "--max-retries",
        type=at_least(0),
        default=None,
        help="connection attempts after the first before giving up (default: no limit)",
    )
    flower.add_argument(
        "--max-wait-time",
        type=positive(float),
        default=None,
        metavar="SECONDS",
        help="seconds of trying to connect before giving up (default: no limit)",
    )
    ours = parser.add_argument_group("flags of flower-actors-supernode")
    ours.add_argument(
        "--max-runs",
        type=at_least(1),
        default=None,
        help="most runs with a live WorkloadClient at once (default: no limit); at the cap the least "
        "recently used idle run's process is stopped",
    )
    ours.add_argument(
        "--idle-timeout",
        type=positive(float),
        default=600.0,
        metavar="SECONDS",
        help="stop a run's WorkloadClient after this long without a message (default 600)",
    )
    ours.add_argument(
        "--warm-pool", type=at_least(0), default=2, help="WorkloadClients started ahead of need (default 2)"
    )
    ours.add_argument(
        "--heartbeat-interval",
        type=positive(float),
        default=30.0,
        metavar="SECONDS",
        help=f"seconds between heartbeats, {HEARTBEAT_MIN:.0f} to {HEARTBEAT_MAX:.0f} (default 30, as Flower)",
    )
    ours.add_argument(
        "--task-deadline",
        type=positive(float),
        default=None,
        metavar="SECONDS",
        help="longest a ClientApp call may run before its process is killed and an error reply sent "
        "(default: the message's TTL)",
    )
    ours.add_argument(
        "--stop-timeout",
        type=positive(float),
        default=10.0,
        metavar="SECONDS",
        help="on SIGINT/SIGTERM, how long in-flight messages may take to finish (default 10)",
    )
    ours.add_argument(
        "--timeline",
        metavar="FILE",
        help="when the node stops, draw every message it served on its run's lane: .json (Chrome trace, "
        "opens in Perfetto), .png or .svg (these need the plot extra: pip install 'flower_actors[plot]')",
    )
    add_log_level(ours, default="INFO")
    return parser


def options_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> object:
    """The ``FlowerNodeConfig`` the flags ask for; ``parser.error`` (exit 2) names the flag that is wrong."""
    from flwr.common.config import parse_config_args
    from flwr.supercore.address import parse_address

    from ..runtime.system import SystemConfig
    from .control import LinkOptions
    from .node import FlowerNodeConfig

    if not parse_address(args.superlink):
        parser.error(f"argument --superlink: {args.superlink!r} is not HOST:PORT")
    if args.insecure and args.root_certificates:
        parser.error("argument --root-certificates: not allowed with --insecure (it disables TLS)")
    if args.insecure and args.auth_supernode_private_key:
        parser.error("argument --auth-supernode-private-key: SuperNode authentication needs TLS; drop --insecure")
    if not HEARTBEAT_MIN <= args.heartbeat_interval <= HEARTBEAT_MAX:
        parser.error(
            f"argument --heartbeat-interval: must be {HEARTBEAT_MIN:.0f} to {HEARTBEAT_MAX:.0f}, "
            f"got {args.heartbeat_interval}"
        )
    roots = _read(parser, "--root-certificates", args.root_certificates)
    key = _read(parser, "--auth-supernode-private-key", args.auth_supernode_private_key)
    if key is not None:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_ssh_private_key

        try:
            if not isinstance(load_ssh_private_key(key, None), ec.EllipticCurvePrivateKey):
                raise ValueError("not an elliptic-curve key")
        except Exception as exc:
            parser.error(f"argument --auth-supernode-private-key: cannot use {args.auth_supernode_private_key}: {exc}")
    try:
        node_config = parse_config_args([args.node_config] if args.node_config else None)
    except Exception as exc:
        parser.error(f"argument --node-config: {exc}")
    import os

    link = LinkOptions(
        superlink=args.superlink,
        insecure=args.insecure,
        root_certificates=roots,
        private_key_pem=key,
        node_config=node_config,
        heartbeat_interval=args.heartbeat_interval,
        max_retries=args.max_retries,
        max_wait_time=args.max_wait_time,
        task_deadline_s=args.task_deadline,
        flwr_home=os.environ.get("FLWR_HOME", ""),
    )
    return FlowerNodeConfig(
        link=link,
        max_runs=args.max_runs,
        idle_timeout_s=args.idle_timeout,
        warm_pool=args.warm_pool,
        stop_timeout=args.stop_timeout,
        system=SystemConfig(stderr_level=getattr(logging, args.log_level)),
        timeline=_timeline(parser, args.timeline),
    )


def _timeline(parser: argparse.ArgumentParser, path: str | None) -> str | None:
    """``--timeline``, checked now rather than when the node stops: its format, its folder, the plot extra."""
    if path is None:
        return None
    from ..timeline import FORMATS

    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        parser.error(f"argument --timeline: {path!r} must end in {', '.join(FORMATS)}")
    if not Path(path).expanduser().resolve().parent.is_dir():
        parser.error(f"argument --timeline: the folder of {path} does not exist")
    if suffix != ".json":
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error(f"argument --timeline: drawing {suffix} needs matplotlib: pip install 'flower_actors[plot]'")
    return str(Path(path).expanduser().resolve())


def _read(parser: argparse.ArgumentParser, flag: str, path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        parser.error(f"argument {flag}: cannot read {path}: {exc.strerror}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the node until SIGINT or SIGTERM; the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_environment()  # before flwr is imported, here and in every process forked from here
    configure_logging(args.log_level, "supernode")
    config = options_from_args(parser, args)
    from ..errors import SystemStartError
    from ..tools import exit_on_sigterm
    from .node import FlowerNodeConfig, run_flower_node

    assert isinstance(config, FlowerNodeConfig)
    exit_on_sigterm()
    mode = "insecure HTTP" if args.insecure else "TLS"
    try:
        with run_flower_node(config) as node:
            log.info(
                "node %s joined the SuperLink at %s (%s); serving runs at once (max %s), idle timeout %s s, "
                "warm pool %d, heartbeat every %.0f s; %d processes in session %d",
                node.node_id,
                args.superlink,
                mode,
                args.max_runs or "unlimited",
                args.idle_timeout,
                args.warm_pool,
                args.heartbeat_interval,
                len(node.processes()),
                node.handle.session_id,
            )
            while True:
                time.sleep(3600)
    except SystemStartError as exc:
        print(f"flower-actors-supernode: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        log.info("interrupted: the node stopped")
        return 0
    except SystemExit as exc:
        if exc.code in (128 + 15, 143):
            log.info("terminated: the node stopped")
            return 0
        raise
    return 0
