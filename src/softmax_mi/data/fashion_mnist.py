"""Fetch Fashion-MNIST's official IDX files from Debian's package ``dataset-fashion-mnist`` (no root needed).

    python -m softmax_mi.data.fashion_mnist              # → data/raw/fashion-mnist/ (what `make fashion-mnist` runs)
    python -m softmax_mi.data.fashion_mnist /some/folder
    python -m softmax_mi.data.fashion_mnist --if-absent  # only when the pipeline finds none (what `make run` runs)

``apt-get download`` fetches the .deb from the machine's Debian mirror (a package registry, no dataset host),
its SHA-256 is checked against the version pinned here, ``dpkg-deb -x`` unpacks it in a scratch folder, and only
the four gzipped IDX files are moved into the target, which appears whole or not at all. The pipeline finds them
there (``softmax_mi.data.mnist.FASHION_SEARCH_PATHS``) and adds Fashion-MNIST to the classification grid.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from softmax_mi.data.mnist import IDX_FILES, DataError, fashion_mnist_folder, find_idx_folder, idx_file
from softmax_mi.io import file_digest

DEB_PACKAGE = "dataset-fashion-mnist"
DEB_VERSION = "0.0~git20200523.55506a9-1"
DEB_SHA256 = "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0"
DEFAULT_TARGET = "data/raw/fashion-mnist"


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise DataError(f"`{' '.join(command)}` failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def fetch(target: str | Path = DEFAULT_TARGET, sha256: str | None = DEB_SHA256) -> Path:
    """Put the four Fashion-MNIST IDX files in ``target`` (a no-op when they are there); returns the folder."""
    target = Path(target)
    found = find_idx_folder([target])
    if found is not None:
        return found
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DataError(f"{tool} not found: Fashion-MNIST is fetched from Debian's package {DEB_PACKAGE}; on "
                            f"another system put the four official IDX files ({', '.join(IDX_FILES.values())}, "
                            f".gz or plain) in {target}/ or set classification.fashion_mnist_dir")
    if target.exists() and any(target.iterdir()):
        raise DataError(f"{target}: exists but does not hold the four IDX files; remove it and fetch again")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fashion-mnist-") as scratch:
        scratch = Path(scratch)
        _run(["apt-get", "download", DEB_PACKAGE], cwd=scratch)
        deb = next(scratch.glob("*.deb"), None)
        if deb is None:
            raise DataError(f"apt-get download {DEB_PACKAGE} left no .deb (is the package in this machine's lists? "
                            f"apt-get update)")
        digest = file_digest(deb)
        if sha256 is not None and digest != sha256:
            raise DataError(f"{deb.name}: SHA-256 {digest}, expected {sha256} ({DEB_PACKAGE} {DEB_VERSION}); the "
                            f"mirror serves another version: check it, then pass --sha256 {digest}")
        _run(["dpkg-deb", "-x", deb.name, "root"], cwd=scratch)
        folder = find_idx_folder([scratch / "root"])
        if folder is None:
            raise DataError(f"{deb.name} holds no complete set of Fashion-MNIST IDX files")
        staged = scratch / "idx"
        staged.mkdir()
        for stem in IDX_FILES.values():
            source = idx_file(folder, stem)
            shutil.move(source, staged / source.name)
        if target.exists():
            target.rmdir()  # empty (checked above)
        os.replace(staged, target)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", nargs="?", default=DEFAULT_TARGET)
    parser.add_argument("--sha256", default=DEB_SHA256, help="expected SHA-256 of the .deb ('none' skips the check)")
    parser.add_argument("--if-absent", action="store_true",
                        help="do nothing when the pipeline already finds Fashion-MNIST ($SOFTMAX_MI_FASHION_MNIST, "
                             "Debian's paths, data/raw/fashion-mnist)")
    args = parser.parse_args(argv)
    found = fashion_mnist_folder() if args.if_absent else None
    if found is not None:
        print(f"Fashion-MNIST IDX files in {found}")
        return
    try:
        folder = fetch(args.target, None if args.sha256 == "none" else args.sha256)
    except DataError as error:
        print(f"fashion-mnist: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"Fashion-MNIST IDX files in {folder}")


if __name__ == "__main__":
    main()
