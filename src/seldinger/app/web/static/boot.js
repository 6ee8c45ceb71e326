// The page's first work, started while the viewer's script (vendor/niivue.umd.js, 2.3 MB) still
// loads: the WebGL2 context of the views' canvas (NiiVue gets the same context back) and the
// fetches of the overlays and the CT. Without a GPU (SwiftShader, llvmpipe) the context and
// NiiVue's shaders take a second or more of the GPU process's time; the server builds and
// sends the CT meanwhile, rather than after them. A classic script right
// after the canvas: it runs before the rest of the page is parsed. "?baseline" in the address
// skips it (the page then starts as it did before, one step after the other, with NiiVue as
// shipped: the benchmark's baseline).
"use strict";
(() => {
  const search = new URLSearchParams(location.search);
  if (search.has("baseline")) {
    window.seldingerStockNiivue = true; // the bundle's patches off (web/copy-bundle.mjs)
    return;
  }
  const started = performance.now();
  const json = (path) => fetch(path, { credentials: "same-origin" }).then(async (response) => {
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  });
  const bytes = (path, signal) => fetch(path, { credentials: "same-origin", signal }).then((response) => {
    if (!response.ok) throw new Error(`${path}: ${response.status} ${response.statusText}`);
    return response.arrayBuffer();
  });
  const overlays = json("/api/overlays");
  // A software renderer gets the CT at half in-plane resolution, and first at a quarter (a
  // sixteenth of the voxels: uploaded and drawn in a fraction of the time; the half
  // resolution replaces it as soon as it is drawn). Both are asked for at once; with a GPU
  // (or "#full") they are dropped and the page asks for the full CT. "#nocoarse": no quarter.
  const coarse = new AbortController();
  const quarterCt = location.hash.includes("nocoarse") ? null : bytes("/api/volumes/ct.nii?step=4", coarse.signal);
  const halfCt = bytes("/api/volumes/ct.nii?step=2", coarse.signal);
  // NiiVue's attachToCanvas asks for this context again (app.js passes it `antialias`): the
  // attributes are NiiVue's own (antialiasing with more than 6 threads).
  const antialias = navigator.hardwareConcurrency > 6;
  const gl = document.getElementById("gl").getContext("webgl2", { alpha: true, antialias });
  const contextMs = performance.now();
  let renderer = "none";
  if (gl) {
    const debug = gl.getExtension("WEBGL_debug_renderer_info");
    renderer = String(gl.getParameter(debug ? debug.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  }
  const software = /swiftshader|llvmpipe|software/i.test(renderer);
  const full = !software || location.hash.includes("full");
  let ct = halfCt;
  let first = quarterCt;
  for (const request of [quarterCt, halfCt]) if (request) request.catch(() => {}); // app.js awaits them
  if (full) {
    coarse.abort(); // dropped on purpose
    ct = bytes("/api/volumes/ct.nii");
    ct.catch(() => {});
    first = null;
  }
  overlays.catch(() => {});
  window.seldingerBoot = { started, contextMs, antialias, renderer, software, step: full ? 1 : 2, overlays, first, ct };
})();
