"""Source bundles: one zip per function, by allow-list, byte-identical on every run and machine.

A bundle holds ``functions/<name>/main.py`` (only that function's), every ``*.py`` of ``common/`` plus
the data files ``common`` reads (:data:`COMMON_DATA_FILES`), and ``requirements.txt``; nothing else.
The function keeps its repository path because its ``main.py`` puts the directory two levels up (the
source root) on ``sys.path``; Terraform points the buildpack at it with ``GOOGLE_FUNCTION_SOURCE``.

Reproducible: entries sorted, every timestamp 1980-01-01, mode 0644, stored (no compression, so no
zlib version can change the bytes), Unix as the creating system, no directory entries.

``python -m deploy.bundle [--out dist] [NAME ...]`` builds the bundles of every function (or those
named) and prints one line per bundle: name, path, MD5.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Files of common/ that are not Python but are read at run time. A new one must be added here; a test
# fails on any other non-Python file under common/.
COMMON_DATA_FILES = ("common/prices.json",)

_EPOCH = (1980, 1, 1, 0, 0, 0)
_MODE = 0o100644  # regular file, rw-r--r--


class BundleError(RuntimeError):
    """A bundle cannot be built (unknown function, missing file)."""


def function_names(root: Path = ROOT) -> list[str]:
    """Every function of the repository: the folders of ``functions/`` that hold a ``main.py``."""
    return sorted(p.parent.name for p in (root / "functions").glob("*/main.py"))


def bundle_members(name: str, root: Path = ROOT) -> list[str]:
    """The sorted repository-relative paths that make up ``name``'s bundle; raises BundleError for a
    function without ``functions/<name>/main.py``."""
    entry = f"functions/{name}/main.py"
    if not (root / entry).is_file():
        raise BundleError(f"no function {name!r}: {entry} does not exist")
    common = [
        p.relative_to(root).as_posix()
        for p in (root / "common").rglob("*.py")
        if "__pycache__" not in p.parts
    ]
    members = {entry, "requirements.txt", *common, *COMMON_DATA_FILES}
    missing = sorted(m for m in members if not (root / m).is_file())
    if missing:
        raise BundleError(f"bundle {name}: missing {', '.join(missing)}")
    return sorted(members)


def write_bundle(name: str, out_dir: Path, root: Path = ROOT) -> Path:
    """Write ``out_dir/<name>.zip`` (replacing it) and return its path; raises BundleError."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.zip"
    partial = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        for member in bundle_members(name, root):
            info = zipfile.ZipInfo(member, date_time=_EPOCH)
            info.create_system = 3
            info.external_attr = _MODE << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, (root / member).read_bytes())
    partial.replace(target)
    return target


def build(names: Iterable[str], out_dir: Path, root: Path = ROOT) -> dict[str, Path]:
    """Build the bundles of ``names``; returns name -> zip path. Raises BundleError."""
    return {name: write_bundle(name, out_dir, root) for name in names}


def main(argv: list[str] | None = None) -> int:
    """Command line: build bundles, print ``name path md5`` per bundle; exit 1 on a BundleError."""
    parser = argparse.ArgumentParser(prog="deploy.sh build", description="Build one source zip per function.")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    parser.add_argument("names", nargs="*", help="functions to build (default: every functions/<name>/main.py)")
    args = parser.parse_args(argv)
    try:
        built = build(args.names or function_names(), args.out)
    except BundleError as exc:
        print(f"build: {exc}", file=sys.stderr)
        return 1
    for name, path in built.items():
        print(f"{name}\t{path}\t{hashlib.md5(path.read_bytes()).hexdigest()}")  # noqa: S324 - names the object, as Terraform's filemd5
    return 0


if __name__ == "__main__":
    sys.exit(main())
