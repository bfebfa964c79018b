"""The documentation stays true to the repository: README.md is a short front door, every relative link in README.md
and docs/*.md resolves (anchors included), and every repository path they name in backticks exists.

Fast and offline: these tests only read Markdown files and look at the file system."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List, Set, Tuple

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 200

def pages() -> List[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


# ---------------------------------------------------------------------------------------------------------------------
# Markdown scanning: fenced code blocks are not prose (their `# comments` are not headings, their text not links);
# inline code spans hold the paths we check, and are blanked out before links are looked for. Blanking keeps every
# character's offset, so each finding can be reported with its line number.

FENCE_OPEN = re.compile(r"^\s*(```+|~~~+)")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.M)


def without_fences(text: str) -> str:
    """The text with every fenced code block's lines emptied (line count unchanged)."""
    out, fence = [], None
    for line in text.split("\n"):
        m = FENCE_OPEN.match(line)
        if fence is None and m:
            fence = m.group(1)[0] * 3
            out.append("")
        elif fence is not None:
            if line.strip().startswith(fence):
                fence = None
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def _blank(match: re.Match) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def without_code(text: str) -> str:
    """Prose only: fenced blocks and inline code spans blanked out (offsets unchanged)."""
    return CODE_SPAN.sub(_blank, without_fences(text))


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def links(page: Path) -> Iterator[Tuple[int, str]]:
    """(line, target) of every Markdown link and image in the page's prose."""
    prose = without_code(page.read_text(encoding="utf-8"))
    for m in LINK.finditer(prose):
        yield line_of(prose, m.start()), m.group(1)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: formatting dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> Set[str]:
    found: Set[str] = set()
    counts: dict = {}
    for m in HEADING.finditer(without_fences(page.read_text(encoding="utf-8"))):
        base = slug(m.group(2))
        n = counts.get(base, 0)
        counts[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


# A repository path in backticks: one of these top-level folders followed by path characters only, or one of these
# top-level files; optionally `::test_name` (a pytest node id). Anything with other characters (`=`, spaces inside a
# token, `:` followed by a line number, …) is prose or a command, not a path.
PATH = re.compile(r"^(?P<path>(?:bnablate|conf|docs|tests|\.ci)/[\w./-]*|Makefile|pyproject\.toml|constraints\.txt)"
                  r"(?:::(?P<node>[\w\[\]-]+))?$")
PREFIX = re.compile(r"^(?:(?:bnablate|conf|docs|tests|\.ci)/|Makefile|pyproject\.toml|constraints\.txt)")
PLACEHOLDERS = ("NAME", "KEY", "<", "*", "{", "...", "…")


def path_tokens(text: str) -> Iterator[Tuple[int, str]]:
    """(line, token) of every repository path named inside an inline code span; placeholders are skipped."""
    text = without_fences(text)
    for m in CODE_SPAN.finditer(text):
        for tok in m.group(2).split():
            tok = tok.strip("\"'()[]").rstrip(",;")
            if not PREFIX.match(tok) or any(p in tok for p in PLACEHOLDERS):
                continue
            if PATH.match(tok):
                yield line_of(text, m.start()), tok


def missing_path(token: str) -> str | None:
    """Why a backticked path token does not hold, or None when it does."""
    m = PATH.match(token)
    assert m is not None
    target = (ROOT / m.group("path")).resolve()
    if not target.exists():
        return "no such file or folder"
    node = m.group("node")
    if node and not re.search(rf"^\s*(?:async\s+)?def {re.escape(node.split('[')[0])}\(", target.read_text(), re.M):
        return f"no test function {node} in it"
    return None


# ---------------------------------------------------------------------------------------------------------------------


def test_readme_is_a_short_front_door():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines (at most {MAX_README_LINES}): move detail into docs/"


@pytest.mark.parametrize("page", pages(), ids=_page_id)
def test_relative_links_resolve(page: Path):
    bad = []
    for line, target in links(page):
        if SCHEME.match(target):  # http(s):, mailto:: not checked offline
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page.resolve()
        if not dest.exists():
            shown = dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest
            bad.append(f"{_page_id(page)}:{line}: ({target}) -> {shown} does not exist")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{_page_id(page)}:{line}: ({target}) -> no heading with anchor #{anchor} in "
                       f"{dest.relative_to(ROOT)}")
    assert not bad, "broken links:\n" + "\n".join(bad)


@pytest.mark.parametrize("page", pages(), ids=_page_id)
def test_backticked_repository_paths_exist(page: Path):
    text = page.read_text(encoding="utf-8")
    bad = [f"{_page_id(page)}:{line}: `{tok}`: {why}"
           for line, tok in path_tokens(text) if (why := missing_path(tok))]
    assert not bad, "paths named in backticks that are not in the repository:\n" + "\n".join(bad)


def test_the_checks_find_what_they_check():
    """Guard against a scanner that silently matches nothing: the pages name many links and paths."""
    n_links = sum(1 for p in pages() for _ in links(p))
    n_paths = sum(1 for p in pages() for _ in path_tokens(p.read_text(encoding="utf-8")))
    assert n_links >= 30 and n_paths >= 30, (n_links, n_paths)


def test_path_scanner_tells_paths_from_prose():
    text = "\n".join([
        "See `bnablate/layers/blocks.py` and `conf/sweep/placement.yaml`, or run `make test` with `Makefile`.",
        "`tests/test_execution.py::test_cuda_step_loop_never_waits_for_the_gpu` skips without CUDA.",
        "Placeholders: `conf/dataset/NAME.yaml`, `conf/model/*.yaml`, `runs/<name>/x`, `conf/sweep/repro_*.yaml`.",
        "Commands and prose: `bnablate sweep seed=range(5)`, `bnablate.layers.ScratchBatchNorm`, `docs=true`,",
        "`hydra/launcher=joblib`, `runs/placement/report/`, `bnablate/x.py:12`, `OUT_DIR/records/KEY.json`.",
        "A span over two lines: `bnablate run",
        "conf/optim/sgd.yaml`.",
        "```bash",
        "`bnablate/in_a_fence.py`",
        "```",
    ])
    found = [tok for _, tok in path_tokens(text)]
    assert found == ["bnablate/layers/blocks.py", "conf/sweep/placement.yaml", "Makefile",
                     "tests/test_execution.py::test_cuda_step_loop_never_waits_for_the_gpu", "conf/optim/sgd.yaml"]
    assert all(missing_path(tok) is None for tok in found)
    assert missing_path("bnablate/layers/no_such_module.py") == "no such file or folder"
    assert missing_path("tests/test_execution.py::test_that_does_not_exist") is not None


def test_link_scanner_and_anchors(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## The run key\n\n## `bnablate verify`\n\n## A, b: c's d\n\n## A, b: c's d\n\n"
                    "[x](other.md#sec) ![img](findings/a.png) `[not](a_link.md)` [ext](https://example.org)\n"
                    "```\n[in](fence.md)\n# not a heading\n```\n", encoding="utf-8")
    assert [t for _, t in links(page)] == ["other.md#sec", "findings/a.png", "https://example.org"]
    assert anchors(page) == {"title", "the-run-key", "bnablate-verify", "a-b-cs-d", "a-b-cs-d-1"}
