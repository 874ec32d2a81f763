"""Step 6, draw, in a notebook: the map core (explorer/mapjs/) as an anywidget, the third host beside
the app's component and the offline export. The same payloads travel (the points layer as base64,
draw.label_payload); the selection and the search go both ways as traitlets of row ids.

Imported only by `explorer.widget`: `import explorer` never loads anywidget."""

from __future__ import annotations

import base64

import anywidget
import numpy as np
import traitlets

from . import mapjs
from .draw import MapStyle, default_colour_column, drawn_rows, label_payload, points_layer, title_column
from .html_export import hover_fields
from .map_clusters import label_layers, named_points


class MapWidget(anywidget.AnyWidget):
    """A saved map in a notebook: box, lasso or click set ``selection``; ``query`` runs a search whose
    ``hits`` the map draws (set ``hits`` or ``selection`` from Python and the map shows them)."""

    _esm = traitlets.Unicode().tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)
    labels = traitlets.Dict().tag(sync=True)
    legend_title = traitlets.Unicode("").tag(sync=True)
    height = traitlets.Int(560).tag(sync=True)
    selection = traitlets.List(traitlets.Int()).tag(sync=True)
    query = traitlets.Unicode("").tag(sync=True)
    hits = traitlets.List(traitlets.Int()).tag(sync=True)
    scores = traitlets.List(traitlets.Float()).tag(sync=True)

    def __init__(self, saved=None, *, k: int = 10, **kwargs):
        super().__init__(**kwargs)
        self._saved, self._k = saved, k
        self.observe(self._search, names="query")

    def _search(self, change) -> None:
        """A query typed in the map (or set here) is run on the saved map; its hits come back as row ids."""
        if self._saved is None:
            return
        if not change["new"].strip():
            self.scores, self.hits = [], []
            return
        from .search import search_map

        result = search_map(self._saved, change["new"], k=self._k)
        row_ids = self._saved.points["row_id"].to_numpy()
        self.scores = [float(s) for s in result.top_scores]
        self.hits = [int(i) for i in row_ids[np.asarray(result.indices, dtype=np.int64)]]


def esm() -> str:
    """The widget's module: the core's files concatenated, then the notebook host's render()."""
    return mapjs.host_script("notebook")


def map_widget(map_or_name, *, workspace=None, color_by: str | None = None, height: int = 560,
               k: int = 10) -> MapWidget:
    """A notebook widget of a saved map (a SavedMap, or a name in ``workspace``, default the default one)."""
    from .store import Workspace

    saved = map_or_name if not isinstance(map_or_name, str) else (workspace or Workspace()).open(map_or_name)
    points = named_points(saved)
    text_columns = [c for c in saved.meta.text_columns or [] if c in points.columns]
    colour = color_by if color_by and color_by in points.columns else default_colour_column(points)
    title = title_column(points, text_columns)
    # The hover's fields as the offline export picks them (the colour, the cluster, a year).
    fields = hover_fields(points, None, colour=colour, exclude={title, *text_columns})
    style = MapStyle(color_by=colour, title_column=title, hover_fields=fields)
    layer = points_layer(points, style)
    labels = label_layers(saved)
    widget = MapWidget(saved, k=k, _esm=esm(), layer=base64.b64encode(layer.to_bytes()).decode("ascii"),
                       labels=label_payload(labels if len(labels) else None), legend_title=colour or "",
                       height=height)
    widget.drawn = int(drawn_rows(points).sum())
    return widget
