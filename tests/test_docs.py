"""The docs: the generated reference pages (docs/cli.md, docs/params.md) are up to date with the argument
parser and the params classes, and every relative link and #anchor in README.md and docs/ resolves."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from seqpipe import docs_pages
from tests.conftest import REPO, run

PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def prose(text: str) -> str:
    """The markdown without its code blocks and code spans (a link in code is no link)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text without markup, lowercase, punctuation dropped (letters,
    digits, `_`, `-` and spaces kept), spaces to `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)      # a link's text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor of `page`'s headings; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if base in seen else base)
        seen[base] = seen.get(base, 0) + 1
    return found


def test_github_slugs() -> None:
    assert slug("Same inputs, same bytes, on any x86-64 CPU") == "same-inputs-same-bytes-on-any-x86-64-cpu"
    assert slug("`stac` (crop_ndvi)") == "stac-crop_ndvi"
    assert slug("params.yaml") == "paramsyaml"
    assert slug("Scale-out: multi-process training (DDP)") == "scale-out-multi-process-training-ddp"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):     # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists() or REPO not in (resolved, *resolved.parents):
            broken.append(f"{target}: no such file in the repository")
        elif anchor and (resolved.suffix != ".md" or anchor not in anchors(resolved)):
            broken.append(f"{target}: no heading with anchor #{anchor} in {resolved.relative_to(REPO)}")
    assert not broken, broken


def test_readme_is_a_landing_page_that_links_every_docs_page() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    linked = {target.partition("#")[0] for target in LINK.findall(prose(readme))}
    assert {f"docs/{page.name}" for page in (REPO / "docs").glob("*.md")} <= linked


def test_the_generated_pages_are_up_to_date() -> None:
    """As `seqpipe dvc-yaml --check`: run `make docs` after changing the parser or a params class."""
    assert docs_pages.write(REPO, REPO / "params.yaml", check=True) == []


def test_seqpipe_docs_writes_the_pages_and_check_fails_when_one_is_stale(tmp_path: Path) -> None:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    assert run(["seqpipe", "docs"], tmp_path).stdout == "docs/cli.md, docs/params.md written\n"
    for name in ("cli.md", "params.md"):
        assert (tmp_path / "docs" / name).read_bytes() == (REPO / "docs" / name).read_bytes()
    with (tmp_path / "docs/params.md").open("a", encoding="utf-8") as page:
        page.write("an edit by hand\n")
    stale = run(["seqpipe", "docs", "--check"], tmp_path, check=False)
    assert stale.returncode == 1 and stale.stdout == "" and stale.stderr.splitlines() == [
        "seqpipe: error: docs/params.md: out of date with the argument parser, the params classes or "
        "params.yaml; run `make docs` (seqpipe docs)"], stale.stderr
    assert (tmp_path / "docs/params.md").read_text(encoding="utf-8").endswith("an edit by hand\n")
