"use strict";
// The hover card beside the point under the pointer (title, fields, text: all set as text) and, on an
// image map, the point's thumbnail.
(function (M) {
  function createHover(card, tip) {
    function line(cls, text, name) {
      const div = document.createElement("div");
      div.className = cls;
      if (name) { const i = document.createElement("i"); i.textContent = name + ": "; div.appendChild(i); }
      div.appendChild(document.createTextNode(text));
      card.appendChild(div);
    }

    function show(what, x, y, size, colour) {
      // ``what``: {title, fields: [[name, value]], text}; (x, y) the point in pixels, ``size`` the map's.
      card.replaceChildren();
      line("t", what.title || "");
      for (const [name, value] of what.fields || []) if (value) line("f", value, name);
      if (what.text) line("x", what.text);
      card.style.borderColor = colour ? "rgb(" + colour.slice(0, 3).join(",") + ")" : "";
      card.style.display = "block";
      const w = card.offsetWidth, h = card.offsetHeight;
      card.style.left = Math.max(0, x + 12 + w > size.w ? x - 12 - w : x + 12) + "px";
      card.style.top = Math.max(0, Math.min(size.h - h, y - h / 2)) + "px";
    }

    function thumbnail(uri, x, y) {
      if (!uri) { tip.style.display = "none"; return; }
      const img = tip.querySelector("img");
      if (img.getAttribute("src") !== uri) {
        // Tiny images (8x8 digits) stay crisp at 96 px; photos are smoothed as usual.
        img.onload = () => { img.style.imageRendering = img.naturalWidth < 48 ? "pixelated" : "auto"; };
        img.setAttribute("src", uri);
      }
      // Above-left of the pointer, so the card (right of the point) stays readable.
      tip.style.left = Math.max(4, x - 112) + "px";
      tip.style.top = Math.max(4, y - 112) + "px";
      tip.style.display = "block";
    }

    function hide() { card.style.display = "none"; tip.style.display = "none"; }
    return { show: show, thumbnail: thumbnail, hide: hide, text: () => card.textContent };
  }

  function fromHtml(html) {
    // A hover label from Python (draw.hover_texts: escaped text, <br> between lines, <i>field</i>: value),
    // as the card's parts: nothing of it is parsed as HTML.
    const [title, ...rest] = String(html).split("<br>");
    return { title: M.labels.plain(title), fields: rest.map(line => {
      const m = /^<i>(.*?)<\/i>: (.*)$/.exec(line);
      return m ? [M.labels.plain(m[1]), M.labels.plain(m[2])] : ["", M.labels.plain(line)];
    }) };
  }

  M.hover = { create: createHover, fromHtml: fromHtml };
})(globalThis.ExplorerMap = globalThis.ExplorerMap || {});
