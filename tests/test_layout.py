"""The package's shape (issue 13): one-way imports, a face nobody inside imports, Streamlit only in
explorer/ui, a light `import explorer`, and one function per step (no text/image twins left)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import explorer

PACKAGE_DIR = Path(explorer.__file__).resolve().parent
HEAVY_MODULES = (
    "streamlit", "torch", "umap", "sentence_transformers", "transformers", "sklearn", "ray",
)
# The twins issue 13 merged: one name per step is left (build_map, search_map, load_embedder, ...).
TWIN_NAMES = (
    "build_image_map", "search_images_by_text", "search_images_by_example", "load_image_embedder",
    "embed_texts", "embed_image_set", "ImageBuildResult", "ImageSearchResult",
)
TWIN_MODULES = ("image_pipeline.py", "image_search.py", "image_embed.py", "fast_embed.py")


@dataclass(frozen=True)
class Import:
    """One import statement of a module, resolved: the modules it names inside the package."""

    module: str  # the importing module, e.g. explorer.search
    line: int
    targets: tuple[str, ...]  # internal modules it loads (a package's __init__ counts as the package)
    face: bool  # whether it takes a name from the package's own __init__ (its face)
    external: tuple[str, ...]  # top-level names of the outside packages it imports

    @property
    def where(self) -> str:
        return f"{self.module} (line {self.line})"


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package by dotted name; a package's __init__.py is the package."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def scan_imports(root: Path, package: str) -> list[Import]:
    """Every import in every module of the package, at module level, in functions, anywhere."""
    modules = module_names(root, package)
    found = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            found.extend(_resolve(node, name, is_package=is_package, package=package, modules=modules))
    return found


def _resolve(node: ast.AST, module: str, *, is_package: bool, package: str, modules: dict) -> Iterator[Import]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield _named(alias.name, module, node.lineno, package=package, modules=modules)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            here = module.split(".") if is_package else module.split(".")[:-1]
            base_parts = here[: len(here) - (node.level - 1)]
            base = ".".join([*base_parts, *([node.module] if node.module else [])])
        else:
            base = node.module or ""
        if base != package and not base.startswith(package + "."):
            yield Import(module, node.lineno, (), False, (base.split(".")[0],))
            return
        submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
        takes_names = len(submodules) < len(node.names)  # some name is an attribute of `base` itself
        targets = [*submodules, *([_known(base, modules)] if takes_names else [])]
        yield Import(module, node.lineno, tuple(targets), takes_names and base == package, ())
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
          and node.func.attr == "import_module" and node.args
          and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        yield _named(node.args[0].value, module, node.lineno, package=package, modules=modules)


def _named(name: str, module: str, line: int, *, package: str, modules: dict) -> Import:
    """`import a.b.c`: the module it names (inside the package) or the outside package."""
    if name != package and not name.startswith(package + "."):
        return Import(module, line, (), False, (name.split(".")[0],))
    target = _known(name, modules)
    return Import(module, line, (target,), target == package, ())


def _known(name: str, modules: dict) -> str:
    """The longest prefix of a dotted name that is a module of the package."""
    parts = name.split(".")
    while len(parts) > 1 and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts)


def find_cycle(imports: list[Import]) -> list[str]:
    """One import cycle as [a, b, ..., a], or [] when the graph has none (self-imports ignored)."""
    graph: dict[str, set[str]] = {}
    for item in imports:
        graph.setdefault(item.module, set()).update(t for t in item.targets if t != item.module)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def cycle_report(imports: list[Import], cycle: list[str]) -> str:
    """The cycle with the line of each import that makes it."""
    steps = []
    for a, b in zip(cycle, cycle[1:], strict=False):
        lines = sorted(i.line for i in imports if i.module == a and b in i.targets)
        steps.append(f"{a} imports {b} (line {', '.join(map(str, lines))})")
    return "import cycle: " + " -> ".join(cycle) + "\n  " + "\n  ".join(steps)


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return scan_imports(PACKAGE_DIR, "explorer")


# --- the analysis itself catches what it is meant to (a fake package in tmp_path) ---------------


def _fake_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_scan_sees_function_level_imports_faces_and_streamlit(tmp_path):
    root = _fake_package(tmp_path, {
        "__init__.py": "from .a import run\n__version__ = '1'\n",
        "a.py": "def run():\n    from .sub.b import helper\n    return helper()\n",
        "sub/__init__.py": "",
        "sub/b.py": "import pkg.a\nfrom . import c\n\ndef helper():\n    pass\n",
        "sub/c.py": "def later():\n    import streamlit as st\n    from pkg import sub\n"
                    "    from .. import __version__\n",
    })
    found = scan_imports(root, "pkg")
    # a imports b inside a function only, and b imports a: still a cycle.
    assert find_cycle(found) == ["pkg.a", "pkg.sub.b", "pkg.a"]
    assert "pkg.a -> pkg.sub.b -> pkg.a" in cycle_report(found, find_cycle(found))
    assert [i.where for i in found if i.face] == ["pkg.sub.c (line 4)"]
    assert [i.module for i in found if "streamlit" in i.external] == ["pkg.sub.c"]
    # `from pkg import sub` names a subpackage and `from . import c` a module: neither is the face.
    assert ("pkg.sub",) in [i.targets for i in found if i.module == "pkg.sub.c"]
    assert ("pkg.sub.c",) in [i.targets for i in found if i.module == "pkg.sub.b"]
    # Without b's import of a and c's of the face (which the face's own imports close into a loop),
    # nothing is left of the cycle.
    one_way = [i for i in found if not i.face and i.where != "pkg.sub.b (line 1)"]
    assert find_cycle(one_way) == []


# --- the real package -----------------------------------------------------------------------------


def test_no_import_cycle_inside_the_package(imports):
    cycle = find_cycle(imports)
    assert not cycle, cycle_report(imports, cycle)


def test_no_module_imports_the_package_face(imports):
    # The face (explorer/__init__.py) imports the modules; a module importing it back is a cycle
    # waiting to happen (the old pipeline took __version__ from it: explorer.version holds it now).
    offenders = [i.where for i in imports if i.face and i.module != "explorer"]
    assert offenders == [], f"modules that import the package face: {offenders}"


def test_only_explorer_ui_imports_streamlit(imports):
    offenders = [i.where for i in imports if "streamlit" in i.external
                 and i.module != "explorer.ui" and not i.module.startswith("explorer.ui.")]
    assert offenders == [], f"Streamlit imported outside explorer/ui: {offenders}"
    assert any("streamlit" in i.external for i in imports), "the scan found no Streamlit import at all"


def test_import_leaves_heavy_libraries_unloaded():
    # A fresh interpreter: in this one, other tests have long since imported torch and friends.
    code = (
        "import json, sys, explorer; "
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_public_api_is_one_list_of_names_that_resolve():
    names = explorer.__all__
    assert names and len(names) == len(set(names)), "explorer.__all__ lists a name twice"
    missing = [name for name in names if getattr(explorer, name, None) is None]
    assert missing == [], f"names in explorer.__all__ that the package lacks: {missing}"


def test_no_text_and_image_twins_are_left(imports):
    assert [name for name in TWIN_NAMES if hasattr(explorer, name)] == []
    assert [name for name in TWIN_MODULES if (PACKAGE_DIR / name).exists()] == []
    defined = {}
    for module, path in module_names(PACKAGE_DIR, "explorer").items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name in TWIN_NAMES:
                defined[node.name] = module
    assert defined == {}, f"twins still defined: {defined}"


def test_the_readme_lists_every_module_of_the_package():
    """README's "How the library is laid out" names each module of explorer/ (and of explorer/embedders), and
    only those."""
    readme = (PACKAGE_DIR.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("```\nexplorer/\n", 1)[1].split("```", 1)[0]
    listed = set(re.findall(r"\b([a-z_]+)\.py\b", block)) - {"app"}
    modules = {path.stem for folder in (PACKAGE_DIR, PACKAGE_DIR / "embedders") for path in folder.glob("*.py")}
    assert listed == modules - {"__init__"}, (sorted(modules - {"__init__"} - listed), sorted(listed - modules))


# What explorer/store.py may import from the package: file formats it reads and writes, its errors.
# Everything a save stores besides points and vectors is computed by explorer.map_files and handed in.
STORE_MAY_IMPORT = {
    "explorer.errors": None,  # any name
    "explorer.label_file": {"write_labels"},
    "explorer.neighbor_column": {"NEIGHBORS_COLUMN", "read_points", "write_points"},
    "explorer.thumbnails": {"THUMBNAILS_FILE", "read_thumbnail_table", "write_thumbnail_table"},
    "explorer.vector_index": {"VectorIndex", "file_source", "write_index"},
    # SavedMap.texts(): a row's text as the manifest's columns or template compose it, read, not derived.
    "explorer.texts": {"compose_texts"},
}


def test_the_store_imports_no_computing_module():
    """store.py only stores: it imports (anywhere, at module level or in a function) nothing of the steps
    that compute (neighbours, projection, embedding, clusters, labels, trust, search, the derived files),
    only the file-format helpers named in STORE_MAY_IMPORT."""
    tree = ast.parse((PACKAGE_DIR / "store.py").read_text(encoding="utf-8"))
    taken: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("explorer")):
            module = "explorer." + (node.module or "") if node.level else node.module
            taken.setdefault(module.rstrip("."), set()).update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "explorer":
                    taken.setdefault(alias.name, set()).add("*")
    allowed = {module: STORE_MAY_IMPORT.get(module, set()) for module in taken}
    refused = {module: sorted(names - allowed[module]) for module, names in taken.items()
               if allowed[module] is not None and names - allowed[module]}
    assert refused == {}, f"explorer/store.py imports what computes: {refused}"
