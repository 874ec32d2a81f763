"""A map's manifest (manifest.json) as typed sections: the code reads attributes, not string keys.

Every section keeps the keys it does not know and remembers which keys the file had, so
``Manifest.from_dict(d).to_dict() == d`` for a manifest of any version: a map saved by older or
newer code opens, and is written back without losing anything. Values stay as JSON gave them (lists,
not tuples), which is what makes the round trip exact. Nothing here imports another module of the
package: every step may read a map's manifest.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

# Maps saved before the manifest recorded its kind are all text maps (image maps always said so).
DEFAULT_KIND = "text"
# A field's metadata names how its JSON value becomes sections: one section, a dict of them, a list.
_SECTION, _SECTION_MAP, _SECTION_LIST = "section", "section_map", "section_list"


def _section(kind: type) -> Any:
    # An absent section reads as an empty one (false, every field None), so readers need no guard; a
    # section the file holds as null stays None (a fast build's "mode": null), for the round trip.
    return field(default_factory=kind, metadata={_SECTION: kind})


def _section_map(kind: type) -> Any:
    return field(default=None, metadata={_SECTION_MAP: kind})


def _section_list(kind: type) -> Any:
    return field(default=None, metadata={_SECTION_LIST: kind})


@dataclass(frozen=True, kw_only=True)
class Section:
    """A part of the manifest: its known keys as fields, the unknown ones in ``extra``."""

    # Keys this code does not know, kept as they were (a newer version's, or a removed field's).
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    # The keys the dict had, in its order: a key that was there is written back even when None or
    # equal to the default, and one that was not is left out unless code set it since.
    keys: tuple[str, ...] = field(default=(), repr=False, compare=False)

    _BOOKKEEPING: ClassVar[frozenset[str]] = frozenset({"extra", "keys"})

    @classmethod
    def known(cls) -> tuple[dataclasses.Field, ...]:
        """The fields that stand for manifest keys (not the bookkeeping)."""
        return _known_fields(cls)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Self:
        """The section a manifest's dict holds (None or {} give an empty one)."""
        data = dict(data or {})
        known = {f.name: f for f in cls.known()}
        values = {key: _typed(known[key], value) for key, value in data.items() if key in known}
        extra = {key: value for key, value in data.items() if key not in known}
        return cls(**values, extra=extra, keys=tuple(data))

    def to_dict(self) -> dict[str, Any]:
        """The section as the manifest's JSON holds it (unknown keys included, in their order)."""
        out = {}
        present = set(self.keys)
        values = {f.name: getattr(self, f.name) for f in self.known()}
        defaults = _defaults(type(self))
        for key in (*self.keys, *values, *self.extra):
            if key in out:
                continue
            if key in values:
                if key in present or values[key] != defaults[key]:
                    out[key] = _plain(values[key])
            elif key in self.extra:
                out[key] = self.extra[key]
        return out

    def __bool__(self) -> bool:
        # As its dict would be: a section read from {} (or never written) is false.
        return bool(self.keys) or bool(self.to_dict())


@functools.cache
def _known_fields(cls: type) -> tuple[dataclasses.Field, ...]:
    return tuple(f for f in dataclasses.fields(cls) if f.name not in Section._BOOKKEEPING)


@functools.cache
def _defaults(cls: type) -> dict[str, Any]:
    # Read-only: an empty section, or None, per field (so a default is never mutated through this).
    return {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            for f in _known_fields(cls)}


def _typed(f: dataclasses.Field, value: Any) -> Any:
    """A JSON value as the field's sections; a value of another shape (None, a string) stays as it is."""
    if (kind := f.metadata.get(_SECTION)) and isinstance(value, Mapping):
        return kind.from_dict(value)
    if (kind := f.metadata.get(_SECTION_MAP)) and isinstance(value, Mapping) \
            and all(isinstance(v, Mapping) for v in value.values()):
        return {key: kind.from_dict(v) for key, v in value.items()}
    if (kind := f.metadata.get(_SECTION_LIST)) and isinstance(value, list) \
            and all(isinstance(v, Mapping) for v in value):
        return [kind.from_dict(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """Sections back to dicts, inside dicts and lists too."""
    if isinstance(value, Section):
        return value.to_dict()
    if isinstance(value, dict):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, kw_only=True)
class SourceSection(Section):
    """What the rows were read from: its name, format, content hash and text encoding."""

    name: str | None = None
    format: str | None = None
    sha256: str | None = None
    encoding: str | None = None


@dataclass(frozen=True, kw_only=True)
class ProjectionSection(Section):
    """How the map was laid out: ProjectionConfig's settings plus what was actually done."""

    method: str | None = None
    n_neighbors: int | None = None
    min_dist: float | None = None
    metric: str | None = None
    seed: int | None = None
    sample_rows: int | None = None
    method_used: str | None = None
    input_dimension: int | None = None
    fit_rows: int | None = None


@dataclass(frozen=True, kw_only=True)
class ImagesSection(Section):
    """An image map's files: the path and label columns, the thumbnails' format, what was skipped."""

    path_column: str | None = None
    label_column: str | None = None
    thumbnail_format: str | None = None
    skipped_count: int | None = None
    skipped: list | None = None


@dataclass(frozen=True, kw_only=True)
class ModeSection(Section):
    """The build mode chosen (modes.ModeChoice), why, and the waits it announced."""

    mode: str | None = None
    reason: str | None = None
    estimated_seconds: float | None = None
    requested: str | None = None
    refine: bool | None = None
    search_seconds: float | None = None
    automatic: bool | None = None


@dataclass(frozen=True, kw_only=True)
class RefinementSection(Section):
    """The progressive build's refinement: its state (pending, done, failed) and what it did."""

    state: str | None = None
    model: str | None = None
    model_id: str | None = None
    max_seq_length: int | None = None
    from_model: str | None = None
    requested: str | None = None
    automatic: bool | None = None
    estimated_seconds: float | None = None
    # Which vectors search reads now: "fast" (TF-IDF), "titles", "full" (pipeline.FAST_STAGE …); a map
    # refined before stages existed has none (read as "full" once done).
    stage: str | None = None
    title_column: str | None = None
    displacement: Any = None
    rows: int | None = None
    n_cached: int | None = None
    labels: Any = None
    seconds: dict | None = None
    finished: str | None = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class GivenSection(Section):
    """The user's own inputs: the vectors' source and dimension, layout columns, neighbours column."""

    vectors: str | None = None
    dimension: int | None = None
    layout: list[str] | None = None
    neighbors: str | None = None
    query_model: str | None = None


@dataclass(frozen=True, kw_only=True)
class TrustSection(Section):
    """The trust measure's summary: the map's mean and the neighbourhood sizes it compared."""

    overall: float | None = None
    k_map: int | None = None
    k_space: int | None = None
    exact: bool | None = None
    seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class BatchSection(Section):
    """One batch of rows the map holds: the build's (0) or one `add_rows` placed."""

    batch: int | None = None
    rows: int | None = None
    added: str | None = None
    source: SourceSection | None = _section(SourceSection)
    novel: int | None = None
    # The new rows unlike anything on the map, drawn apart (row ids).
    apart_rows: list[int] | None = None


@dataclass(frozen=True, kw_only=True)
class ScreeningSection(Section):
    """A literature review's screening: every decision in the order made ({row_id, decision, at, who})."""

    history: list[dict] | None = None


@dataclass(frozen=True, kw_only=True)
class ClusterSection(Section):
    """One cluster of a level: its id, label (the user's or the automatic one), size, terms, centre."""

    id: int | None = None
    label: str | None = None
    size: int | None = None
    terms: list | None = None
    auto_label: str | None = None
    renamed: bool | None = None
    centre: list[float] | None = None
    parent: int | None = None


@dataclass(frozen=True, kw_only=True)
class LevelSection(Section):
    """One level of clusters (coarse, fine): its points column, parameters and clusters."""

    column: str | None = None
    params: dict | None = None
    unclustered: int | None = None
    clusters: list[ClusterSection] | None = _section_list(ClusterSection)


@dataclass(frozen=True, kw_only=True)
class ClustersSection(Section):
    """The map's clusters: the config they were made with, the space, and each level, coarse first."""

    config: dict | None = None
    space: str | None = None
    levels: dict[str, LevelSection] | None = _section_map(LevelSection)
    notes: list[str] | None = None
    seconds: dict | None = None


@dataclass(frozen=True, kw_only=True)
class Manifest(Section):
    """A map's manifest: what was read, how it was embedded, laid out, clustered, refined and grown."""

    name: str | None = None
    # Which map this is across renames (a refinement saves to the map that has it).
    map_id: str | None = None
    # Which save of the map this is (store.VERSION_KEY); old maps have none.
    map_version: str | None = None
    kind: str = DEFAULT_KIND
    rows: int = 0
    embedded_rows: int = 0
    text_columns: list[str] | None = None
    template: str | None = None
    model_id: str = ""
    model: str | None = None
    model_hash: str | None = None
    dimension: int | None = None
    projection: ProjectionSection | None = _section(ProjectionSection)
    source: SourceSection | None = _section(SourceSection)
    notes: list[str] | None = None
    seconds: dict[str, float] | None = None
    created: str = ""
    version: str | None = None
    saved: str | None = None
    mode: ModeSection | None = _section(ModeSection)
    refinement: RefinementSection | None = _section(RefinementSection)
    given: GivenSection | None = _section(GivenSection)
    text_search: str | None = None
    text_search_reason: str | None = None
    images: ImagesSection | None = _section(ImagesSection)
    clusters: ClustersSection | None = _section(ClustersSection)
    trust: TrustSection | None = _section(TrustSection)
    batches: list[BatchSection] | None = _section_list(BatchSection)
    screening: ScreeningSection | None = _section(ScreeningSection)
    engine: dict | None = None
    parent: dict | None = None

    @property
    def cluster_levels(self) -> dict[str, LevelSection]:
        """The levels of clusters by name, coarse first ({} for a map never clustered)."""
        return dict((self.clusters.levels if self.clusters else None) or {})
