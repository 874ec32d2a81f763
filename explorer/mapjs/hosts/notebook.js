// The notebook widget's host (explorer/notebook.py): the map core, concatenated before this, on the
// widget's element; the selection and the search travel through the anywidget model as row ids.
function render({ model, el }) {
  const M = globalThis.ExplorerMap;
  const box = document.createElement("div");
  box.style.height = model.get("height") + "px";
  box.setAttribute("data-testid", "notebook-map");
  const form = document.createElement("form");
  form.innerHTML = '<input type="search" placeholder="Search the map" aria-label="Search the map">';
  const input = form.querySelector("input");
  input.value = model.get("query") || "";
  el.replaceChildren(form, box);
  let own = null;  // the last ids this page sent, so that their echo does not redraw the outline away
  const map = M.create(box, {
    legendTitle: model.get("legend_title"),
    onSelect: ids => { own = ids; model.set("selection", ids); model.save_changes(); },
    onClick: id => { own = [id]; model.set("selection", [id]); model.save_changes(); },
  });
  map.setLayer(M.layer.fromBase64(model.get("layer")));
  map.setLabels(model.get("labels"));
  const showHits = () => map.setHits(model.get("hits") || [], model.get("scores") || null, 3);
  const showSelection = () => { const ids = model.get("selection") || []; if (ids !== own) map.setSelection(ids); };
  showHits();
  showSelection();
  form.addEventListener("submit", ev => { ev.preventDefault(); model.set("query", input.value); model.save_changes(); });
  model.on("change:hits", showHits);
  model.on("change:scores", showHits);
  model.on("change:selection", showSelection);
  model.on("change:query", () => { input.value = model.get("query") || ""; });
  return () => { box.replaceChildren(); };
}

export default { render };
