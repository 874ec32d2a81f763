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
    "streamlit", "torch", "umap", "sentence_transformers", "transformers", "sklearn", "ray", "anywidget",
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


# --- one owner per public name, and the README's list in import order (issue 25) ------------------

# Each module's own entry point: `main` runs the command line (cli) or routes the app (ui), by convention.
ENTRY_POINTS = ("main",)


def public_definitions(root: Path, package: str) -> dict[str, list[str]]:
    """Each public top-level name a module defines (def, class, assignment; imports are not definitions)
    → the modules defining it. A module's logger (``log = logging.getLogger(__name__)``) is its own."""
    defined: dict[str, list[str]] = {}
    for module, path in module_names(root, package).items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign) and not _is_logger(node.value):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            else:
                names = []
            for name in names:
                if not name.startswith("_") and name not in ENTRY_POINTS:
                    defined.setdefault(name, []).append(module)
    return defined


def _is_logger(value: ast.expr) -> bool:
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and value.func.attr == "getLogger")


def readme_order(block: str, package: str) -> list[str]:
    """The modules the README's layout block lists, as dotted names, in its order. A line indented under
    ``embedders/`` (and that line itself) names modules of that subpackage, which comes right after them."""
    order: list[str] = []
    sub, sub_indent = None, 0
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        folder = re.match(r"\s*([a-z_]+)/", line)
        if sub and indent <= sub_indent:
            order.append(f"{package}.{sub}")
            sub = None
        if folder and indent > 0:
            sub, sub_indent = folder.group(1), indent
        prefix = f"{package}.{sub}." if sub else f"{package}."
        order.extend(prefix + stem for stem in re.findall(r"\b([a-z_]+)\.py\b", line) if stem != "app")
    return [*order, f"{package}.{sub}"] if sub else order


def order_offences(imports: list[Import], order: list[str], *, last: str) -> list[str]:
    """Each import that names a module listed after (or not before) its importer. Modules under ``last``
    (the UI, listed as one folder at the end) may import anything but each other's order is not checked;
    the package's face imports everything and is not checked (another test keeps modules off it)."""
    position = {name: i for i, name in enumerate(order)}
    end = len(order)

    def where(module: str) -> int:
        return end if module == last or module.startswith(last + ".") else position[module]

    offences = []
    for item in imports:
        if item.module not in position:
            continue
        for target in item.targets:
            if target != item.module and (target in position or target.startswith(last)):
                if where(target) > where(item.module):
                    offences.append(f"{item.where} imports {target}, listed after it")
    return offences


def _readme_block(readme: str) -> str:
    return readme.split("```\nexplorer/\n", 1)[1].split("```", 1)[0]


def test_the_name_and_order_checks_catch_what_they_are_meant_to(tmp_path):
    root = _fake_package(tmp_path, {
        "__init__.py": "from .b import run\n",
        "a.py": "import logging\nlog = logging.getLogger(__name__)\nLIMIT = 3\ndef main():\n    pass\n",
        "b.py": "import logging\nfrom .a import LIMIT\nlog = logging.getLogger(__name__)\nLIMIT = 4\n"
                "def main():\n    pass\ndef run():\n    from .sub.c import helper\n",
        "sub/__init__.py": "from .c import helper\n",
        "sub/c.py": "from ..a import LIMIT\ndef helper():\n    pass\nclass run:\n    pass\n",
        "ui/__init__.py": "from ..b import run\n",
    })
    # LIMIT (b re-binds it) and run are defined twice; an import, a logger and `main` are not definitions of a name.
    assert public_definitions(root, "pkg") == {"LIMIT": ["pkg.a", "pkg.b"], "run": ["pkg.b", "pkg.sub.c"],
                                               "helper": ["pkg.sub.c"]}
    block = "  a.py  b.py   shared\n  sub/   a subpackage\n    c.py   its module\n  ui/   last\n"
    assert readme_order(block, "pkg") == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.sub", "pkg.ui"]
    # b imports c lazily, and c is listed after b: the one offence, named with its line.
    found = scan_imports(root, "pkg")
    assert order_offences(found, readme_order(block, "pkg"), last="pkg.ui") == [
        "pkg.b (line 8) imports pkg.sub.c, listed after it"]
    assert order_offences(found, ["pkg.a", "pkg.sub.c", "pkg.sub", "pkg.b"], last="pkg.ui") == []


def test_no_public_name_is_defined_in_two_modules():
    twice = {name: modules for name, modules in public_definitions(PACKAGE_DIR, "explorer").items()
             if len(modules) > 1}
    assert twice == {}, f"public names defined in more than one module (make one the owner): {twice}"


def test_the_readme_list_is_the_import_order(imports):
    readme = (PACKAGE_DIR.parent / "README.md").read_text(encoding="utf-8")
    order = readme_order(_readme_block(readme), "explorer")
    assert len(order) == len(set(order)), "the README lists a module twice"
    offences = order_offences(imports, order, last="explorer.ui")
    assert offences == [], "imports against the README's order (a module imports only those above it):\n  " + \
        "\n  ".join(offences)


# What explorer/store.py may import from the package: file formats it reads and writes, its errors.
# Everything a save stores besides points and vectors is computed by explorer.map_files and handed in.
STORE_MAY_IMPORT = {
    "explorer.errors": None,  # any name
    "explorer.home": {"explorer_home"},
    "explorer.manifest": {"DEFAULT_KIND", "Manifest"},  # the manifest's schema, read
    "explorer.label_file": {"write_labels"},
    "explorer.points_file": {"NEIGHBORS_COLUMN", "POINTS_FILE", "read_points", "write_points"},
    "explorer.index_file": {"VectorIndex", "file_source", "write_index"},
    "explorer.thumbnails": {"THUMBNAILS_FILE", "read_thumbnail_table", "write_thumbnail_table"},
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
