"""Commands of ``softmax-mi`` in their own modules: those that work on a user's own model and files (``localise``,
``score-maps``, ``mi``) and ``readme`` (the README's generated blocks from the result tables).

Each module here defines ``register(sub)``: it adds one subparser to the ``softmax-mi`` parser and sets its ``func``
(called with the parsed arguments; it may return an exit status, none means 0; raise
:class:`softmax_mi.cli.CLIError` for a one-line user error, status 2). Modules import
torch only inside ``func``, so ``softmax-mi --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib

MODULES: tuple[str, ...] = ("localise", "score_maps", "mi", "readme")  # the order of the commands in `softmax-mi --help`


def register_all(sub) -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)


def add_command(sub, name: str, *, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """One command's subparser: ``help`` in ``softmax-mi --help``, ``description`` and the examples of ``epilog``
    (kept as written) in ``softmax-mi NAME --help``."""
    return sub.add_parser(name, help=help, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)



def read_frame(path: str, option: str):
    """A CSV or Parquet file (by suffix: ``.parquet``/``.pq``, else CSV) as a pandas DataFrame with stripped column
    names; a missing or unreadable file is a one-line :class:`softmax_mi.cli.CLIError` naming ``option``, the file
    and the fix."""
    from pathlib import Path

    import pandas as pd

    from softmax_mi.cli import CLIError

    file = Path(path)
    if not file.is_file():
        raise CLIError(f"{option} {path}: no such file (check the path)")
    parquet = file.suffix.lower() in (".parquet", ".pq")
    try:
        frame = pd.read_parquet(file) if parquet else pd.read_csv(file)
    except Exception as error:  # noqa: BLE001 - pandas and pyarrow raise many kinds for a user's broken file
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CLIError(f"{option} {path}: cannot read it as {'Parquet' if parquet else 'CSV'} ({first}); "
                       "write it with pandas' to_parquet or to_csv") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame
