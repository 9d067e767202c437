"""Every reference the code, the parameters and the README make to the documentation resolves to a file a user has.

- Nothing cites a file outside the repository (the project's internal notes): the paper, its original code and
  its bugs are documented in ``docs/paper.md``, peer projects in ``docs/peers.md``.
- Every ``docs/paper.md §X`` / ``paper §X`` (and ``docs/peers.md §X``) names a numbered section of that file, every
  ``docs/paper.md#<anchor>`` (and ``docs/peers.md#<anchor>``, and each in-page link of the two files) a heading or an
  explicit anchor there, and every bug id ``B<n>`` a row of the bug table in ``docs/paper.md §6``.
- Claim ids ``C1``–``C4`` and experiment ids ``E1``–``E8`` cited in the README exist in ``docs/paper.md §0``.

Only reads files: fast.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "docs/paper.md"
PEERS = REPO / "docs/peers.md"

#: Folders and files a user gets whose references must resolve (relative to the repository root).
SCANNED_DIRS = ("src", "workflow", "bench", "tests", "params", "docs", ".ci")
SCANNED_FILES = ("README.md", "params.yaml", "dvc.yaml", "Makefile", "pyproject.toml",
                 "data/raw/README.md")
TEXT_SUFFIXES = {".py", ".smk", ".yaml", ".yml", ".md", ".rst", ".txt", ".toml", ".cfg", ".json", ".sh", ".ini"}

# Spelled in pieces so that this file does not match itself (nor a plain grep for the names).
INTERNAL_NOTES = re.compile(r"\b(?:" + "|".join(("PAP" + "ER", "PEE" + "RS", "DES" + "IGN")) + r")\.md\b")

NUMBER = r"\d+(?:\.\d+)*"
RANGE = rf"({NUMBER})(?:\s*[–-]\s*({NUMBER}))?"
PAPER_SECTION = re.compile(rf"(?i)(?<![\w/.-])(?:docs/)?paper(?:\.md)?\s*§\s*{RANGE}")
PEERS_SECTION = re.compile(rf"(?<![\w/.-])(?:docs/)?peers\.md\s*§\s*{RANGE}")
PAPER_ANCHOR = re.compile(r"(?<![\w/.-])(?:docs/)?paper\.md#([\w-]+)")
PEERS_ANCHOR = re.compile(r"(?<![\w/.-])(?:docs/)?peers\.md#([\w-]+)")
LOCAL_ANCHOR = re.compile(r"\]\(#([\w-]+)\)")
BARE_SECTION = re.compile(rf"(?<![\w.])§\s*{RANGE}")
BUG_ID = re.compile(r"\bB(\d{1,3})\b")
CLAIM_ID = re.compile(r"\bC(\d)\b")
EXPERIMENT_ID = re.compile(r"\bE(\d)\b")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$", re.MULTILINE)
EXPLICIT_ANCHOR = re.compile(r"""<a\s+(?:id|name)=["']([\w-]+)["']""")
BUG_ROW = re.compile(r"^\|\s*<a id=\"b(\d+)\"></a>B(\d+)\s*\|", re.MULTILINE)


def scanned_files() -> list[Path]:
    files = [REPO / name for name in SCANNED_FILES if (REPO / name).is_file()]
    for folder in SCANNED_DIRS:
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and (
                    path.suffix in TEXT_SUFFIXES or path.name in ("Snakefile", "run")):
                files.append(path)
    return files


def read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (word characters, '-' and spaces kept),
    spaces to '-'."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    result = set(EXPLICIT_ANCHOR.findall(text))
    for _, heading in HEADING.findall(text):
        base = slug(heading)
        count = seen.get(base, 0)
        result.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return result


def sections(text: str) -> set[str]:
    """Numbers of the numbered headings: '## 3. Foo' → '3', '### 3.1 Bar' → '3.1'."""
    found = set()
    for _, heading in HEADING.findall(text):
        match = re.match(rf"({NUMBER})\.?\s", heading)
        if match:
            found.add(match.group(1))
    return found


def cited_sections(pattern: re.Pattern, text: str) -> list[str]:
    return [number for match in pattern.finditer(text) for number in match.groups() if number]


@pytest.fixture(scope="module")
def corpus() -> dict[str, str]:
    texts = {}
    for path in scanned_files():
        text = read(path)
        if text is not None:
            texts[rel(path)] = text
    return texts


@pytest.fixture(scope="module")
def paper() -> str:
    assert PAPER.is_file(), "docs/paper.md is missing"
    return PAPER.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def peers() -> str:
    assert PEERS.is_file(), "docs/peers.md is missing"
    return PEERS.read_text(encoding="utf-8")


def test_no_reference_to_internal_notes(corpus):
    hits = [f"{name}:{text[: match.start()].count(chr(10)) + 1}: {match.group(0)}"
            for name, text in corpus.items() for match in INTERNAL_NOTES.finditer(text)]
    assert not hits, ("files cite notes a user does not have; cite docs/paper.md or docs/peers.md instead:\n"
                      + "\n".join(hits))


def test_the_scan_sees_the_code_and_the_readme(corpus):
    assert "README.md" in corpus and "src/softmax_mi/cam.py" in corpus and "params.yaml" in corpus
    assert rel(Path(__file__)) in corpus


def test_paper_sections_exist(corpus, paper):
    known = sections(paper)
    assert {"0", "1.6", "2", "3.1", "3.2", "4", "6"} <= known, sorted(known)
    missing = []
    for name, text in corpus.items():
        pattern = BARE_SECTION if name == "docs/paper.md" else PAPER_SECTION
        for number in cited_sections(pattern, text):
            if number not in known:
                missing.append(f"{name}: §{number}")
    assert not missing, f"sections cited but not in docs/paper.md ({sorted(known)}):\n" + "\n".join(missing)


def test_peers_sections_exist(corpus, peers):
    known = sections(peers)
    missing = [f"{name}: docs/peers.md §{number}" for name, text in corpus.items()
               for number in cited_sections(PEERS_SECTION, text) if number not in known]
    assert not missing, f"sections cited but not in docs/peers.md ({sorted(known)}):\n" + "\n".join(missing)


def test_anchors_exist(corpus, paper, peers):
    targets = {"docs/paper.md": anchors(paper), "docs/peers.md": anchors(peers)}
    missing = []
    for name, text in corpus.items():
        for pattern, target in ((PAPER_ANCHOR, "docs/paper.md"), (PEERS_ANCHOR, "docs/peers.md")):
            missing += [f"{name}: {target}#{a}" for a in pattern.findall(text) if a not in targets[target]]
        if name in targets:  # in-page links of the two documents
            missing += [f"{name}: #{a}" for a in LOCAL_ANCHOR.findall(text) if a not in targets[name]]
    assert not missing, "links to anchors that do not exist:\n" + "\n".join(missing)


def test_bug_table_is_complete_and_numbered(paper):
    rows = BUG_ROW.findall(paper)
    assert rows, "docs/paper.md has no bug table rows ('| <a id=\"bN\"></a>BN | …')"
    assert all(a == b for a, b in rows), f"anchor and id disagree: {[r for r in rows if r[0] != r[1]]}"
    numbers = [int(a) for a, _ in rows]
    assert numbers == list(range(1, len(numbers) + 1)), f"bug ids must run B1…Bn without gaps: {numbers}"


def test_cited_bug_ids_are_described(corpus, paper):
    described = {int(a) for a, _ in BUG_ROW.findall(paper)}
    missing = sorted({f"{name}: B{n}" for name, text in corpus.items() for n in BUG_ID.findall(text)
                      if int(n) not in described})
    assert not missing, f"bug ids cited but not in the table of docs/paper.md §6 (B1–B{max(described)}):\n" \
        + "\n".join(missing)


def test_claims_and_experiments_of_the_readme_exist(corpus, paper):
    claims = set(re.findall(r"^\|\s*\*\*C(\d)\*\*\s*\|", paper, re.MULTILINE))
    experiments = set(re.findall(r"^\|\s*E(\d)\s*\|", paper, re.MULTILINE))
    assert claims == {"1", "2", "3", "4"} and experiments == {str(i) for i in range(1, 9)}, (claims, experiments)
    readme = corpus["README.md"]
    cited = set(CLAIM_ID.findall(readme))  # a range "C1–C4" names both ends
    assert cited and cited <= claims, f"README cites claims {sorted(cited - claims)} that docs/paper.md §0.3 lacks"
    cited = set(EXPERIMENT_ID.findall(readme))
    assert cited and cited <= experiments, \
        f"README cites experiments {sorted(cited - experiments)} that docs/paper.md §0.4 lacks"


def test_patterns_catch_what_they_should():
    assert INTERNAL_NOTES.search("see " + "PAP" + "ER.md §2") and not INTERNAL_NOTES.search("docs/paper.md §2")
    assert cited_sections(PAPER_SECTION, "(docs/paper.md §1.5–1.6), paper §3.1; Paper §4") == ["1.5", "1.6", "3.1",
                                                                                                 "4"]
    assert cited_sections(PAPER_SECTION, "Belghazi et al. (2018, §3.2); docs/peers.md §5") == []
    assert cited_sections(PEERS_SECTION, "docs/peers.md §5") == ["5"]
    assert slug("2. Synthetic MI experiment (E1–E3)") == "2-synthetic-mi-experiment-e1e3"
    assert slug("3.1 Imbalanced MNIST (E4)") == "31-imbalanced-mnist-e4"
    assert sections("## 3. A\n### 3.1 B\n## Notes\n") == {"3", "3.1"}
    assert BUG_ID.findall("B12 and B13, not B×C nor SHA-256") == ["12", "13"]


def _python_names(text: str) -> set[str]:
    return {name.rstrip(".") for name in re.findall(r"softmax_mi(?:\.[A-Za-z_]\w*)+", text)}


def _resolves(name: str) -> bool:
    """``softmax_mi.a.b.c``: the longest importable module prefix, then attributes for the rest."""
    import importlib

    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for attribute in parts[end:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False


@pytest.mark.parametrize("path", ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))])
def test_every_module_and_function_the_docs_name_exists(path):
    """Code moves (e.g. the restructure into library + thin stages): a name the README or docs/ cite must still be
    importable, else the reader is sent to code that is not there."""
    missing = sorted(name for name in _python_names((REPO / path).read_text()) if not _resolves(name))
    assert not missing, f"{path} names {missing}: update the reference to where the code lives now"


CONFIGFILE_THEN_TARGET = re.compile(r"--configfile(?:[ \t]+[\w./-]+\.ya?ml)+[ \t]+(?!-)([a-z]\w*)\b")


def test_no_snakemake_target_after_configfile(corpus):
    """``--configfile`` takes every following word as a file (Snakemake's nargs="+"): a target written after it is
    read as a config file and the run stops with FileNotFoundError. Targets go first."""
    offenders = [f"{name}: …{match.group(0)}" for name, text in corpus.items()
                 for match in CONFIGFILE_THEN_TARGET.finditer(text) if "snakemake" in text[:match.start()][-200:]]
    assert not offenders, offenders
    assert CONFIGFILE_THEN_TARGET.search("snakemake --cores 2 --configfile params/x.yaml " + "benchmark_all")
    assert not CONFIGFILE_THEN_TARGET.search("snakemake all --configfile params/x.yaml --cores 2")
