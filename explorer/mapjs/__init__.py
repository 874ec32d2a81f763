"""The map's one JavaScript core (classic scripts on ``globalThis.ExplorerMap``, one concern a file) and
its hosts' scripts: the app's component, the offline HTML export and the notebook widget all load
these same files, in this order."""

from __future__ import annotations

from importlib import resources

# Load order: constants first, the wiring (map.js) after the parts it wires; any other core file in
# this folder (facets.js) follows.
FILES = ("constants.js", "layer.js", "view.js", "points.js", "pick.js", "select.js", "overlays.js", "labels.js",
         "legend.js", "hover.js", "map.js")


def core_files() -> list[str]:
    """The core's file names in load order: FILES, then the folder's other .js files by name."""
    here = resources.files(__package__)
    others = sorted(p.name for p in here.iterdir() if p.name.endswith(".js") and p.name not in FILES)
    return [*FILES, *others]


def source(name: str) -> str:
    """One file of the core (or of ``hosts/``) as text."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def core_script() -> str:
    """The core's files concatenated in load order, each headed by its name (one script for a page or a widget)."""
    return "\n".join(f"// ---- explorer/mapjs/{name}\n{source(name)}" for name in core_files())


def host_script(host: str) -> str:
    """The core followed by one host's own file (``hosts/<host>.js``): the whole script of the export or the widget."""
    return core_script() + "\n" + source(f"hosts/{host}.js")
