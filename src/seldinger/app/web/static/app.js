// The Seldinger workstation page: NiiVue views of the plan, re-scoring, approval, live needle.
// Positions from the server are LPS mm; NiiVue's world is the NIfTI's RAS: (x, y, z) -> (-x, -y, z).
const { Niivue, NVImage, SLICE_TYPE, SHOW_RENDER } = window.niivue; // vendor/niivue.umd.js (web/ builds it)

const $ = (id) => document.getElementById(id);
const ras = (p) => [-p[0], -p[1], p[2]];
const lps = (p) => [-p[0], -p[1], p[2]];
const fmt = (v, d = 1) => (v === null || v === undefined ? "–" : typeof v === "number" ? v.toFixed(d) : String(v));

// What tests and the benchmark read (window.seldinger): timings, counters, errors.
const state = {
  firstSliceMs: null, previewMs: null, viewerSliceMs: null, overlaysMs: null, mode: "view", overlays: null, selected: null,
  rescored: 0, applicator: 0, live: { frames: 0, drawn: 0, lastSeq: 0, latencies: [] },
};
window.seldinger = state;
state.viewer = () => nv; // for tests and the console
if (location.search.includes("token=")) history.replaceState(null, "", location.pathname + location.hash);

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, { credentials: "same-origin", ...init });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function status(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

const nv = new Niivue({
  backColor: [0.05, 0.05, 0.05, 1], show3Dcrosshair: true, isRadiologicalConvention: true,
  multiplanarShowRender: SHOW_RENDER.ALWAYS, dragAndDropEnabled: false, logLevel: "error",
  crosshairColor: [0.2, 0.9, 0.2, 0.8], isColorbar: false, loadingText: "", sagittalNoseLeft: true,
});

// ---- the CT, masks, zones, isodoses --------------------------------------------------------

function setWindow(name, upload = true) {
  const [centre, width] = state.overlays.window_presets_hu[name];
  const ct = nv.volumes[0];
  ct.cal_min = centre - width / 2;
  ct.cal_max = centre + width / 2;
  if (upload) nv.updateGLVolume();
  for (const b of $("windows").querySelectorAll("button")) b.classList.toggle("on", b.dataset.name === name);
}

function labelColormap(entries, alpha) {
  const cm = { R: [0], G: [0], B: [0], A: [0], I: [0], labels: [""] };
  for (const e of entries) {
    cm.R.push(e.rgb[0]); cm.G.push(e.rgb[1]); cm.B.push(e.rgb[2]); cm.A.push(alpha); cm.I.push(e.id);
    cm.labels.push(e.name);
  }
  return cm;
}

const ISODOSE_RGB = [[60, 120, 255], [0, 220, 120], [255, 220, 0], [255, 60, 60]];
const layers = {};

function layerSpec(name, options, colormap) {
  const query = name === "labels" && state.step > 1 ? `?step=${state.step}` : "";
  return { name, options: { url: `/api/volumes/${name}.nii.gz${query}`, ...options }, colormap };
}

// Overlays are fetched together and blended once: every Niivue.addVolume re-blends all layers,
// which costs seconds per layer with a software renderer.
async function setLayers(specs) {
  const images = await Promise.all(specs.map((spec) => NVImage.loadFromUrl(spec.options)));
  specs.forEach((spec, n) => {
    const image = images[n];
    if (spec.colormap) image.setColormapLabel(spec.colormap);
    image.shownOpacity = spec.options.opacity;
    const old = layers[spec.name];
    const at = old ? nv.volumes.indexOf(old) : -1;
    if (at > 0) nv.volumes[at] = image; else nv.volumes.push(image);
    if (!old) layerToggle(spec.name, spec.text);
    layers[spec.name] = image;
  });
  nv.back = nv.volumes[0];
  nv.overlays = nv.volumes.slice(1);
  nv.updateGLVolume();
}

function layerToggle(name, text) {
  const label = document.createElement("label");
  label.innerHTML = `<input type="checkbox" checked> ${text}`;
  label.querySelector("input").addEventListener("change", (e) => {
    nv.setOpacity(nv.volumes.indexOf(layers[name]), e.target.checked ? layers[name].shownOpacity : 0);
  });
  $("layers").append(label);
}

function zoneSpec() {
  return { ...layerSpec("zone", { colormap: "red", opacity: 0.35, cal_min: 0.5, cal_max: 1 }), text: "ablation zone" };
}

async function loadLayers(o) {
  const specs = [{ ...layerSpec("labels", { opacity: 0.4 }, labelColormap(o.labels, 255)), text: "masks" }];
  if (o.volumes.includes("zone")) specs.push(zoneSpec());
  if (o.volumes.includes("dose")) {
    const bands = o.seeds.isodose_percent.map((p, n) => ({ id: n + 1, name: `${p} %`, rgb: ISODOSE_RGB[n] }));
    specs.push({ ...layerSpec("dose", { opacity: 0.35 }, labelColormap(bands, 255)), text: "isodoses" });
  }
  await setLayers(specs);
}

async function reloadZone() {
  await setLayers([zoneSpec()]);
}

// ---- paths, seeds, applicators as connectomes (spheres and cylinders) -----------------------

function connectome(name, colormap, items, nodeScale = 1.5, edgeScale = 1) {
  const nodes = [];
  const edges = [];
  for (const [a, b, size] of items) {
    const first = nodes.length;
    const [x1, y1, z1] = ras(a);
    nodes.push({ name: "", x: x1, y: y1, z: z1, colorValue: 1, sizeValue: size ?? 1 });
    if (b) {
      const [x2, y2, z2] = ras(b);
      nodes.push({ name: "", x: x2, y: y2, z: z2, colorValue: 1, sizeValue: size ?? 1 });
      edges.push({ first, second: first + 1, colorValue: 1 });
    }
  }
  // Meshes are swapped in place: Niivue.addMesh/removeMesh would re-blend every volume layer.
  for (const mesh of nv.meshes.filter((m) => m.name === name)) mesh.unloadMesh(nv.gl);
  nv.meshes = nv.meshes.filter((m) => m.name !== name);
  if (nodes.length) {
    const mesh = nv.loadConnectomeAsMesh({
      name, nodeColormap: colormap, nodeColormapNegative: colormap, nodeMinColor: 0, nodeMaxColor: 1,
      nodeScale, edgeColormap: colormap, edgeColormapNegative: colormap, edgeMin: 0, edgeMax: 1,
      edgeScale, showLegend: false, nodes, edges,
    });
    mesh.name = name;
    nv.meshes.push(mesh);
  }
  nv.drawScene();
}

function drawPaths() {
  const o = state.overlays;
  const others = o.trajectories.filter((p) => !state.selected || p.entry_lps_mm.join() !== state.selected.entry_lps_mm.join());
  connectome("planned", "warm", others.map((p) => [p.entry_lps_mm, p.target_lps_mm, 0.8]), 1.2, 0.6);
  connectome("selected", "green", state.selected ? [[state.selected.entry_lps_mm, state.selected.target_lps_mm, 1]] : [], 1.6, 1);
  connectome("applicators", "blue", state.applicators.map((a) => [a.entry_lps_mm, a.tip_lps_mm, 1]), 1.4, 1);
  if (o.seeds) connectome("seeds", "hot", o.seeds.positions_lps_mm.map((p) => [p, null, 0.6]), 1.2, 1);
}

// ---- tables -------------------------------------------------------------------------------

function table(id, rows) {
  const body = $(id).tBodies[0];
  body.replaceChildren(...rows.map(([name, value, bad]) => {
    const tr = document.createElement("tr");
    if (bad) tr.className = "bad";
    const a = document.createElement("td");
    a.textContent = name;
    const b = document.createElement("td");
    b.textContent = value;
    tr.append(a, b);
    return tr;
  }));
}

function showPath(path, extra = {}) {
  state.selected = path;
  const rows = [
    ["verdict", path.safe ? "safe" : "breaks a rule", !path.safe],
    ...(extra.broken_rules || []).map((r) => ["refused", r, true]),
    ["risk score", fmt(path.risk_score, 4)],
    ["rank among safe", fmt(extra.rank_among_safe ?? path.rank, 0)],
    ["length (mm)", fmt(path.length_mm)],
    ["to far side (mm)", fmt(path.depth_to_far_side_mm)],
    ["through lung (mm)", fmt(path.lung_length_mm)],
    ["pleural crossings", fmt(path.pleural_crossings, 0)],
    ["fissure crossings", fmt(path.fissure_crossings, 0)],
    ...(path.liver_parenchyma_mm == null
      ? []
      : [["normal liver before the lesion (mm)", fmt(path.liver_parenchyma_mm), path.liver_parenchyma_mm < 10]]),
    ["axial angle (°)", fmt(path.axial_angle_deg)],
    ["pleura angle (°)", fmt(path.pleura_angle_deg)],
    ...Object.entries(path.min_distance_mm).map(([k, v]) => [`to ${k.replaceAll("_", " ")} (mm)`, fmt(v)]),
    ["entry (LPS mm)", path.entry_lps_mm.map((v) => v.toFixed(1)).join(", ")],
    ["target (LPS mm)", path.target_lps_mm.map((v) => v.toFixed(1)).join(", ")],
  ];
  if (extra.seconds !== undefined) rows.push(["server time (ms)", fmt(1000 * extra.seconds, 1)]);
  table("metrics", rows);
  drawPaths();
}

function showCoverage(m) {
  table("coverage", [
    ["lesion + margin covered (%)", fmt(m.target_coverage_percent), m.target_coverage_percent < 99], // the planner's goal
    ["lesion covered (%)", fmt(m.lesion_coverage_percent)],
    ["minimal margin (mm)", fmt(m.margin.min_margin_mm), m.margin.min_margin_mm < 5],
    ["surface with margin ≥ 5 mm (%)", fmt(m.margin.surface_at_least_5_percent)],
    ["zone volume (mL)", fmt(m.zone_volume_ml)],
    ["healthy tissue ablated (mL)", fmt(m.healthy_ablated_ml)],
  ]);
}

// ---- interaction ----------------------------------------------------------------------------

async function rescore(body) {
  status("re-scoring…");
  try {
    const result = await api("/api/rescore", body);
    state.rescored += 1;
    showPath(result.path, result);
    status(`path re-scored in ${(1000 * result.seconds).toFixed(1)} ms on the server`);
  } catch (err) {
    status(err.message, true);
  }
}

async function moveApplicator(tip) {
  try {
    const m = await api(`/api/applicators/${state.applicator}`, { tip_lps_mm: tip });
    state.applicators = m.applicators;
    showCoverage(m);
    drawPaths();
    await reloadZone();
    status(`applicator ${state.applicator + 1} moved; coverage in ${(1000 * m.seconds).toFixed(0)} ms`);
  } catch (err) {
    status(err.message, true);
  }
}

nv.onLocationChange = (location) => {
  if (state.mode === "view" || !location || !location.mm) return;
  const point = lps([location.mm[0], location.mm[1], location.mm[2]]);
  if (state.mode === "entry") rescore({ entry_lps_mm: point });
  else if (state.mode === "target") rescore({ target_lps_mm: point });
  else if (state.mode === "tip" && state.applicators.length) moveApplicator(point);
};

for (const input of document.querySelectorAll("input[name=mode]")) {
  input.addEventListener("change", () => { state.mode = input.value; });
}

async function loadPareto(tries = 40) {
  try {
    state.pareto = await api("/api/pareto");
  } catch (err) {
    if (tries > 0) { setTimeout(() => loadPareto(tries - 1), 1000); return; }
    $("pareto").replaceChildren(new Option(`unavailable: ${err.message}`));
    return;
  }
  const select = $("pareto");
  select.replaceChildren(new Option(`${state.pareto.length} Pareto-optimal paths…`, ""));
  state.pareto.forEach((p, n) => select.append(new Option(
    `#${n + 1} risk ${p.risk_score.toFixed(3)} · ${p.length_mm.toFixed(0)} mm · lung ${p.lung_length_mm.toFixed(0)} mm`, String(n))));
  select.disabled = false;
}

$("pareto").addEventListener("change", async (e) => {
  if (e.target.value === "") return;
  const chosen = state.pareto[Number(e.target.value)];
  try {
    showPath(await api("/api/choose", { entry_lps_mm: chosen.entry_lps_mm }));
    status("path chosen from the Pareto set");
  } catch (err) { status(err.message, true); }
});

$("applicator").addEventListener("change", (e) => { state.applicator = Number(e.target.value); });
for (const b of $("nudge").querySelectorAll("button")) {
  b.addEventListener("click", () => {
    const tip = [...state.applicators[state.applicator].tip_lps_mm];
    tip[Number(b.dataset.axis)] += Number(b.dataset.step);
    moveApplicator(tip);
  });
}

$("approve").addEventListener("click", async () => {
  try {
    const r = await api("/api/approve", {});
    $("approved").textContent = `wrote ${r.written} (${r.steps} provenance steps)`;
  } catch (err) { $("approved").textContent = err.message; }
});

// ---- live needle --------------------------------------------------------------------------

const live = { info: null, frame: null, pending: false, lastMessage: 0, trace: [], staleServer: false };

function startLive(info) {
  $("live").hidden = false;
  live.info = info;
  if (info.motion) $("breathing").hidden = false;
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/live`);
  live.socket = socket;
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    live.lastMessage = performance.now();
    if (message.type === "frame") {
      state.live.frames += 1;
      live.frame = message;
      if (message.state.amplitude_fraction !== undefined) {
        live.trace.push([message.tracker_timestamp_s, message.state.amplitude_fraction]);
        while (live.trace.length && live.trace[0][0] < message.tracker_timestamp_s - 12) live.trace.shift();
      }
      if (!live.pending) { live.pending = true; requestAnimationFrame(drawLive); }
    } else if (message.type === "status") {
      live.staleServer = Boolean(message.stale) || !message.connected;
    }
  };
  socket.onclose = () => { live.socket = null; };
  setInterval(checkStale, 100);
  // The views follow the tip twice a second with a GPU; a software renderer needs ~1 s per
  // redraw of the views, which would starve the needle panel, so they follow on request only.
  $("follow").checked = !state.software;
  setInterval(() => { if ($("follow").checked) followInViews(); }, 500);
}

function checkStale() {
  const silent = performance.now() - live.lastMessage > 500 || !live.socket;
  const stale = silent || live.staleServer;
  $("stale").hidden = !stale;
  state.live.stale = stale;
}

function drawLive() {
  live.pending = false;
  const frame = live.frame;
  if (!frame) return;
  const s = frame.state;
  const entry = s.entry_lps_mm || live.info.entry_lps_mm;
  const target = s.target_lps_mm || live.info.target_lps_mm;
  drawNeedle($("needle"), entry, target, s);
  if (live.info.motion) drawBreathing($("breathing"), s);
  const now = performance.now();
  if (now - (live.tableAt || 0) > 100) { // the numbers at 10 Hz: text re-layout costs more than the canvas
    live.tableAt = now;
    guidanceTable(s);
  }
  const now_s = (performance.timeOrigin + performance.now()) / 1000;
  const latency_ms = 1000 * (now_s - frame.tracker_timestamp_s);
  state.live.drawn += 1;
  state.live.lastSeq = frame.seq;
  state.live.tip_lps_mm = s.tip_lps_mm;
  state.live.latencies.push(latency_ms);
  if (state.live.latencies.length > 2000) state.live.latencies.shift();
  if (live.socket && live.socket.readyState === WebSocket.OPEN) {
    live.socket.send(JSON.stringify({ type: "drawn", seq: frame.seq, latency_ms }));
  }
  if (state.live.drawn % 20 === 0) {
    const sorted = [...state.live.latencies].sort((a, b) => a - b);
    $("latency").textContent = `tracker → screen: p50 ${sorted[Math.floor(sorted.length / 2)].toFixed(0)} ms, p95 ${sorted[Math.floor(0.95 * (sorted.length - 1))].toFixed(0)} ms`;
  }
}

function guidanceTable(s) {
  table("guidance", [
    ["tip to target (mm)", fmt(s.tip_to_target_mm)],
    ["lateral deviation (mm)", fmt(s.lateral_deviation_mm), s.lateral_deviation_mm > 5],
    ["angle error (°)", fmt(s.angle_error_deg)],
    ["remaining depth (mm)", fmt(s.remaining_depth_mm), s.remaining_depth_mm < 0],
    ["to critical structures (mm)", fmt(s.distance_to_critical_mm), s.breach],
  ]);
}

function drawNeedle(canvas, entry, target, s) {
  // Left: side view along the path (entry left, target right); right: the bull's eye.
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  const u = [0, 1, 2].map((i) => target[i] - entry[i]);
  const length = Math.hypot(...u);
  const unit = u.map((v) => v / length);
  const tip = s.tip_lps_mm;
  const rel = [0, 1, 2].map((i) => tip[i] - entry[i]);
  const along = rel[0] * unit[0] + rel[1] * unit[1] + rel[2] * unit[2];
  const off = [0, 1, 2].map((i) => rel[i] - along * unit[i]);
  const helper = Math.abs(unit[2]) < 0.9 ? [0, 0, 1] : [1, 0, 0];
  const e1 = norm(cross(unit, helper));
  const e2 = cross(unit, e1);
  const dx = dot(off, e1);
  const dy = dot(off, e2);
  const w = 240;
  const scale = (w - 30) / Math.max(length, 1);
  const y0 = canvas.height / 2;
  g.strokeStyle = "#3c3"; g.lineWidth = 2;
  g.beginPath(); g.moveTo(15, y0); g.lineTo(15 + length * scale, y0); g.stroke();
  g.fillStyle = "#fc0"; g.beginPath(); g.arc(15 + length * scale, y0, 5, 0, 2 * Math.PI); g.fill();
  g.fillStyle = s.breach ? "#f33" : "#fff";
  g.beginPath(); g.arc(15 + along * scale, y0 - dx * 4, 4, 0, 2 * Math.PI); g.fill();
  const cx = w + 60, r = 50;
  g.strokeStyle = "#555"; g.lineWidth = 1;
  for (const ring of [1, 2]) { g.beginPath(); g.arc(cx, y0, (ring * r) / 2, 0, 2 * Math.PI); g.stroke(); }
  g.fillStyle = "#fff";
  g.beginPath(); g.arc(cx + Math.max(-r, Math.min(r, dx * 10)), y0 + Math.max(-r, Math.min(r, dy * 10)), 4, 0, 2 * Math.PI); g.fill();
  g.fillStyle = "#999"; g.font = "11px sans-serif";
  g.fillText("entry", 5, y0 + 18); g.fillText("target", w - 40, y0 + 18); g.fillText("5 mm rings", cx - 28, canvas.height - 6);
}

function drawBreathing(canvas, s) {
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  const [low, high] = live.info.gate_window || [0, 0.25];
  const h = canvas.height;
  g.fillStyle = "rgba(40,160,60,0.25)";
  g.fillRect(0, h - high * h, canvas.width, (high - low) * h);
  if (!live.trace.length) return;
  const t1 = live.trace[live.trace.length - 1][0];
  g.strokeStyle = "#6cf"; g.beginPath();
  live.trace.forEach(([t, a], n) => {
    const x = canvas.width - ((t1 - t) / 12) * canvas.width;
    const y = h - Math.max(0, Math.min(1, a)) * h;
    if (n === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
  if (state.live.gate_on !== s.gate_on) { // the light's text only when it changes
    const gate = $("gate");
    gate.textContent = s.gate_on ? "● GATE ON" : "○ gate off";
    gate.className = `gate ${s.gate_on ? "on" : "off"}`;
    state.live.gate_on = s.gate_on;
  }
}

function followInViews() {
  // The needle and the slices through its tip, twice a second (the 2-D panel shows every frame).
  const frame = live.frame;
  if (!frame || state.live.stale) return;
  const s = frame.state;
  const back = [0, 1, 2].map((i) => s.tip_lps_mm[i] - 60 * s.direction_lps[i]);
  connectome("needle", "plasma", [[back, s.tip_lps_mm, 1]], 1.2, 1);
  nv.scene.crosshairPos = nv.mm2frac(ras(s.tip_lps_mm));
  nv.drawScene();
}

const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const norm = (a) => { const n = Math.hypot(...a); return a.map((v) => v / n); };

function show3d(on) {
  state.show3d = on;
  nv.opts.multiplanarShowRender = on ? SHOW_RENDER.ALWAYS : SHOW_RENDER.NEVER;
  $("view3d").classList.toggle("on", on);
  nv.drawScene();
}
$("view3d").addEventListener("click", () => show3d(!state.show3d));

// Where an LPS point lies on the page in a view (0 axial, 1 coronal, 2 sagittal): for tests.
state.pagePoint = (point, view = 0) => {
  const hit = nv.frac2canvasPosWithTile(nv.mm2frac(ras(point)), view);
  if (!hit) return null;
  const box = $("gl").getBoundingClientRect();
  const ratio = $("gl").width / box.width;
  return [box.left + hit.pos[0] / ratio, box.top + hit.pos[1] / ratio];
};

// ---- start ----------------------------------------------------------------------------------

async function showPreview() {
  const image = $("preview");
  if (!image.complete) {
    await new Promise((resolve) => { image.onload = resolve; image.onerror = resolve; });
  }
  if (image.naturalWidth > 0 && state.viewerSliceMs === null) {
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    state.previewMs = performance.now(); // painted: the frame after it was laid out
    if (state.firstSliceMs === null) state.firstSliceMs = state.previewMs;
    if (document.body.dataset.state === "loading") document.body.dataset.state = "preview";
  }
}

// Waits until the GPU has drawn what was asked (a one-pixel read back waits for every queued
// command: drawScene returns long before a software renderer has drawn), then for the frame
// that shows it.
async function drawn() {
  nv.gl.readPixels(0, 0, 1, 1, nv.gl.RGBA, nv.gl.UNSIGNED_BYTE, new Uint8Array(4));
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
}

function detectRenderer() {
  const gl = nv.gl;
  const debug = gl.getExtension("WEBGL_debug_renderer_info");
  state.renderer = String(gl.getParameter(debug ? debug.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  state.software = /swiftshader|llvmpipe|software/i.test(state.renderer);
  state.step = state.software && !location.hash.includes("full") ? 2 : 1;
}

const LUNG = [-600, 1500]; // the lung window (centre, width HU), set before the first upload
const PREVIEW_WAIT_MS = 300;

// The page's start: boot.js has created the WebGL context and asked for the overlays and the
// CT; the viewer compiles its shaders while they come, then uploads the CT and draws. The
// server's axial preview shows meanwhile. Returns the overlays.
async function startViewer(boot) {
  Object.assign(state, { contextMs: boot.contextMs, renderer: boot.renderer, software: boot.software, step: boot.step });
  // The preview is painted before the shaders are compiled (which blocks the page for up to a
  // second without a GPU), unless it is late: the CT keeps coming meanwhile.
  await Promise.race([showPreview(), new Promise((resolve) => setTimeout(resolve, PREVIEW_WAIT_MS))]);
  await nv.attachToCanvas($("gl"), boot.antialias);
  nv.setSliceType(SLICE_TYPE.MULTIPLANAR);
  show3d(!state.software || location.hash.includes("3d"));
  state.attachedMs = performance.now();
  const buffer = await (boot.first || boot.ct);
  state.ctFetchedMs = performance.now();
  const ct = await ctImage(buffer);
  const o = await boot.overlays;
  // The crosshair at the target before the CT's first upload: its first draw is the one shown.
  if (o.target_lps_mm) nv.scene.crosshairPos = ct.convertMM2Frac(ras(o.target_lps_mm), nv.opts.isSliceMM);
  nv.addVolume(ct);
  if (boot.first) state.firstStep = 4;
  return o;
}

function ctImage(buffer) {
  return NVImage.loadFromUrl({
    url: "ct.nii", name: "ct.nii", buffer, colormap: "gray", cal_min: LUNG[0] - LUNG[1] / 2, cal_max: LUNG[0] + LUNG[1] / 2,
  });
}

// The quarter-resolution CT drawn first is replaced by the one the page keeps (before the masks
// are blended with it); the crosshair stays where it is.
async function replaceCt(buffer) {
  const image = await ctImage(await buffer);
  const mm = nv.frac2mm(nv.scene.crosshairPos);
  nv.volumes = [];
  nv.scene.crosshairPos = image.convertMM2Frac([mm[0], mm[1], mm[2]], nv.opts.isSliceMM);
  nv.addVolume(image);
  await drawn();
  state.ctReplacedMs = performance.now();
}

// Before boot.js (and the benchmark's baseline, "?baseline"): the preview, then the WebGL
// context and all of NiiVue's shaders, then the CT fetched and uploaded, each step after the
// other, with NiiVue's gradient pass (for lit 3-D rendering, unused here) at each upload.
async function startViewerBaseline() {
  await showPreview();
  await nv.attachToCanvas($("gl"));
  nv.setSliceType(SLICE_TYPE.MULTIPLANAR);
  state.attachedMs = performance.now();
  const overlays = api("/api/overlays");
  detectRenderer();
  show3d(!state.software || location.hash.includes("3d"));
  await nv.loadVolumes([{
    url: `/api/volumes/ct.nii${state.step > 1 ? "?step=2" : ""}`, colormap: "gray",
    cal_min: LUNG[0] - LUNG[1] / 2, cal_max: LUNG[0] + LUNG[1] / 2,
  }]);
  state.ctFetchedMs = performance.now();
  const o = await overlays;
  if (o.target_lps_mm) nv.scene.crosshairPos = nv.mm2frac(ras(o.target_lps_mm));
  nv.drawScene();
  return o;
}

async function main() {
  state.scriptMs = performance.now();
  const boot = window.seldingerBoot;
  state.baseline = !boot;
  const o = boot ? await startViewer(boot) : await startViewerBaseline();
  state.ctUploadedMs = performance.now(); // JavaScript done: the GPU works on
  await drawn();
  state.viewerSliceMs = performance.now(); // the viewer's own first slice, drawn
  if (state.firstSliceMs === null) state.firstSliceMs = state.viewerSliceMs;
  $("preview").classList.add("gone");
  document.body.dataset.state = "ct";
  $("resolution").textContent = state.software
    ? `Software WebGL (${state.renderer}): ${state.step > 1 ? "CT at half in-plane resolution, " : ""}3-D view on request.`
    : "";
  if (state.firstStep) {
    status("CT shown at a quarter resolution; loading it at half…");
    await replaceCt(window.seldingerBoot.ct);
  }
  state.overlays = o;
  state.applicators = o.applicators;
  for (const name of Object.keys(o.window_presets_hu)) {
    const b = document.createElement("button");
    b.textContent = name;
    b.dataset.name = name;
    b.addEventListener("click", () => setWindow(name));
    $("windows").append(b);
  }
  setWindow("lung", false);
  status("CT shown; loading the masks…");
  if (o.selected) showPath(o.selected); else drawPaths();
  if (o.applicators.length) {
    $("ablation").hidden = false;
    o.applicators.forEach((a, n) => $("applicator").append(new Option(`${n + 1}: ${a.device} ${a.setting}`, String(n))));
    if (o.ablation) showCoverage({ ...o.ablation, lesion_coverage_percent: null, zone_volume_ml: null, healthy_ablated_ml: null });
  }
  await loadLayers(o);
  nv.drawScene();
  await drawn();
  state.overlaysMs = performance.now();
  document.body.dataset.state = "ready";
  status("Ready. Choose what a click sets, then click in a view.");
  if (o.trajectories.length) loadPareto();
  if (o.live) startLive(o.live);
}

main().catch((err) => {
  document.body.dataset.state = "error";
  status(`could not load the plan: ${err.message}`, true);
  console.error(err);
});
