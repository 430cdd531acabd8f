"""
Fast tier: the docs cannot drift from the tree.  Every repository path a
doc names in backquotes exists; docs/layout.md names every file of the
formula and of its tests (in its tables' first column), docs/testing.md
every test module.  A path may be a pattern: ``havip/{nginx,haproxy}/init.sls``
names both files, ``test/unit/utils/test_havip_*.py`` (or ``<helper>`` in
the place of the ``*``) every file it matches.
"""

import fnmatch
import re

import pytest

from test.saltcall import REPO

DOCS = REPO / "docs"
# The top-level entries a path in backquotes starts with (hidden ones are
# the venvs' and the tools' caches, except these two).
TOPS = {entry.name for entry in REPO.iterdir() if not entry.name.startswith(".")} | {".ci", ".yamllint"}
# Every file below these folders has its line in docs/layout.md.
LAID_OUT = ("_beacons", "_modules", "_runners", "_states", "_utils", "havip", "test", ".ci")
TICKED = re.compile(r"`([^`\s]+)`")
BRACES = re.compile(r"\{([^{}]*)\}")
PLACEHOLDER = re.compile(r"<[^<>]*>")


def expanded(pattern):
    """``a/{b,c}.sls`` -> ``a/b.sls``, ``a/c.sls``."""
    found = BRACES.search(pattern)
    if not found:
        return [pattern]
    return [path for choice in found.group(1).split(",")
            for path in expanded(pattern[:found.start()] + choice + pattern[found.end():])]


def named(text):
    """The repository paths (or patterns) in ``text``'s backquotes."""
    return sorted({path for ticked in TICKED.findall(text) for path in expanded(PLACEHOLDER.sub("*", ticked))
                   if path.split("/")[0] in TOPS})


def exists(pattern):
    return any(REPO.glob(pattern.rstrip("/"))) if "*" in pattern else (REPO / pattern).exists()


def files_below(*folders):
    """The repository's files below ``folders``, as paths relative to it
    (no bytecode, no package markers)."""
    return sorted(str(path.relative_to(REPO)) for folder in folders for path in (REPO / folder).rglob("*")
                  if path.is_file() and "__pycache__" not in path.parts and path.name != "__init__.py")


def unnamed(paths, patterns):
    return [path for path in paths if not any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)]


def layout_paths():
    """What docs/layout.md's tables name in their first column."""
    rows = (DOCS / "layout.md").read_text().splitlines()
    return named("\n".join(row.split("|")[1] for row in rows if row.startswith("| `")))


@pytest.mark.parametrize("doc", sorted(path.name for path in DOCS.glob("*.md")))
def test_every_path_a_doc_names_exists(doc):
    missing = [path for path in named((DOCS / doc).read_text()) if not exists(path)]
    assert not missing, f"docs/{doc} names what is not in the tree: {missing}"


def test_the_layout_has_a_line_for_every_file_of_the_formula_and_its_tests():
    top_level = [entry.name for entry in REPO.iterdir() if entry.is_file() and not entry.name.startswith(".")]
    files = sorted(top_level) + [".yamllint"] + files_below(*LAID_OUT)
    missing = unnamed(files, layout_paths())
    assert not missing, f"docs/layout.md has no line for {missing}"


def test_the_testing_doc_names_every_test_module():
    modules = [path for path in files_below("test") if fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], "test_*.py")]
    missing = unnamed(modules, named((DOCS / "testing.md").read_text()))
    assert not missing, f"docs/testing.md does not name {missing}"
