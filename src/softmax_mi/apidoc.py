"""The API reference (docs/api.md), generated from the docstrings of the public names and the commands' ``--help``.

    python -m softmax_mi.apidoc --write docs/api.md     # regenerate
    python -m softmax_mi.apidoc --check docs/api.md     # exit 2 when the file is out of date (tests/test_apidoc.py)

The public names are ``softmax_mi.__all__``; :data:`SECTIONS` puts each in one section (a test checks that every
public name is placed exactly once). Signatures are printed as written in the source (``from __future__ import
annotations`` keeps annotations as strings), so the text is the same on every machine.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
from pathlib import Path

import softmax_mi

# Section title -> (one-line introduction, public names in reading order).
SECTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Maps": ("torchcam-style extractors for any classifier whose head is global average pooling + a linear layer, "
             "and `Localiser`: classes, maps, boxes and overlays for images.",
             ("CAM", "InfoCAM", "InfoCAMLeastLikely", "Localiser")),
    "Label shift": ("Test priors unlike the training prior: shifted test sets, the decision rules under a known or "
                    "estimated prior q, their metrics and the MI read-out under q (softmax_mi.label_shift).",
                    ("shifted_prior", "shifted_subset", "prior_weight", "evaluate_shift", "em_prior", "bbse_prior",
                     "GaussianShiftTruth", "evaluate_gaussian_shift", "InMemoryClassifier")),
    "Losses": ("`nn.Module` losses built from the training class counts (`nn.CrossEntropyLoss` is plain softmax).",
               ("PCSoftmaxLoss", "LogitAdjustedLoss", "ClassBalancedLoss", "LDAMLoss")),
    "Mutual information": ("A trained classifier read as an MI estimator, with a confidence interval (nats).",
                           ("mi_from_logits", "mi_from_features", "MIEstimate")),
    "Scoring maps (WSOL)": ("GT-known / Top-1 loc, MaxBoxAcc and MaxBoxAccV2 of any maps, in this project's convention "
                            "or clovaai/wsolevaluation's.", ("score_maps", "WSOLScores")),
}

COMMANDS: tuple[str, ...] = ("localise", "score-maps", "mi", "readme")  # `softmax-mi <command> --help` texts included in the reference
HELP_WIDTH = "100"  # argparse wraps at $COLUMNS: fixed, so the text does not depend on the terminal


def placed_names() -> list[str]:
    return [name for _, names in SECTIONS.values() for name in names]


def _doc(obj) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip() or "(no docstring)"


def _signature(name: str, obj) -> str:
    """``name(params) -> return`` without ``self`` and without the quotes of string annotations."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return name
    parameters = [p for p in signature.parameters.values() if p.name != "self"]
    text = str(signature.replace(parameters=parameters))
    return name + re.sub(r"(: |-> )'([^']*)'", r"\1\2", text)


def _own_methods(cls) -> list[tuple[str, object]]:
    """Public methods and properties defined by ``cls`` or a softmax-mi base class (not torch's)."""
    found = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("softmax_mi"):
            continue
        for name, member in vars(klass).items():
            if (name.startswith("_") and name != "__call__") or not (callable(member) or isinstance(member, property)):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if member.__doc__:
                found[name] = member
    return sorted(found.items(), key=lambda item: (item[0] != "__call__", item[0]))


def _entry(name: str) -> list[str]:
    obj = getattr(softmax_mi, name)
    kind = "class" if inspect.isclass(obj) else "function"
    lines = [f"### `{name}`", "", f"{kind} in `{obj.__module__}`", "", "```python", _signature(name, obj), "```", "",
             _doc(obj), ""]
    if inspect.isclass(obj):
        for method_name, method in _own_methods(obj):
            shown = method.fget if isinstance(method, property) else method
            signature = method_name if isinstance(method, property) else _signature(method_name, shown)
            lines += [f"- `{signature}`" + (" (property)" if isinstance(method, property) else ""), "",
                      "  " + _doc(shown).replace("\n", "\n  "), ""]
    return lines


def _command_help(command: str) -> str:
    from softmax_mi.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH
    try:
        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return sub.choices[command].format_help().rstrip()
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


def render() -> str:
    """The whole reference as Markdown."""
    lines = ["# API reference", "",
             "<!-- generated by `python -m softmax_mi.apidoc --write docs/api.md` from the docstrings; do not edit -->",
             "", f"softmax-mi {softmax_mi.__version__}. Every name below imports from the top level "
             "(`from softmax_mi import CAM`); `import softmax_mi` itself stays torch-free.", ""]
    for title, (intro, names) in SECTIONS.items():
        lines += [f"## {title}", "", intro, ""]
        for name in names:
            lines += _entry(name)
    if COMMANDS:
        lines += ["## Commands", "", "`softmax-mi --help` lists every command; these work on your own files.", ""]
        for command in COMMANDS:
            lines += [f"### `softmax-mi {command}`", "", "```text", _command_help(command), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m softmax_mi.apidoc", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="FILE", help="write the reference (docs/api.md)")
    group.add_argument("--check", metavar="FILE", help="exit 2 when FILE differs from the generated text")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        path = Path(args.check)
        if not path.exists() or path.read_text() != text:
            print(f"{path} is out of date: run `python -m softmax_mi.apidoc --write {path}`", file=sys.stderr)
            return 2
        return 0
    from softmax_mi.io import atomic_path

    with atomic_path(args.write) as temporary:
        temporary.write_text(text)
    print(f"wrote {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
