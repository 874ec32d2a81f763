"""Embedding Explorer: load → embed → project → (cluster, search) → draw, as a plain library."""

from __future__ import annotations

__version__ = "0.1.0"

from .cache import EmbeddingCache, EmbeddingResult, embed_texts
from .embed import Embedder, HashingEmbedder, SentenceTransformerEmbedder, load_embedder
from .errors import ExplorerError, InputError, MapNotFoundError, ModelError
from .load import LoadedTable, load_table
from .pipeline import BuildResult, build_map
from .project import Projection, ProjectionConfig, project
from .search import SearchResult, nearest_neighbors, search_map, search_similar
from .store import SavedMap, Workspace
from .texts import TextSelection, compose_texts, detect_text_columns

__all__ = [
    "BuildResult", "EmbeddingCache", "EmbeddingResult", "Embedder", "ExplorerError", "HashingEmbedder",
    "InputError", "LoadedTable", "MapNotFoundError", "ModelError", "Projection", "ProjectionConfig",
    "SavedMap", "SearchResult", "SentenceTransformerEmbedder", "TextSelection", "Workspace",
    "build_map", "compose_texts", "detect_text_columns", "embed_texts", "load_embedder", "load_table",
    "nearest_neighbors", "project", "search_map", "search_similar",
]
