"""Entry point of the `samstudio` command.

Each module in COMMAND_MODULES exposes `register(subparsers)`, which adds its
sub-commands and sets `func` on their parsers. Modules must import only the
standard library at import time: heavy imports (torch, onnxruntime) go inside
the command functions, so `samstudio --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import sys

# what only a source installation has (training, .pth checkpoints, ONNX export): a
# command that needs one of them in the desktop build says so instead of a traceback
TORCH_ONLY = frozenset({"torch", "torchvision", "segment_anything", "onnx"})

COMMAND_MODULES = [
    "samstudio.cli.info_cmd",
    "samstudio.cli.project_cmd",
    "samstudio.cli.model_cmd",
    "samstudio.cli.predict_cmd",
    "samstudio.cli.convert_cmd",
    "samstudio.cli.autoseg_cmd",
    "samstudio.cli.train_cmd",
    "samstudio.cli.evaluate_cmd",
    "samstudio.cli.study_cmd",
    "samstudio.cli.inspect_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="samstudio", description="SAM Studio: segment images with Segment Anything."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _threads_after_the_command(parser)
    return parser


THREADS_HELP = (
    "CPU threads for PyTorch and ONNX Runtime (default: one per core; on a busy machine 1 "
    "can be many times faster, because spinning threads wait for each other)"
)


def _threads_after_the_command(parser: argparse.ArgumentParser) -> None:
    """Accept --threads after any (sub)command too (`samstudio evaluate --threads 1 ...`),
    as well as before it: every command's parser gets the option, and it sets the same
    value only when given there (SUPPRESS: an absent one leaves the top level's)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in set(action.choices.values()):
            if not any("--threads" in a.option_strings for a in child._actions):
                child.add_argument(
                    "--threads",
                    type=int,
                    metavar="N",
                    default=argparse.SUPPRESS,
                    help=THREADS_HELP,
                )
            _threads_after_the_command(child)


def set_threads(n: int) -> None:
    """Use `n` CPU threads: read by PyTorch when it is first imported (OMP_NUM_THREADS;
    it is set here too in case torch is already loaded) and by
    `onnx_backend.default_session_options` (SAMSTUDIO_THREADS)."""
    os.environ["OMP_NUM_THREADS"] = str(n)
    os.environ["SAMSTUDIO_THREADS"] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)


# Options whose value is a list of coordinates, which may start with a minus sign: argparse
# takes "--box -50,10,200,300" for an unknown option "-50,10,200,300" (found by review).
COORDINATE_OPTIONS = frozenset({"--point", "--box"})
_NEGATIVE_NUMBER = re.compile(r"^-(\d|\.\d)")


def _coordinate_option(arg: str) -> bool:
    """`arg` is --point or --box, or an abbreviation argparse accepts for one (--bo)."""
    return len(arg) > 2 and any(name.startswith(arg) for name in COORDINATE_OPTIONS)


def join_negative_values(argv: list[str]) -> list[str]:
    """`--box -50,10,200,300` -> `--box=-50,10,200,300` (the same for --point and the
    abbreviations argparse accepts), so a coordinate list starting with a minus sign is
    read as the option's value."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.extend(argv[i:])
            break
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if _coordinate_option(arg) and nxt is not None and _NEGATIVE_NUMBER.match(nxt):
            out.append(f"{arg}={nxt}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(join_negative_values(sys.argv[1:] if argv is None else argv))
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be at least 1")
        set_threads(args.threads)
    if args.version:
        from samstudio import __version__

        print(__version__)
        return 0
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in TORCH_ONLY or importlib.util.find_spec(top) is not None:
            raise  # another module, or a broken installation: the traceback says more
        build = (
            " (the desktop build runs ONNX models only)" if getattr(sys, "frozen", False) else ""
        )
        print(
            f"samstudio {args.command}: this needs {top}, which this installation does not "
            f"have{build}; for training, .pth checkpoints and ONNX export, install SAM Studio "
            "from source with PyTorch (see README.md)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
