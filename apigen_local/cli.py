"""The ``apigen-local`` command line. Each sub-command is a thin shell over the Python API."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.logging import RichHandler

from .errors import ApigenError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

console = Console(stderr=True)


def _cmd_model_build_tiny(args: argparse.Namespace) -> int:
    from .tiny_model import build_tiny_model, file_sha256

    path = build_tiny_model(args.out, force=args.force)
    print(f"{path}  sha256={file_sha256(path)[:16]}  size={path.stat().st_size} bytes")
    return 0


def _cmd_model_find(args: argparse.Namespace) -> int:
    from .model_files import find_model

    print(find_model(args.model))
    return 0


def _cmd_sandbox_build(args: argparse.Namespace) -> int:
    from .docker_client import connect
    from .sandbox_image import build_sandbox_image

    tag = build_sandbox_image(
        connect(), from_tar=args.from_tar, mirror=args.mirror, suite=args.suite, force=args.force
    )
    print(tag)
    return 0


def _cmd_sandbox_check(args: argparse.Namespace) -> int:
    from .docker_client import connect
    from .sandbox_image import require_sandbox_image

    print(require_sandbox_image(connect()))
    return 0


def _cmd_sandbox_cleanup(args: argparse.Namespace) -> int:
    from .docker_client import connect
    from .executor import cleanup_leftovers

    print(f"removed {cleanup_leftovers(connect())} leftover sandbox container(s)")
    return 0


def _cmd_tools(args: argparse.Namespace) -> int:
    import json

    from .tools import load_library, load_tool_specs, xlam_tools

    skipped: dict[str, str] = {}
    if args.lib.lower().endswith((".json", ".jsonl")):
        tools = load_tool_specs(args.lib)
    else:
        tools_logger = logging.getLogger(load_library.__module__)
        level = tools_logger.level
        tools_logger.setLevel(logging.ERROR)  # its skip warnings would repeat the lines below
        try:
            library = load_library(args.lib, strict=not args.lenient)
        finally:
            tools_logger.setLevel(level)
        tools, skipped = library.tools, library.skipped
    described = xlam_tools(tools) if args.format == "xlam" else [tool.openai() for tool in tools]
    print(json.dumps(described, indent=2, ensure_ascii=False))
    for name, reason in skipped.items():
        console.print(f"skipped {name}: {reason}", highlight=False, markup=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser; every command has ``--help``."""
    parser = argparse.ArgumentParser(
        prog="apigen-local",
        description="Generate verifiable function-calling datasets offline (APIGen method).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    model = commands.add_parser("model", help="build the tiny test model or locate a GGUF")
    model_commands = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    tiny = model_commands.add_parser("build-tiny", help="write the deterministic tiny test GGUF")
    tiny.add_argument("--out", help="output path (default: models/tiny-test.gguf)")
    tiny.add_argument("--force", action="store_true", help="rebuild even if the file exists")
    tiny.set_defaults(handler=_cmd_model_build_tiny)
    find = model_commands.add_parser("find", help="print which GGUF the project would use")
    find.add_argument("--model", help="explicit GGUF path")
    find.set_defaults(handler=_cmd_model_find)

    sandbox = commands.add_parser("sandbox", help="build, check or clean up the sandbox")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    build = sandbox_commands.add_parser("build", help="build the sandbox image offline")
    build.add_argument("--from-tar", metavar="FILE", help="base image from a 'docker save' archive")
    build.add_argument("--mirror", help="Debian mirror URL for debootstrap (default: apt's own)")
    build.add_argument("--suite", help="Debian release for debootstrap (default: this machine's)")
    build.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    build.set_defaults(handler=_cmd_sandbox_build)
    check = sandbox_commands.add_parser("check", help="print the image tag, or say what to run")
    check.set_defaults(handler=_cmd_sandbox_check)
    cleanup = sandbox_commands.add_parser(
        "cleanup", help="remove sandbox containers left behind by runs that have ended"
    )
    cleanup.set_defaults(handler=_cmd_sandbox_cleanup)

    tools = commands.add_parser("tools", help="print the tool schemas of a library or spec file")
    tools.add_argument(
        "lib", metavar="LIB", help="a .py library, a module name, or a .json/.jsonl spec file"
    )
    tools.add_argument(
        "--lenient", action="store_true", help="skip functions that cannot be described"
    )
    tools.add_argument(
        "--format", choices=("openai", "xlam"), default="openai", help="schema style (default: openai)"
    )
    tools.set_defaults(handler=_cmd_tools)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: user mistakes end with exit code 2 and one line; ``--debug`` shows tracebacks."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ApigenError as exc:
        if args.debug:
            console.print_exception()
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        console.print("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
