"""`samstudio project init|info`, `samstudio export` and `samstudio import`: projects from the shell.

    samstudio project init DIR [--file PROJECT_FILE]
    samstudio project info PROJECT
    samstudio export PROJECT --format coco-rle|coco-polygon|sa1b --out PATH
        [--images all|annotated|done] [--with-proposals]
    samstudio import PROJECT FILE [--images DIR]

PROJECT is a project file or the folder holding `project.samstudio`. Exit status: 0 on
success, 1 when an import or export left something out (each item is printed), 2 when
the project or file cannot be used at all (the message says why).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

FORMATS = ("coco-rle", "coco-polygon", "sa1b")


def register(sub: Any) -> None:
    project = sub.add_parser(
        "project", help="create a project for a folder of images, or describe one"
    )
    psub = project.add_subparsers(dest="project_command", metavar="ACTION")
    init = psub.add_parser("init", help="create the project file for a folder of images")
    init.add_argument("folder", metavar="DIR", help="folder of images (scanned recursively)")
    init.add_argument(
        "--file",
        metavar="PROJECT_FILE",
        help="where to put the project file (default DIR/project.samstudio)",
    )
    init.set_defaults(func=run_init)
    info = psub.add_parser("info", help="counts by image status, category and source")
    info.add_argument("project", metavar="PROJECT", help="project file or its folder")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=run_info)
    project.set_defaults(func=lambda args: _usage(project))

    export = sub.add_parser(
        "export", help="export a project's annotations (COCO RLE/polygons, SA-1B)"
    )
    export.add_argument("project", metavar="PROJECT", help="project file or its folder")
    export.add_argument("--format", required=True, choices=FORMATS, help="output format")
    export.add_argument(
        "--out", required=True, metavar="PATH", help="output file (COCO) or folder (SA-1B)"
    )
    export.add_argument(
        "--images",
        choices=("all", "annotated", "done"),
        default="all",
        help="which images: all (default; images without masks too), annotated (with at "
        "least one mask) or done (marked done)",
    )
    export.add_argument(
        "--with-proposals",
        action="store_true",
        help="also export auto-segment proposals not reviewed yet (left out by default)",
    )
    export.set_defaults(func=run_export)

    imp = sub.add_parser(
        "import", help="import COCO, SA-1B, labelme or SA-V annotations into a project"
    )
    imp.add_argument("project", metavar="PROJECT", help="project file or its folder")
    imp.add_argument("file", metavar="FILE", help="annotation file or folder")
    imp.add_argument("--images", metavar="DIR", help="folder of the images the file refers to")
    imp.set_defaults(func=run_import)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _fail(command: str, message: object) -> int:
    print(f"samstudio {command}: {message}", file=sys.stderr)
    return 2


def run_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from samstudio.core.document import Project, ProjectError

    try:
        with Project.create(Path(args.folder), Path(args.file) if args.file else None) as project:
            images = project.images()
            bad = [img for img in images if img.error]
            print(f"created {project.path} with {len(images)} image(s)")
            for img in bad:
                print(f"  unreadable: {img.error}")
    except ProjectError as exc:
        return _fail("project init", exc)
    return 0


def run_info(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from samstudio.core.document import Project, ProjectError

    try:
        with Project.open(Path(args.project), read_only=True) as project:
            counts = project.counts()
            counts["project"] = {"file": str(project.path), "root": str(project.root)}  # type: ignore[dict-item]
            problems = project.problems
    except ProjectError as exc:
        return _fail("project info", exc)
    if args.json:
        print(json.dumps(counts | {"problems": problems}, indent=2))
        return 0
    print(f"project: {counts['project']['file']}")
    print(f"images under {counts['project']['root']}:")
    for key, value in counts["images"].items():
        print(f"  {key:12s} {value}")
    print("annotations by category:")
    for key, value in sorted(counts["categories"].items()):
        print(f"  {key:12s} {value}")
    print("annotations by source:")
    for key, value in sorted(counts["sources"].items()):
        print(f"  {key:12s} {value}")
    for line in problems:
        print(f"integrity problem: {line}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from samstudio.core.document import CorruptProjectError, Project, ProjectError
    from samstudio.core.document.exchange import ExportScope, export_project

    salvage = False
    try:
        try:
            project = Project.open(Path(args.project), read_only=True)
        except CorruptProjectError as exc:
            return _fail("export", exc)
        with project:
            if project.problems:
                salvage = True
                print(
                    f"{project.path} is damaged; exporting what can still be read", file=sys.stderr
                )
            scope = ExportScope(images=args.images, proposals=args.with_proposals)
            result = export_project(project, args.format, args.out, salvage=salvage, scope=scope)
    except (ProjectError, OSError) as exc:
        return _fail("export", exc)
    for line in result.problems:
        print(line, file=sys.stderr)
    where = f"{len(result.files)} file(s) to {args.out}" if args.format == "sa1b" else str(args.out)
    print(f"wrote {where}: {result.annotations} masks on {result.images} images")
    for line in result.notes():
        print(f"note: {line}")
    return 1 if result.problems else 0


def run_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from samstudio.core.document import Project, ProjectError
    from samstudio.core.document.exchange import import_file
    from samstudio.core.formats.records import FormatError

    if not Path(args.file).exists():
        return _fail("import", f"{args.file}: no such file or folder")
    try:
        with Project.open(Path(args.project)) as project:
            summary = import_file(project, args.file, args.images)
    except (ProjectError, FormatError, OSError) as exc:
        return _fail("import", exc)
    for line in summary.format_issues + summary.conflicts:
        print(line, file=sys.stderr)
    print(
        f"imported {summary.annotations_added} annotation(s) ({summary.format}) into "
        f"{summary.images_matched} image(s); categories added: {len(summary.categories_added)}, "
        f"merged by name: {len(summary.categories_merged)}; conflicts: {len(summary.conflicts)}"
        + (
            f"; {summary.annotations_skipped} already in the project (skipped)"
            if summary.annotations_skipped
            else ""
        )
    )
    return 1 if summary.conflicts else 0
