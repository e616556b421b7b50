"""The ``apigen-local`` command line. Each sub-command is a thin shell over the Python API."""

from __future__ import annotations

import argparse
import logging
import os
import stat
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from .errors import ApigenError, ConfigError, os_error_line

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

if TYPE_CHECKING:
    from .run.backends.base import Backend
    from .run.job import DatasetResult
    from .run.progress import LineProgress, RichProgress
    from .run.stats import RunStats
    from .tools import Library
    from .types import Record

console = Console(stderr=True, soft_wrap=True)


def _cmd_model_build_tiny(args: argparse.Namespace) -> int:
    from .model.files import file_sha256
    from .model.tiny import build_tiny_model

    path = build_tiny_model(args.out, force=args.force)
    print(f"{path}  sha256={file_sha256(path)[:16]}  size={path.stat().st_size} bytes")
    return 0


def _cmd_model_fetch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .model.files import fetch_default_model

    path = fetch_default_model(Path(args.dir) if args.dir else None)
    print(f"{path}  size={path.stat().st_size} bytes")
    return 0


def _cmd_model_find(args: argparse.Namespace) -> int:
    """The folders searched and what each held on stderr, then the chosen model alone on stdout
    (so that ``$(apigen-local model find)`` is its path)."""
    from .model.files import find_model

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    path = find_model(args.model, trace=say)
    say(f"model: {path}")
    print(path)
    return 0


def _cmd_bundle_create(args: argparse.Namespace) -> int:
    from .bundle import bundle_size, create_bundle

    manifest = create_bundle(args.out_dir, models=args.model, with_debs=args.with_debs)
    print(f"bundle in {args.out_dir}: {len(manifest.files)} files, {bundle_size(manifest) / 2**20:.0f} MiB; "
          f"on the target run {args.out_dir}/install.sh [--prefix DIR]")
    return 0


def _cmd_sandbox_build(args: argparse.Namespace) -> int:
    from .sandbox.engine import connect
    from .sandbox.image import build_sandbox_image

    tag = build_sandbox_image(
        connect(), from_tar=args.from_tar, mirror=args.mirror, suite=args.suite, force=args.force
    )
    print(tag)
    return 0


def _cmd_sandbox_check(args: argparse.Namespace) -> int:
    from .sandbox.engine import connect
    from .sandbox.image import require_sandbox_image

    print(require_sandbox_image(connect()))
    return 0


def _cmd_sandbox_cleanup(args: argparse.Namespace) -> int:
    from .sandbox.engine import connect
    from .sandbox.executor import cleanup_leftovers

    print(f"removed {cleanup_leftovers(connect())} leftover sandbox container(s)")
    return 0


def _cmd_tools(args: argparse.Namespace) -> int:
    import json

    from .tool_specs import load_tool_specs, xlam_tools
    from .tools import load_library

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


def _cmd_seed(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .generation.seed_draft import draft_seed_rows
    from .run.files import write_atomic
    from .tools import load_library

    library = load_library(args.library, strict=not args.lenient)
    if args.no_run:
        rows = draft_seed_rows(library.tools, per_function=args.per_function, seed=args.seed)
    else:
        rows = _drafts_that_run(args, library)
    missing = sorted({t.name for t in library.tools} - {json.loads(r["answers"])[0]["name"] for r in rows})
    if missing:
        console.print(f"no draft for {', '.join(missing)}: none of its drawn calls ran; write its seed rows by "
                      "hand", highlight=False)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if args.out is None:
        print(text, end="")
        return 0
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists: pass --force to replace it, or another --out")
    write_atomic(out, text)
    console.print(f"{len(rows)} drafted rows in {out}: edit each query into a request a person would "
                  f"write (keep every value), then pass --seed-file {out}", highlight=False)
    return 0


def _drafts_that_run(args: argparse.Namespace, library: Library) -> list[dict[str, Any]]:
    """Seed drafts whose calls ran in the sandbox; unexecuted drafts, with a warning, without Docker."""
    from .errors import SandboxError
    from .generation.seed_draft import draft_seed_rows
    from .run.worker import SandboxSettings, Worker, WorkerSettings

    try:
        with Worker(WorkerSettings(library=library.path, lenient=args.lenient, sandbox=SandboxSettings()),
                    library=library) as worker:
            return draft_seed_rows(library.tools, per_function=args.per_function, seed=args.seed,
                                   check=worker.calls_that_run)
    except SandboxError as exc:
        console.print(f"warning: the drafts are not run ({exc}); a drafted call may raise: check them, or pass "
                      "--no-run to skip running", highlight=False, markup=False)
        return draft_seed_rows(library.tools, per_function=args.per_function, seed=args.seed)


def _progress(label: str) -> RichProgress | LineProgress:
    """A live bar on a terminal; plain lines, every few rows or seconds, in a log file or a pipe."""
    from .run.progress import LineProgress, RichProgress

    return RichProgress(console, label=label) if console.is_terminal else LineProgress(console, label=label)


def _cmd_generate(args: argparse.Namespace) -> int:
    from .run.config import GenerationConfig, build_config
    from .run.generate import generate_dataset

    given = {
        "library": args.library, "model": args.model, "rows": args.rows, "out_dir": args.out,
        "seed": args.seed, "styles": args.styles, "seed_file": args.seed_file,
        "mode": args.mode.replace("-", "_") if args.mode else None,
        "n_examples": args.n_examples, "lenient": args.lenient or None, "n_ctx": args.n_ctx,
        "n_threads": args.threads, "n_gpu_layers": args.gpu_layers,
        "temperature": args.temperature, "call_timeout": args.call_timeout,
        "max_string_chars": args.max_string_chars, "max_list_items": args.max_list_items,
        "max_containers": args.max_containers, "batch_rows": args.batch_rows,
        "grounding": False if args.no_grounding else None,
        "semantic": False if args.no_semantic else None, "judge": args.judge,
        "fit_margin": args.fit_margin, "irrelevance": args.irrelevance,
        "request_candidates": args.request_candidates,
    }
    overrides = {key: value for key, value in given.items() if value is not None}
    if args.config:
        config = GenerationConfig.from_file(args.config, **overrides)
    elif "library" not in overrides:
        raise ConfigError("give --library FILE (or --config FILE with a 'library' setting)")
    else:
        config = build_config(overrides)
    backend = _backend(args)
    if args.quiet:
        result = generate_dataset(config.library, config=config, backend=backend)
    else:
        with _progress("generating") as progress:
            result = generate_dataset(config.library, config=config, progress=progress, backend=backend)
    _print_result(result)
    return 0


def _backend(args: argparse.Namespace) -> Backend | None:
    """``--ray ADDRESS`` (with ``--ray-workers`` and ``--ray-ship-model``) as a backend; None: this process."""
    if args.ray is None:
        if args.ray_workers is not None or args.ray_ship_model:
            raise ConfigError("--ray-workers and --ray-ship-model need --ray ADDRESS")
        return None
    from .run.backends.ray import RayCluster

    return RayCluster(args.ray, workers=args.ray_workers, ship_model=args.ray_ship_model)


def _cmd_verify(args: argparse.Namespace) -> int:
    from .run.verify import verify_dataset

    settings = {"stages": args.stages, "model": args.model, "lenient": args.lenient,
                "call_timeout": args.call_timeout, "max_containers": args.max_containers,
                "batch_rows": args.batch_rows, "n_ctx": args.n_ctx, "n_threads": args.threads,
                "n_gpu_layers": args.gpu_layers, "grounding": False if args.no_grounding else None,
                "grounding_mode": args.grounding,
                "judge": args.judge}
    given = {key: value for key, value in settings.items() if value is not None}
    backend = _backend(args)
    if args.quiet:
        result = verify_dataset(args.rows, args.library, out_dir=args.out, backend=backend, **given)
    else:
        with _progress("verifying") as progress:
            result = verify_dataset(args.rows, args.library, out_dir=args.out,
                                    progress=progress, backend=backend, **given)
    _print_result(result)
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .run.calibrate import calibrate

    if args.labels:
        return _calibrate_labels(args)
    if not args.library:
        raise ConfigError("give --library FILE (the functions the correct rows call), or --labels FILE")
    rows = args.rows or _seed_file_next_to(args.library)
    calibration = calibrate(
        args.library, rows, model=args.model, out_dir=args.out, judge=args.judge, seed=args.seed,
        limit=args.limit, n_ctx=args.n_ctx or 8192, n_threads=args.threads,
        n_gpu_layers=args.gpu_layers or 0,
        progress=None if args.quiet else lambda done, total: print(
            f"\rjudging {done}/{total}", end="" if done < total else "\n", flush=True),
    )
    print(f"model: {calibration.model}  judge: {calibration.judge}  rows: {calibration.rows_file}")
    print(f"positives: {calibration.positives}  negatives: {calibration.negatives} "
          f"({calibration.dropped_negatives} perturbed rows failed format or execution and were dropped)")
    kinds = list(next(iter(calibration.stages.values())).by_kind)
    print(f"{'stage':<10} {'kept (+)':>9} {'rejected (-)':>13} " + " ".join(f"{k:>14}" for k in kinds))
    for stage, figures in calibration.stages.items():
        print(f"{stage:<10} {figures.positives_kept.percent():>9} {figures.negatives_rejected.percent():>13} "
              + " ".join(f"{figures.by_kind[k].percent():>14}" for k in kinds))
    if calibration.weak_judge:
        print("warning: the semantic stage catches fewer than half of the wrong rows with this model")
    print(f"calibration: {Path(args.out) / 'calibration.json'}")
    return 0


def _calibrate_labels(args: argparse.Namespace) -> int:
    """``calibrate --labels FILE``: precision and recall of the checks on labelled real rows."""
    from contextlib import ExitStack
    from datetime import datetime, timezone
    from pathlib import Path

    from .model.files import find_model
    from .run.files import write_atomic
    from .run.labels import LabelReport, figures_table, measure, read_labelled, save_for_model

    rows = read_labelled(args.labels)
    if args.fit_margin is not None and not args.library:  # the function-fit check compares with its functions
        raise ConfigError("--fit-margin needs --library LIB: the functions the called ones are compared with")
    # A model takes part only when named (--model: the figures are kept as its precision) or when
    # the function-fit check runs it (--fit-margin); the other checks measured here need none.
    model_file = find_model(args.model).resolve() if args.model or args.fit_margin is not None else None
    with ExitStack() as stack:
        judge = None
        if args.fit_margin is not None and model_file is not None:
            from .run.worker import JudgeSettings, ModelSettings, Worker, WorkerSettings

            worker = stack.enter_context(Worker(WorkerSettings(
                library=args.library, judge=JudgeSettings(fit_margin=args.fit_margin),
                model=ModelSettings(path=str(model_file), n_ctx=args.n_ctx or 2048, n_threads=args.threads,
                                    n_gpu_layers=args.gpu_layers or 0))))
            judge = worker.judge_checker
        figures = measure(rows, judge=lambda row: judge)
    report = LabelReport(model=model_file.stem if model_file else None,
                         model_file=str(model_file) if model_file else None,
                         labels_file=str(Path(args.labels).resolve()),
                         measured=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), figures=figures)
    print(f"model: {report.model or 'none (the checks measured here need none)'}  labels: {report.labels_file}")
    if judge is None:
        print("checks at default settings; add --library LIB --fit-margin 0.3 to measure the function-fit check")
    for line in figures_table(report.figures):
        print(line)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "labels.json", report.model_dump_json(indent=2))
    print(f"figures: {out / 'labels.json'}")
    if model_file is None:
        print("kept for no model: with --model GGUF they would also be kept as that model's measured precision, "
              "which stats.json and report.html of its later runs show")
        return 0
    kept = save_for_model(report)
    if kept is None:
        print(f"warning: the per-model cache could not be written; later runs of {report.model} will not show them")
    else:
        print(f"kept for model {report.model} in {kept}: stats.json ('labelled') and report.html of every later "
              f"run of this model file show them as its measured precision, until the next "
              f"'calibrate --labels' for it (delete that file to stop)")
    return 0


def _seed_file_next_to(library: str) -> str:
    """The ``seed.jsonl`` beside a library file: the default correct rows of ``calibrate``."""
    from pathlib import Path

    seed = Path(library).with_name("seed.jsonl")
    if not seed.is_file():
        raise ConfigError(f"give --rows ROWS.jsonl (correct rows: a seed file or a verified dataset.jsonl); "
                          f"there is no {seed}")
    return str(seed)


def _print_result(result: DatasetResult) -> None:
    _print_stats_summary(result.stats)
    if result.resumed_rows:
        print(f"resumed: {result.resumed_rows} rows were already done")
    print(f"dataset:  {result.dataset_path}")
    print(f"records:  {result.records_path}")
    print(f"rejected: {result.rejected_path}")
    print(f"stats:    {result.stats_path}")
    report = result.out_dir / "report.html"
    if report.is_file():
        print(f"report:   {report}")


#: rows a style or function must have had before a summary says that none of them was accepted
FAILED_GROUP_ROWS = 5


def _print_stats_summary(stats: RunStats) -> None:
    print(f"rows: {stats.rows}  accepted: {stats.accepted} ({stats.acceptance:.0%})")
    for stage, rate in stats.stages.items():
        if stats.not_run.get(stage) and not rate.total:
            print(f"  {stage:<10} not run on {stats.not_run[stage]} rows (not executed: no library)")
            continue
        print(f"  {stage:<10} {rate.passed:>6}/{rate.total:<6} passed ({rate.percent()})")
    for reason, count in stats.reasons.items():
        print(f"  rejected {reason}: {count}")
    print(f"  {stats.rows_per_minute} rows/min, {stats.tokens_per_second} tokens/s, "
          f"{stats.sandbox_calls_per_second} sandbox calls/s, wall {stats.wall_seconds} s")
    if stats.rows_per_worker:
        print("  rows per Ray worker: " + ", ".join(f"{name} {n}" for name, n in stats.rows_per_worker.items()))
    for title, groups in (("style", stats.styles), ("function", stats.functions)):
        missed = [f"{name} (0 of {rate.total})" for name, rate in groups.items()
                  if rate.total >= FAILED_GROUP_ROWS and not rate.passed]
        if missed:
            print(f"  no row accepted for {title} {', '.join(missed)}: the model could not write these here; "
                  f"see 'apigen-local stats' per {title}, leave them out, or bring a bigger model")


def _cmd_stats(args: argparse.Namespace) -> int:
    from .run.files import RunFiles, read_records
    from .run.report.data import load_stats
    from .run.review_figures import run_review

    files = RunFiles(args.dir)
    stats = load_stats(files.dir)[0]
    reviewed = run_review(files.dir, read_records(files.records))  # the labels as they are now
    stats.reviewed = reviewed.summary() if reviewed is not None else stats.reviewed
    if args.json:
        print(stats.model_dump_json(indent=2))
        return 0
    _print_stats_summary(stats)
    for title, groups in (("style", stats.styles), ("function", stats.functions)):
        for name, rate in groups.items():
            print(f"  {title} {name:<24} {rate.passed:>5}/{rate.total:<5} accepted ({rate.percent()})")
    if reviewed is not None:
        for line in reviewed.lines():
            print(line)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .run.report import write_report

    print(write_report(args.dir, args.out, seed=args.seed))
    return 0


def _cmd_review(args: argparse.Namespace) -> int:
    from .review.serve import serve
    from .review.server import ReviewServer
    from .review.session import ReviewSession
    from .run.review_log import read_labels

    def announce(session: ReviewSession, server: ReviewServer) -> None:
        kind = "rejected" if args.rejected else "accepted"
        available = sum(record.accepted != args.rejected for record in session.records().values())
        sample = f"a sample of {args.sample}" if available > args.sample else f"all {available}"
        print(f"reviewing {sample} of the {available} {kind} rows written in {session.files.dir}")
        if session.files.being_written():
            print("this run is still being written: only written rows are reviewed")
        bad = read_labels(session.labels_file).bad_lines
        if bad:
            print(f"warning: {session.labels_file} has {len(bad)} unreadable line(s) "
                  f"({', '.join(map(str, bad[:10]))}); they are skipped and every good line is kept")
        print(f"open {server.url} in your browser (y correct, n wrong, s skip, u undo); Ctrl-C stops")
        print(f"labels: {session.labels_file}", flush=True)

    serve(args.dir, size=args.sample, seed=args.seed, rejected=args.rejected, reviewer=args.reviewer,
          port=args.port, announce=announce)
    print("stopped; the labels are saved")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .run.files import RunFiles, atomic_file, check_export_options, exporter, read_records, write_export

    files = RunFiles(args.dir)
    if not os.path.lexists(files.records):
        raise ConfigError(f"{args.dir} holds no records.jsonl to export")
    check_export_options(args.format, json_strings=args.json_strings, results=args.results)
    if args.format == "bfcl":
        return _export_bfcl(read_records(files.records), args.out)
    convert = exporter(args.format, json_strings=args.json_strings, results=args.results)
    records = read_records(files.records)
    if args.out:
        if _written_as_it_goes(args.out):  # appended to: reopening /dev/stdout must not truncate a `>>` file
            with open(args.out, "a", encoding="utf-8") as handle:
                count = write_export(records, convert, handle)
        else:  # a file is replaced whole at the end, so a failure leaves an earlier export as it was
            with atomic_file(Path(os.path.realpath(args.out))) as handle:
                count = write_export(records, convert, handle)
        console.print(f"wrote {count} rows to {args.out}", highlight=False)
    else:
        write_export(records, convert, sys.stdout)
    return 0


def _written_as_it_goes(out: str) -> bool:
    """Whether ``--out`` names a stream rather than a file to replace: a device, a pipe, a path
    under /dev or /proc, or the file standard output already writes to."""
    if os.path.realpath(out).startswith(("/dev/", "/proc/")) or out.startswith(("/dev/", "/proc/")):
        return True
    try:
        info = os.stat(out)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode):
        return True
    try:
        stdout = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError):
        return False
    return (info.st_dev, info.st_ino) == (stdout.st_dev, stdout.st_ino)


def _export_bfcl(records: Iterable[Record], out: str | None) -> int:
    from .bfcl.export import export_bfcl

    if not out:
        raise ConfigError("--format bfcl writes a folder of files: give --out DIR")
    result = export_bfcl(records, out)
    total = sum(result.written.values())
    counts = ", ".join(f"{kind} {n}" for kind, n in result.written.items()) or "none"
    print(f"wrote {total} BFCL entries to {out}: {counts}")
    print("every entry passes BFCL's AST rules against its own ground truth")
    if result.refused:
        print("not written (failed the self-check): " + ", ".join(f"{k} {n}" for k, n in result.refused.items()))
    return 0


def _add_machine_options(command: argparse.ArgumentParser) -> None:
    """Options that ``generate`` and ``verify`` share: model loading, sandbox, progress."""
    command.add_argument("--n-ctx", type=int, help="model context size (default: 8192)")
    command.add_argument("--threads", type=int, help="llama.cpp threads (default: all cores)")
    command.add_argument("--gpu-layers", type=int, help="layers to offload to a GPU (default: 0)")
    command.add_argument("--call-timeout", type=float, help="seconds per sandboxed call (default: 5)")
    command.add_argument("--max-containers", type=int, help="sandbox containers in flight (default: 2)")
    command.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_ray_options(command: argparse.ArgumentParser) -> None:
    """Options that ``generate`` and ``verify`` share: where and how to run on a Ray cluster."""
    command.add_argument("--ray", metavar="ADDRESS",
                         help="run on a Ray cluster: auto (started by 'ray start' here), local, or host:port")
    command.add_argument("--ray-workers", type=int, help="Ray workers (default: one per node)")
    command.add_argument("--ray-ship-model", action="store_true",
                         help="send the GGUF to each node through Ray's object store instead of "
                              "reading it at the same path there")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser; every command has ``--help``."""
    parser = argparse.ArgumentParser(
        prog="apigen-local",
        description="Generate verifiable function-calling datasets offline (APIGen method).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    model = commands.add_parser("model", help="fetch the default model, build the tiny test model, or locate a GGUF")
    model_commands = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    tiny = model_commands.add_parser("build-tiny", help="write the deterministic tiny test GGUF")
    tiny.add_argument("--out", help="output path (default: models/tiny-test.gguf)")
    tiny.add_argument("--force", action="store_true", help="rebuild even if the file exists")
    tiny.set_defaults(handler=_cmd_model_build_tiny)
    fetch = model_commands.add_parser(
        "fetch", help="place the default model (SmolLM2-135M-Instruct) in the user's cache, found from any folder")
    fetch.add_argument("--dir", help="target folder (default: $APIGEN_MODELS_DIR when set, else the user's cache: "
                                     "$APIGEN_HOME/models, else $XDG_CACHE_HOME/apigen-local/models, else "
                                     "~/.cache/apigen-local/models)")
    fetch.set_defaults(handler=_cmd_model_fetch)
    find = model_commands.add_parser(
        "find", help="print the folders searched, in order, and which GGUF a command would use (its path on stdout)")
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

    bundle = commands.add_parser("bundle", help="make an air-gapped install bundle")
    bundle_commands = bundle.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)
    create = bundle_commands.add_parser("create", help="write wheels, image, models and install.sh to OUT_DIR")
    create.add_argument("out_dir", metavar="OUT_DIR")
    create.add_argument("--model", action="append", metavar="GGUF", help="an extra GGUF to ship (repeatable)")
    create.add_argument("--with-debs", action="store_true", help="also ship the Debian packages of Docker")
    create.set_defaults(handler=_cmd_bundle_create)

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

    seed = commands.add_parser("seed", help="draft seed rows (few-shot examples) for a library, to edit")
    seed.add_argument("--library", required=True, help="Python file or module of functions")
    seed.add_argument("--per-function", type=int, default=2, choices=range(1, 11), metavar="N",
                      help="rows per function, 1 to 10 (default: 2)")
    seed.add_argument("--seed", type=int, default=0, help="seed of the drawn values (default: 0)")
    seed.add_argument("--out", help="JSONL file to write (default: standard output)")
    seed.add_argument("--force", action="store_true", help="replace --out if it exists")
    seed.add_argument("--lenient", action="store_true", help="skip functions that cannot be described")
    seed.add_argument("--no-run", action="store_true",
                      help="do not run the drafted calls in the sandbox (default: run them, keep those that work)")
    seed.set_defaults(handler=_cmd_seed)

    generate = commands.add_parser("generate", help="generate a verified dataset (format, dedup, grounding, "
                                                    "execution and semantic stages)")
    generate.add_argument("--library", help="Python file or module of functions")
    generate.add_argument("--model",
                          help="GGUF path (default: $APIGEN_MODEL, your GGUF in models/, or the default model)")
    generate.add_argument("--rows", type=int, help="candidate rows to generate (default: 100)")
    generate.add_argument("--out", help="output directory (default: out); rerun to resume")
    generate.add_argument("--seed", type=int, help="seed for sampling and decoding (default: 0)")
    generate.add_argument("--styles", help="style mix, e.g. 'simple=2,multiple,parallel,parallel_multiple'")
    generate.add_argument("--seed-file", help="few-shot rows in xlam-60k JSONL")
    generate.add_argument("--mode", choices=("query-first", "calls-first"),
                          type=lambda text: text.replace("_", "-"),
                          help="calls-first (default): calls that make sense are drawn and run first, the model "
                               "writes only the request; query-first: the model writes request and calls")
    generate.add_argument("--request-candidates", type=int, metavar="N",
                          help="calls-first: the most requests the model writes for each drawn call; another is "
                               "written only while none states its call (default: 1; 3 accepts more of the rows "
                               "asked for, at fewer correct rows per minute on the default model)")
    generate.add_argument("--max-string-chars", type=int,
                          help="longest string argument the model may write (default: 48; a value cut there "
                               "is rejected)")
    generate.add_argument("--max-list-items", type=int, help="longest list argument the model may write (default: 4)")
    generate.add_argument("--n-examples", type=int, help="few-shot examples per prompt (default: 3)")
    generate.add_argument("--config", help="settings from a .toml, .yaml or .json file")
    generate.add_argument("--lenient", action="store_true", help="skip undescribable functions")
    _add_ray_options(generate)
    generate.add_argument("--temperature", type=float,
                          help="sampling temperature (default: 0.3 calls-first, 0.7 query-first)")
    generate.add_argument("--batch-rows", type=int, help="rows per generate/execute batch (default: 16)")
    generate.add_argument("--no-grounding", action="store_true",
                          help="skip argument grounding (values must be stated in the query)")
    generate.add_argument("--no-semantic", action="store_true", help="skip the semantic checker")
    generate.add_argument("--irrelevance", type=float, metavar="F",
                          help="make this share of rows (0 to 0.9) no-call rows: a row that passes loses its "
                               "called functions from the offered tools and answers with no call, kept when no "
                               "remaining tool could serve its request")
    generate.add_argument("--fit-margin", type=float,
                          help="turn on the function-fit check: how much better (mean log-probability per token) "
                               "the called functions must explain the request than the library's others (0.3 was "
                               "best on the default model's dev rows; off by default, see benchmarks/README.md)")
    generate.add_argument("--judge", choices=("coverage", "verdict", "agreement", "round_trip"),
                          type=lambda text: text.replace("-", "_"),
                          help="semantic design: coverage only, or coverage then the model; round-trip keeps a "
                               "row only when the model, reading its request, makes exactly its calls "
                               "(default: coverage)")
    _add_machine_options(generate)
    generate.set_defaults(handler=_cmd_generate)

    verify = commands.add_parser(
        "verify", help="run the checkers over an existing dataset and keep the rows that pass"
    )
    verify.add_argument("rows", metavar="ROWS", help="JSONL rows in the xlam-60k, OpenAI chat or BFCL form")
    verify.add_argument("--library", help="Python file or module the rows call (without it: each row's own "
                                          "tools are checked, and nothing executes)")
    verify.add_argument("--model", help="GGUF path for the semantic stage (without it, skipped)")
    verify.add_argument("--stages",
                        help="comma-separated, from format,grounding,execution,semantic (default: all)")
    verify.add_argument("--no-grounding", action="store_true", help="skip argument grounding")
    verify.add_argument("--grounding", choices=("strict", "implied"),
                        help="strict: every value is stated in the request; implied (default): also values it "
                             "implies by a recorded rule (a place's region, a state's code, a joined list, ...)")
    verify.add_argument("--judge", choices=("coverage", "verdict", "agreement"),
                        help="semantic design: coverage only, or coverage then the model (default: coverage)")
    verify.add_argument("--out", required=True, help="output directory; rerun to resume")
    verify.add_argument("--lenient", action="store_true", help="skip undescribable functions")
    verify.add_argument("--batch-rows", type=int, help="rows per execute batch (default: 64)")
    _add_ray_options(verify)
    _add_machine_options(verify)
    verify.set_defaults(handler=_cmd_verify)

    calibrate = commands.add_parser(
        "calibrate", help="measure how often each stage keeps correct rows and rejects perturbed ones"
    )
    calibrate.add_argument("--library", help="Python file or module the rows call (not with --labels)")
    calibrate.add_argument("--fit-margin", type=float, help="with --labels and --library: also measure the "
                                                             "function-fit check at this margin (it runs the "
                                                             "model: --model, or the one found)")
    calibrate.add_argument("--labels", help="labelled real rows (docs/labelling.md), or a review's DIR/labels.jsonl: "
                                            "report the checks' precision and recall on them, with Wilson 95 %% "
                                            "intervals; needs no model (see --model)")
    calibrate.add_argument("--rows", help="correct rows in xlam-60k JSONL (default: seed.jsonl beside the library)")
    calibrate.add_argument("--model", help="GGUF path (default: found as 'apigen-local model find' shows); with "
                                           "--labels none is needed: a model given there gets the figures kept as "
                                           "its measured precision, shown by its later runs")
    calibrate.add_argument("--judge", choices=("coverage", "verdict", "agreement"), default="verdict",
                           help="the semantic design to calibrate (default: verdict, the model's own)")
    calibrate.add_argument("--out", default="out/calibration", help="output directory (default: out/calibration)")
    calibrate.add_argument("--seed", type=int, default=0, help="perturbation seed")
    calibrate.add_argument("--limit", type=int, help="use only the first N correct rows")
    calibrate.add_argument("--n-ctx", type=int, help="context window (default: 8192)")
    calibrate.add_argument("--threads", type=int, help="CPU threads for the model")
    calibrate.add_argument("--gpu-layers", type=int, help="layers to offload to a GPU")
    calibrate.add_argument("--quiet", action="store_true", help="no progress line")
    calibrate.set_defaults(handler=_cmd_calibrate)

    stats = commands.add_parser("stats", help="print the statistics of a run directory")
    stats.add_argument("dir", metavar="DIR")
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON (stats.json, with the "
                       "review's precision as labels.jsonl holds it now)")
    stats.set_defaults(handler=_cmd_stats)

    report = commands.add_parser("report", help="write a run's report: one self-contained HTML page")
    report.add_argument("dir", metavar="DIR")
    report.add_argument("--out", metavar="FILE.html", help="output file (default: DIR/report.html)")
    report.add_argument("--seed", type=int, default=0, help="seed that picks the sample rows (default: 0)")
    report.set_defaults(handler=_cmd_report)

    review = commands.add_parser("review", help="label a seeded sample of a run's rows in your browser, "
                                                "and measure their precision")
    review.add_argument("dir", metavar="DIR")
    review.add_argument("--sample", type=int, default=50, metavar="N", help="rows in the sample (default: 50)")
    review.add_argument("--seed", type=int, default=0, help="seed that picks the sample (default: 0)")
    review.add_argument("--rejected", action="store_true",
                        help="sample rejected rows instead, to measure what the checks throw away")
    review.add_argument("--reviewer", default="", help="your name, kept with each label")
    review.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: 8765; 0: any free one)")
    review.set_defaults(handler=_cmd_review)

    export = commands.add_parser("export", help="write a run's accepted rows in another format")
    export.add_argument("dir", metavar="DIR")
    export.add_argument("--format", choices=("xlam", "openai", "sharegpt", "messages", "bfcl"), default="xlam",
                        help="messages: chat messages and tools as transformers' chat templates and TRL take them "
                             "(arguments as objects); bfcl: BFCL question and possible-answer files per category, "
                             "each entry self-checked")
    export.add_argument("--json-strings", action="store_true",
                        help="messages: write tools and each call's arguments as JSON strings (for Arrow/datasets)")
    export.add_argument("--results", action="store_true",
                        help="messages: add each call's sandbox result as a tool message")
    export.add_argument("--out", help="output file (default: standard output); a folder for bfcl")
    export.set_defaults(handler=_cmd_export)
    _debug_everywhere(parser)
    return parser


def _debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """Accept ``--debug`` after any command as well as before it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                     help="show tracebacks and debug logs")
                _debug_everywhere(command)


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
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # e.g. `apigen-local export DIR | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the machine's part: a file that cannot be read or written, a full disk
        if args.debug:
            console.print_exception()
        console.print(f"[bold red]error:[/] {escape(os_error_line(exc))}", highlight=False)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        console.print("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
