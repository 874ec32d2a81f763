"use strict";
// The legend (one entry per colour group, with its count; a click hides or shows the group) and the
// colour bar of a numeric colour (similarity, trust, a number column), both from the layer's palette.
(function (M) {
  function scaleEnd(value) {
    // A scale's end as people write it: whole numbers whole (a year is 2021, not 2.02e+3), others to 3 digits.
    const v = Number(value);
    return Number.isInteger(v) ? String(v) : Math.abs(v) >= 1000 ? v.toFixed(0) : String(Number(v.toPrecision(3)));
  }

  const css = c => "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")";

  function build(container, layer, title, onToggle) {
    container.replaceChildren();
    if (!layer) return;
    title = layer.legendTitle || title;
    const heading = document.createElement("div");
    heading.className = "legend-title";
    heading.textContent = title || "";
    if (title) container.appendChild(heading);
    const list = document.createElement("ul");
    layer.legend.forEach((entry, g) => {
      const count = entry.colours.reduce((sum, c) => sum + layer.counts[c], 0);
      if (entry.colorbar) {
        // A colour scale: its gradient and its two ends.
        const bar = document.createElement("div"), scale = document.createElement("div");
        bar.className = "colorbar";
        bar.setAttribute("data-colorbar", entry.colorbar.title || "");
        const steps = entry.colours.slice(0, -1).map(c => layer.palette[c]);
        scale.className = "scale";
        scale.style.background = "linear-gradient(to right," + steps.filter((_, k) => k % 24 === 0 || k === steps.length - 1)
          .map(css).join(",") + ")";
        const ends = document.createElement("div");
        ends.className = "ends";
        const low = document.createElement("span"), high = document.createElement("span"), name = document.createElement("b");
        low.textContent = scaleEnd(entry.colorbar.cmin);
        high.textContent = scaleEnd(entry.colorbar.cmax);
        name.textContent = M.labels.plain(entry.colorbar.title || "");
        ends.append(low, name, high);
        bar.append(scale, ends);
        container.appendChild(bar);
        return;
      }
      if (entry.showlegend === false && entry.name !== M.C.DIMMED_GROUP) return;
      const li = document.createElement("li"), swatch = document.createElement("span");
      const name = document.createElement("span"), n = document.createElement("span");
      li.title = "Click to hide or show";
      li.setAttribute("data-group", String(g));
      swatch.className = "swatch";
      swatch.style.background = css(layer.palette[entry.colours[0]]);
      name.textContent = M.labels.plain(entry.name);
      n.className = "n";
      n.textContent = count.toLocaleString("en");
      li.append(swatch, name, n);
      li.addEventListener("click", () => {
        const off = !layer.hidden[entry.colours[0]];
        entry.colours.forEach(c => { layer.hidden[c] = off ? 1 : 0; });
        li.classList.toggle("off", off);
        onToggle();
      });
      list.appendChild(li);
    });
    container.appendChild(list);
  }

  M.legend = { build: build };
})(globalThis.ExplorerMap = globalThis.ExplorerMap || {});
