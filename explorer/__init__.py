"""Embedding Explorer: load → embed → project → (cluster, search) → draw, plus the store, as a plain library.

Every kind of data (a table of text, a set of images) flows through the same steps: `read_corpus` makes
one Corpus of any source, `build_map` runs the whole path and saves the map, `search_map` searches a
saved map of any kind.
"""

from __future__ import annotations

from .cluster import ClusterConfig, Clustering, ClusterLevel, cluster_map
from .corpus import Corpus, ReadOptions, detect_kind, read_corpus
from .curate import relayout_map, remove_and_reproject
from .draw import MapStyle
from .duplicates import Duplicates, near_duplicates
from .embed import EmbeddingCache, EmbeddingResult, embed_cached
from .embedders import (
    ClipEmbedder,
    CorpusEmbedder,
    Embedder,
    HashingEmbedder,
    PixelFeatureEmbedder,
    SentenceTransformerEmbedder,
    embedder_for,
    load_embedder,
)
from .errors import ExplorerError, InputError, MapChangedError, MapNotFoundError, ModelError
from .export import export_points, to_csv_bytes, to_html_bytes, to_parquet_bytes
from .filters import category_mask, keyword_mask
from .grow import AddResult, add_rows
from .images import ImageLimits, ImageSet, open_image, read_image_table, read_images
from .labels import ClusterLabel, Contrast, contrast_terms, label_clusters, label_levels
from .limits import Limits
from .load import LoadedTable, load_table
from .map_clusters import (
    ClusterCard,
    add_clusters,
    cluster_cards,
    cluster_levels,
    cluster_table,
    label_layers,
    named_points,
    point_labels,
    rename_cluster,
    same_group,
)
from .pipeline import BuildResult, EmbedOptions, build_map
from .project import Projection, ProjectionConfig, project
from .refine import RefineResult, pending_refinements, refine_map
from .search import SearchResult, nearest_neighbors, search_map, search_similar
from .sql_filter import sql_mask
from .store import SavedMap, Workspace
from .texts import TextSelection, compose_texts, detect_text_columns
from .thumbnails import thumbnail_data_uri
from .trust import Trust, add_trust, trust_scores
from .version import __version__

__all__ = [
    "__version__",
    # errors and limits, shared by every step
    "ExplorerError", "InputError", "MapChangedError", "MapNotFoundError", "ModelError", "Limits",
    # load: tables, images, texts → one Corpus
    "LoadedTable", "load_table", "ImageLimits", "ImageSet", "open_image", "read_image_table", "read_images",
    "TextSelection", "compose_texts", "detect_text_columns", "Corpus", "detect_kind", "read_corpus",
    # embed: the models behind one protocol, and the cached embedding of a corpus
    "Embedder", "ClipEmbedder", "CorpusEmbedder", "HashingEmbedder", "PixelFeatureEmbedder",
    "SentenceTransformerEmbedder", "embedder_for", "load_embedder",
    "EmbeddingCache", "EmbeddingResult", "embed_cached",
    # project
    "Projection", "ProjectionConfig", "project",
    # cluster and label
    "ClusterConfig", "ClusterLabel", "ClusterLevel", "Clustering", "Contrast", "add_clusters", "cluster_levels",
    "cluster_map", "cluster_table", "contrast_terms", "label_clusters", "label_layers", "label_levels", "named_points",
    "point_labels", "rename_cluster", "same_group", "ClusterCard", "cluster_cards",
    # search and filter
    "SearchResult", "nearest_neighbors", "search_map", "search_similar", "category_mask", "keyword_mask", "sql_mask",
    # draw and export
    "MapStyle", "widget", "thumbnail_data_uri", "export_points", "to_csv_bytes",
    "to_html_bytes", "to_parquet_bytes",
    # the whole path, its refinement by the transformer, and the store
    "BuildResult", "build_map", "ReadOptions", "EmbedOptions", "RefineResult", "pending_refinements", "refine_map",
    "SavedMap", "Workspace",
    "remove_and_reproject", "relayout_map",
    # maps that grow, and where they mislead
    "AddResult", "add_rows", "Trust", "add_trust", "trust_scores", "Duplicates", "near_duplicates",
]


def widget(map_or_name, **options):
    """The map as a notebook widget (an anywidget.AnyWidget: explorer.notebook.MapWidget); anywidget is
    imported only here, so `import explorer` stays light."""
    from .notebook import map_widget

    return map_widget(map_or_name, **options)
