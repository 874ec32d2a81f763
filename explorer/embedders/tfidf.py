"""The fast embedder for large datasets: TF-IDF + truncated SVD (LSA) fitted on the corpus itself.

The transformer reads about five abstracts a second on two CPU cores; this reads about a thousand.
Its vectors live in a space fitted to one corpus, so the fitted pieces (vocabulary, idf weights,
SVD components) are saved in the workspace under the map's model id, and a search query goes
through the very same pieces. They are stored as JSON and .npy arrays, never pickles, so opening
a map runs no code from its folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError
from ..hashing import bytes_hash, combined_hash
from ..home import explorer_home
from ..progress import ProgressFn, no_progress
from ..row_view import RowView
from ..texts import pick_texts
from .base import DEFAULT_BATCH_SIZE, EmbedderBase, l2_normalise

log = logging.getLogger(__name__)

FAST_MODEL = "tfidf-svd"
DIMENSION = 256
# Words in more than half the documents say little about any of them (a language-free stop list).
MAX_DF = 0.5
# A word must occur in two documents to be kept, once the corpus is big enough for that to hold.
MIN_DF_ROWS = 200
# The SVD is fitted on a random sample this large and then applied to every row: beyond it more
# rows change the components little and cost time linearly.
FIT_ROWS = 20_000
# The vocabulary and idf weights are learnt from at most this many rows (a seeded sample), and every
# row is then read in chunks of EMBED_CHUNK_ROWS: the sparse matrix of a million abstracts would hold
# ~100M entries (over a gigabyte, several while scikit-learn builds it), a chunk a few MB.
VOCABULARY_ROWS = 200_000
EMBED_CHUNK_ROWS = 20_000
# Power iterations of the randomized SVD: on the 12k arXiv abstracts 2 gave the same 10-NN accuracy
# as sklearn's default 5 (0.698 vs 0.695) in 60% of the time.
SVD_ITERATIONS = 2
# The map is laid out from the leading components only; search uses them all. On ~2,000 arXiv
# abstracts UMAP on 32-64 components gave a 2D 10-NN accuracy ~0.02 higher than on 256 (less
# noise for its neighbour graph); on 12k it made no difference. Specific queries need the rest.
LAYOUT_DIMENSION = 64
CONFIG_FILE = "config.json"
VOCABULARY_FILE = "vocabulary.json"
IDF_FILE = "idf.npy"
COMPONENTS_FILE = "components.npy"
_FORMAT = 1


def is_corpus_model(model: str | None) -> bool:
    """Whether a model spec or id names the corpus-fitted fast embedder (fitted or not)."""
    return isinstance(model, str) and model.startswith(FAST_MODEL)


class CorpusEmbedder(EmbedderBase):
    """TF-IDF (words, sublinear tf) reduced by truncated SVD to ``dimension``, fitted on the corpus.

    ``fit`` learns the space; ``embed`` on an unfitted embedder fits on the texts it is given first
    (the corpus is its own training set), so the pipeline can treat it like any other embedder.
    """

    # Its vectors live in a space fitted to one corpus: caching them would only grow the file.
    cacheable = False

    def __init__(self, *, dimension: int = DIMENSION, seed: int = 42, fit_rows: int = FIT_ROWS,
                 vocabulary_rows: int = VOCABULARY_ROWS, chunk_rows: int = EMBED_CHUNK_ROWS):
        self.requested_dimension = dimension
        self.dimension = dimension
        self.seed = seed
        self.fit_rows = fit_rows
        self.vocabulary_rows = vocabulary_rows
        self.chunk_rows = chunk_rows
        self.model_hash = ""
        self.model_id = f"{FAST_MODEL}{dimension}"
        self._vectorizer = None
        self._components: np.ndarray | None = None
        self._projection: np.ndarray | None = None

    @property
    def model_name(self) -> str:
        """The spec that loads this embedder again: its fitted id (the bare name before fitting)."""
        return self.model_id if self.fitted else FAST_MODEL

    @property
    def fitted(self) -> bool:
        """Whether the space has been learnt (or loaded)."""
        return self._components is not None

    def fit(self, texts: Sequence[str], *, progress: ProgressFn = no_progress) -> CorpusEmbedder:
        """Learn the vocabulary, idf weights and SVD components from ``texts``."""
        self._fit_matrix(texts, progress=progress)
        return self

    def _fit_matrix(self, texts: Sequence[str], *, progress: ProgressFn):
        """Fit on the texts (a seeded sample of VOCABULARY_ROWS when there are more) and return the
        TF-IDF matrix of the rows fitted on when they are all the texts (so ``embed`` need not tokenise
        them twice), else None."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        if len(texts) == 0:
            raise InputError("The fast mode needs at least one text to learn its vocabulary from.")
        whole = len(texts) <= self.vocabulary_rows
        if not whole:
            pick = np.sort(np.random.default_rng(self.seed).choice(len(texts), size=self.vocabulary_rows,
                                                                   replace=False))
            texts = pick_texts(texts, pick)
        progress("embed", 0.0, f"Learning the vocabulary of {len(texts):,} texts")
        vectorizer = TfidfVectorizer(**_vectorizer_params(len(texts)))
        try:
            matrix = vectorizer.fit_transform(texts)
        except ValueError as exc:  # sklearn's "empty vocabulary": no word of two letters or more
            raise InputError(
                "The fast mode found no words to learn from (it reads words of two or more letters). "
                "Build this map with the quality mode."
            ) from exc
        progress("embed", 0.5, f"{matrix.shape[1]:,} words; fitting {self.requested_dimension} dimensions")
        self._vectorizer, self._projection = vectorizer, None
        self._components = _fit_components(matrix, dimension=self.requested_dimension, seed=self.seed,
                                           fit_rows=self.fit_rows)
        self._identify()
        log.info("fitted %s on %d texts (%d words)", self.model_id, matrix.shape[0], matrix.shape[1])
        return matrix if whole else None

    def _identify(self) -> None:
        self.dimension = int(self._components.shape[0])
        vocabulary = "\n".join(self._vectorizer.get_feature_names_out())
        self.model_hash = combined_hash([
            vocabulary, bytes_hash(self._vectorizer.idf_.astype(np.float32).tobytes()),
            bytes_hash(np.ascontiguousarray(self._components).tobytes()),
        ])
        self.model_id = f"{FAST_MODEL}{self.dimension}@{self.model_hash[:16]}"

    def embed(
        self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE, progress: ProgressFn = no_progress
    ) -> np.ndarray:
        """Unit vectors of ``texts`` in the fitted space (fitting on them first if not fitted yet),
        read ``chunk_rows`` at a time: the same vectors as in one go, in bounded memory."""
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        matrix = None if self.fitted else self._fit_matrix(texts, progress=progress)
        if self._projection is None:
            # C-ordered: scipy copies a transposed (Fortran-ordered) view on every product, 17 ms per query.
            self._projection = np.ascontiguousarray(self._components.T)
            # One copy kept: the components become a view of the projection (45 MB each at 43k words).
            self._components = self._projection.T
        n = len(texts)
        vectors = np.empty((n, self.dimension), dtype=np.float32)
        for start in range(0, n, self.chunk_rows):
            stop = min(start + self.chunk_rows, n)
            part = matrix[start:stop] if matrix is not None else self._vectorizer.transform(texts[start:stop])
            vectors[start:stop] = l2_normalise(part @ self._projection)
            progress("embed", 0.5 + 0.5 * stop / n, f"{stop:,} / {n:,} rows")
        return vectors

    def layout_vectors(self, vectors: np.ndarray) -> RowView:
        """What the map is laid out from: the leading LAYOUT_DIMENSION components, unit length again, made
        as the layout reads them (at 1M rows the whole of it is 256 MB beside the vectors)."""
        return RowView(np.asarray(vectors), _leading_components)

    def persist(self, workspace_root: str | Path) -> None:
        """Keep the fitted space in the workspace, where searches of the map find it."""
        if self.fitted:
            save_corpus_embedder(self, workspace_root=workspace_root)

    def save(self, folder: str | Path) -> Path:
        """Write the fitted pieces to ``folder`` (JSON and .npy, no pickle)."""
        if not self.fitted:
            raise ModelError("This fast embedder has not been fitted yet, so there is nothing to save.")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        params = self._vectorizer.get_params()
        config = {
            "format": _FORMAT, "kind": FAST_MODEL, "model_id": self.model_id, "dimension": self.dimension,
            "seed": self.seed, "vectorizer": {k: params[k] for k in _SAVED_PARAMS},
        }
        vocabulary = self._vectorizer.get_feature_names_out().tolist()
        (folder / VOCABULARY_FILE).write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")
        np.save(folder / IDF_FILE, self._vectorizer.idf_)
        np.save(folder / COMPONENTS_FILE, np.ascontiguousarray(self._components, dtype=np.float32))
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> CorpusEmbedder:
        """A fitted embedder read back from ``folder``; its id must match the pieces it holds."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        folder = Path(folder)
        try:
            config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
            vocabulary = json.loads((folder / VOCABULARY_FILE).read_text(encoding="utf-8"))
            idf = np.load(folder / IDF_FILE, allow_pickle=False)
            components = np.load(folder / COMPONENTS_FILE, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"The fitted fast embedder in {folder} is missing or unreadable ({type(exc).__name__}). "
                "Rebuild the map to search it."
            ) from exc
        embedder = cls(dimension=int(config["dimension"]), seed=int(config.get("seed", 42)))
        vectorizer = TfidfVectorizer(**{**config["vectorizer"], "vocabulary": vocabulary, "dtype": np.float32})
        vectorizer.idf_ = idf
        embedder._vectorizer, embedder._components = vectorizer, components.astype(np.float32)
        embedder._identify()
        if embedder.model_id != config["model_id"]:
            raise ModelError(
                f"The fitted fast embedder in {folder} does not match its id {config['model_id']} "
                "(the files were changed). Rebuild the map to search it."
            )
        return embedder


_SAVED_PARAMS = ("lowercase", "token_pattern", "ngram_range", "min_df", "max_df", "sublinear_tf", "norm",
                 "smooth_idf", "strip_accents")


def _vectorizer_params(rows: int) -> dict:
    return {
        "sublinear_tf": True, "strip_accents": "unicode", "max_df": MAX_DF if rows >= MIN_DF_ROWS else 1.0,
        "min_df": 2 if rows >= MIN_DF_ROWS else 1, "dtype": np.float32,
    }


def _fit_components(matrix, *, dimension: int, seed: int, fit_rows: int) -> np.ndarray:
    """SVD components (k x vocabulary, float32) of the TF-IDF matrix, fitted on at most ``fit_rows`` rows."""
    from sklearn.decomposition import TruncatedSVD
    from threadpoolctl import threadpool_limits

    rows, words = matrix.shape
    if rows > fit_rows:
        pick = np.random.default_rng(seed).choice(rows, size=fit_rows, replace=False)
        matrix = matrix[np.sort(pick)]
    k = min(dimension, matrix.shape[0] - 1, words - 1)
    if k < 2:
        # Too few texts or words for an SVD: the TF-IDF space itself is the embedding.
        return np.eye(words, dtype=np.float32)
    svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=SVD_ITERATIONS, random_state=seed)
    # One BLAS thread: on two shared cores OpenBLAS's second thread made the SVD's QR steps ten times
    # slower (12k abstracts: 10 s instead of 1 s), and on an idle machine it saves under a second.
    with threadpool_limits(limits=1, user_api="blas"):
        svd.fit(matrix)
    return svd.components_.astype(np.float32)


def models_dir(workspace_root: str | Path) -> Path:
    """Where a workspace keeps fitted fast embedders, one folder per model id."""
    return Path(workspace_root) / "models"


def model_folder(workspace_root: str | Path, model_id: str) -> Path:
    """The folder of one fitted embedder (its id with the ``@`` made file-name safe)."""
    return models_dir(workspace_root) / model_id.replace("@", "-")


def load_corpus_embedder(model_id: str, *, workspace_root: str | Path | None = None) -> CorpusEmbedder:
    """The fast embedder for a spec: unfitted for the bare name, else the fitted one saved in the workspace."""
    if model_id in (FAST_MODEL, f"{FAST_MODEL}{DIMENSION}"):
        return CorpusEmbedder()
    if "@" not in model_id:
        raise ModelError(f"'{model_id}' is not a fast embedder: use '{FAST_MODEL}' or the id a map records.")
    if workspace_root is None:
        workspace_root = explorer_home()
    return CorpusEmbedder.load(model_folder(workspace_root, model_id))


def save_corpus_embedder(embedder: CorpusEmbedder, *, workspace_root: str | Path) -> Path:
    """Keep a fitted embedder in the workspace under its id (content-addressed: saved once, shared)."""
    import shutil
    import uuid

    final = model_folder(workspace_root, embedder.model_id)
    if (final / CONFIG_FILE).is_file():
        return final
    # Written aside and renamed, so a reader never sees half the files; config.json is written last.
    tmp = final.with_name(f".tmp-{uuid.uuid4().hex}")
    embedder.save(tmp)
    try:
        tmp.rename(final)
    except OSError:  # another build of the same corpus got there first
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _leading_components(rows: np.ndarray) -> np.ndarray:
    """Rows' leading LAYOUT_DIMENSION components, unit length again (row-wise, as a `RowView` needs)."""
    return l2_normalise(rows[:, :LAYOUT_DIMENSION])
