"""Embedding Explorer: load → embed → project → (cluster, search) → draw, as a plain library."""

from __future__ import annotations

__version__ = "0.1.0"

from .cache import EmbeddingCache, EmbeddingResult, embed_texts
from .cluster import ClusterConfig, Clustering, ClusterLevel, cluster_map
from .curate import remove_and_reproject
from .embed import Embedder, HashingEmbedder, SentenceTransformerEmbedder, load_embedder
from .errors import ExplorerError, InputError, MapNotFoundError, ModelError
from .image_embed import ClipEmbedder, PixelFeatureEmbedder, load_image_embedder
from .image_pipeline import ImageBuildResult, build_image_map
from .image_search import ImageSearchResult, search_images_by_example, search_images_by_text
from .images import ImageLimits, ImageSet, open_image, read_image_table, read_images
from .labels import ClusterLabel, Contrast, contrast_terms, label_clusters, label_levels
from .limits import Limits
from .load import LoadedTable, load_table
from .map_clusters import add_clusters, cluster_levels, cluster_table, point_labels, rename_cluster
from .pipeline import BuildResult, build_map
from .project import Projection, ProjectionConfig, project
from .search import SearchResult, nearest_neighbors, search_map, search_similar
from .store import SavedMap, Workspace
from .texts import TextSelection, compose_texts, detect_text_columns
from .thumbnails import load_thumbnail, load_thumbnails, thumbnail_data_uri

__all__ = [
    "BuildResult", "EmbeddingCache", "EmbeddingResult", "Embedder", "ExplorerError", "HashingEmbedder",
    "InputError", "LoadedTable", "MapNotFoundError", "ModelError", "Projection", "ProjectionConfig",
    "SavedMap", "SearchResult", "SentenceTransformerEmbedder", "TextSelection", "Workspace",
    "build_map", "compose_texts", "detect_text_columns", "embed_texts", "load_embedder", "load_table",
    "nearest_neighbors", "project", "search_map", "search_similar",
]
# Image maps (issue 4).
__all__ += [
    "ClipEmbedder", "ImageBuildResult", "ImageLimits", "ImageSearchResult", "ImageSet",
    "PixelFeatureEmbedder", "build_image_map", "load_image_embedder", "load_thumbnail", "load_thumbnails",
    "open_image", "read_image_table", "read_images", "search_images_by_example", "search_images_by_text",
    "thumbnail_data_uri",
]
# Clusters, labels, curation and contrast (issue 5).
__all__ += [
    "ClusterConfig", "ClusterLabel", "ClusterLevel", "Clustering", "Contrast", "add_clusters",
    "cluster_levels", "cluster_map", "cluster_table", "contrast_terms", "label_clusters",
    "label_levels", "point_labels", "remove_and_reproject", "rename_cluster",
]
# Caps on what one upload may hold (issue 7).
__all__ += ["Limits"]
