"""Safe floors: no direct dependency's lower bound in pyproject.toml allows a release with a known
vulnerability that this app's code path reaches, and each such line names its CVE.

The table is the record of what was checked (issue 24): a package, the first release past the last
fix this app needs, and the CVE that fix is for. Raising a floor further is always fine; lowering
one below its minimum, or dropping its CVE note, fails here.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"

# (package, minimum safe lower bound, the CVE of the last fix the app needs). Each reason is in
# the comment beside the requirement in pyproject.toml.
SAFE_FLOORS: list[tuple[str, str, str]] = [
    ("pyarrow", "14.0.1", "CVE-2023-47248"),  # pickled PyExtensionType in an uploaded Parquet file
    ("pillow", "12.3.0", "CVE-2026-54058"),  # every uploaded image goes through Image.open's format probes
    ("torch", "2.10", "CVE-2026-24747"),  # weights_only unpickler, reached by a model folder's pytorch_model.bin
    ("transformers", "5.5", "CVE-2026-5241"),  # a model folder's config.json re-enabling remote code
    ("sentence-transformers", "6.0", "CVE-2026-68770"),  # a local model folder's modules.json importing its code
    ("scikit-learn", "1.5", "CVE-2024-5206"),  # TfidfVectorizer kept dropped tokens in the saved fast map
    ("streamlit", "1.54", "CVE-2026-33682"),  # SSRF in the component request handler
    ("plotly", "6.0", "CVE-2023-46308"),  # prototype pollution in the bundled plotly.js before 2.25.2
    ("numpy", "1.22", "CVE-2021-41496"),  # buffer overflow in array construction
    ("scipy", "1.10", "CVE-2023-25399"),  # refcount error in ndimage
    ("ray", "2.55.0", "CVE-2026-32981"),  # dashboard path traversal (the engine starts Ray with no dashboard too)
    ("duckdb", "1.1.0", "CVE-2024-41672"),  # sniff_csv read files with enable_external_access off (the SQL filter)
]

# A PEP 508 line's name, as tools/lowest_versions.py reads it (one reader for both).
_spec = importlib.util.spec_from_file_location("lowest_versions", ROOT / "tools" / "lowest_versions.py")
lowest_versions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lowest_versions)


def _requirements() -> dict[str, str]:
    """Every direct dependency (and pinned extra) by normalised name: its specifier."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"]) + list(project["optional-dependencies"].get("ray", []))
    found = {}
    for line in lines:
        m = lowest_versions._REQ.match(line)
        found[lowest_versions._normalise(m.group("name"))] = m.group("spec")
    return found


def _comment_beside(name: str) -> str:
    """The comment lines directly above ``name``'s requirement in pyproject.toml, and any on its line."""
    lines = PYPROJECT.read_text(encoding="utf-8").splitlines()
    pattern = re.compile(rf'^\s*"{re.escape(name)}(\[[^\]]*\])?\s*[<>=~!;,"]', re.IGNORECASE)
    for i, line in enumerate(lines):
        if pattern.match(line):
            block = [line.partition("#")[2]]
            j = i - 1
            while j >= 0 and lines[j].strip().startswith("#"):
                block.append(lines[j])
                j -= 1
            return "\n".join(block)
    return ""


@pytest.mark.parametrize(("package", "minimum", "cve"), SAFE_FLOORS, ids=[row[0] for row in SAFE_FLOORS])
def test_floor_is_at_or_above_its_last_security_fix(package, minimum, cve):
    spec = _requirements().get(package)
    assert spec is not None, f"{package} is not a direct dependency any more: drop it from SAFE_FLOORS"
    bound = lowest_versions.lower_bound(spec)
    assert bound is not None, f"{package}{spec} has no lower bound; {cve} needs >= {minimum}"
    assert Version(bound) >= Version(minimum), f"{package}>={bound} allows releases with {cve} (fixed in {minimum})"


@pytest.mark.parametrize(("package", "minimum", "cve"), SAFE_FLOORS, ids=[row[0] for row in SAFE_FLOORS])
def test_floor_names_its_cve_in_pyproject(package, minimum, cve):
    assert cve in _comment_beside(package), f"the comment beside {package} in pyproject.toml must name {cve}"


def test_lowest_environment_stays_on_safe_floors():
    """make test-lowest installs what tools/lowest_versions.py pins: those pins are safe too."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    pinned = dict(line.split("==", 1) for line in lowest_versions.pins(project["dependencies"]))
    for package, minimum, cve in SAFE_FLOORS:
        if package in pinned:
            version = pinned[package].split("+")[0]
            assert Version(version) >= Version(minimum), f"make test-lowest pins {package}=={version} ({cve})"

