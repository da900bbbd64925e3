"""docs/architecture.md names every folder and every module, and nothing that does not exist."""

import re
import subprocess

from devstack.topology import ROOT

PAGE = ROOT / "docs" / "architecture.md"
#: Folders whose every Python module the page names.
DESCRIBED = ("common", "functions", "devstack", "bench", "tests/support")


def named_paths() -> set[str]:
    return set(re.findall(r"^\| `([^`]+)` \|", PAGE.read_text(), re.MULTILINE))


def tracked() -> list[str]:
    return subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()


def test_every_path_named_exists() -> None:
    missing = sorted(path for path in named_paths() if not (ROOT / path).exists())
    assert not missing, f"docs/architecture.md names what does not exist: {missing}"


def test_every_top_level_folder_is_named() -> None:
    folders = {path.split("/")[0] + "/" for path in tracked() if "/" in path}
    assert folders <= named_paths(), f"not in docs/architecture.md: {sorted(folders - named_paths())}"


def test_every_module_is_named() -> None:
    named = named_paths()
    modules = {
        path
        for path in tracked()
        if path.endswith(".py")
        and path.startswith(DESCRIBED)
        and not path.endswith(("/__main__.py",))
        and (not path.endswith("/__init__.py") or path == "common/storage/__init__.py")
        and not path.startswith("common/migrations/")
    }
    missing = sorted(modules - named)
    assert not missing, f"docs/architecture.md does not describe: {missing}"


def test_the_page_is_the_one_list_of_modules() -> None:
    """A package's docstring points at the page rather than keep a list that drifts from it."""
    for package in ("bench", "devstack", "tests/support"):
        docstring = (ROOT / package / "__init__.py").read_text()
        assert "docs/architecture.md" in docstring, package
        listed = re.findall(r"^(\w+) {2,}\S", docstring, re.MULTILINE)
        assert not listed, f"{package}/__init__.py lists modules of its own: {listed}"
