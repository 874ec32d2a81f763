"use strict";
// The Streamlit component protocol both our components speak (frontend/map, frontend/upload): messages to the
// app's page that holds the frame, and the render messages it sends back. Staged beside each page
// (widget.stage_frontend), so there is one copy of it.
const StreamlitComponent = {
  send(type, data) {
    window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, data), "*");
  },

  // The component's value, which Python reads on the rerun it causes ("json" or "bytes").
  setValue(value, dataType) {
    this.send("streamlit:setComponentValue", { value: value, dataType: dataType });
  },

  setHeight(height) {
    this.send("streamlit:setFrameHeight", { height: height });
  },

  // Calls ``render`` with Python's arguments on every render message, then says the frame is ready.
  start(render) {
    window.addEventListener("message", event => {
      if (event.data && event.data.type === "streamlit:render") render(event.data.args || {});
    });
    this.send("streamlit:componentReady", { apiVersion: 1 });
  },
};
