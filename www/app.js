// realdenoise demo page. Everything runs here and in the package's worker;
// the photo is never sent anywhere (see the Content-Security-Policy).
import { Engine } from "./engine.js";
import { Compare } from "./compare.js";
import { checkImage } from "./imagecheck.js";

const $ = (id) => document.getElementById(id);
const ui = {
  backend: $("backend"), backendNote: $("backend-note"),
  empty: $("empty"), fileInput: $("file-input"), choose: $("choose"), openAnother: $("open-another"), example: $("example"),
  viewer: $("viewer"), photoName: $("photo-name"), busy: $("busy"),
  form: $("settings"), steps: $("steps"), sampler: $("sampler"), ensemble: $("ensemble"), strength: $("strength"), strengthValue: $("strength-value"),
  engineChoice: $("engine-choice"), denoise: $("denoise"), cancel: $("cancel"),
  progress: $("progress"), progressText: $("progress-text"), status: $("status"),
  result: $("result"), summary: $("summary"), download: $("download"),
  quality: $("quality"), qualityValue: $("quality-value"), downloadJpeg: $("download-jpeg"),
  modelNote: $("model-note"), offlineNote: $("offline-note"), overlay: $("drop-overlay"),
  estimateText: $("estimate-text"), estimateWarning: $("estimate-warning"), estimateWarningText: $("estimate-warning-text"),
  useFaster: $("use-faster"), compareMode: $("compare-mode"),
};
const compare = new Compare({
  wrap: $("compare-wrap"), scroller: $("compare"), stage: $("canvas-stage"), before: $("before"), after: $("after"),
  divider: $("divider"), split: $("split"), tagBefore: $("tag-before"), tagAfter: $("tag-after"), zoomButtons: [...document.querySelectorAll("[data-zoom]")],
});
const engine = new Engine();
const TITLE = document.title;
// Best averages every step over the eight flips and rotations of the photo
// (the package's `ensemble: "dihedral"`): on the validation crops one such
// step beat four plain ones and eight plain ones, for the work of eight.
const presets = {
  fast: { steps: 1, ensemble: "off" },
  balanced: { steps: 4, ensemble: "off" },
  best: { steps: 1, ensemble: "dihedral" },
};
/** Network evaluations per step of an ensemble, from the package's limits (known once loaded). */
const views = (ensemble) => state.limits.evaluationsPerStep[ensemble];
// Runs longer than this get a warning before they start, with a faster preset to switch to.
const LONG_RUN_SECONDS = 60;
const state = {
  ready: false, backend: null, workers: 1, info: null, limits: null, image: null, name: "", run: null, resultUrl: null,
  // The last two results of this photo, for the A/B comparison: { pixels, label }.
  results: [], compare: "photo",
  estimate: null, // the estimate of the run the settings describe: { seconds, ... }
};

// ---------- status, buttons, progress ----------

function setStatus(text, kind = "info") {
  ui.status.textContent = text;
  ui.status.dataset.kind = kind;
}

function refreshButtons() {
  const running = state.run !== null;
  ui.denoise.disabled = !state.ready || !state.image || running;
  ui.cancel.disabled = !running;
  ui.denoise.textContent = running ? "Denoising…" : "Denoise";
  ui.engineChoice.disabled = running;
  ui.busy.hidden = !running;
}

function seconds(s) {
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 90) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

// This device's speed: seconds one worker takes per megapixel per network
// evaluation, measured by the package (its first estimate times a small
// tile; every finished run measures it again) and kept per backend in
// localStorage (one number, nothing about the photo), so that the next
// visit estimates without the calibration tile.
const speedKey = (backend) => `realdenoise.secondsPerMegapixelEvaluation.${backend}`;
function knownSpeed(backend) {
  try {
    const value = Number(localStorage.getItem(speedKey(backend)));
    return Number.isFinite(value) && value > 0 ? value : null;
  } catch {
    return null; // storage may be disabled
  }
}
engine.onSpeed = (backend, speed) => {
  try {
    if (speed > 0) localStorage.setItem(speedKey(backend), String(speed));
  } catch {
    // storage may be disabled; the package measures again
  }
};

/**
 * Time left: the estimate made before the run, handed over to the measured
 * fraction as it grows (the fraction alone swings while tiles of unequal
 * cost finish; the estimate alone drifts when the device is busy).
 */
function timeLeft(p, elapsed, estimate) {
  const byEstimate = estimate ? Math.max(0, estimate.seconds - elapsed) : null;
  const byFraction = p.fraction > 0 && elapsed > 0.5 ? (elapsed * (1 - p.fraction)) / p.fraction : null;
  let left = byFraction ?? byEstimate;
  if (byFraction !== null && byEstimate !== null) {
    const trust = Math.min(1, p.fraction * 2);
    left = trust * byFraction + (1 - trust) * byEstimate;
  }
  if (left !== null && left > 0.5) return `about ${seconds(left)} left`;
  if (left !== null || p.fraction >= 1) return "finishing…";
  return "estimating time left…";
}

/**
 * "Step 1 of 1" while step 1 runs: the package reports a step when it is
 * done (`step` of `steps`, 0 before the first) and, with several views,
 * each view as it is done (`evaluation` of `evaluations` within `step`).
 */
function runningStep(p) {
  const views = p.evaluations ?? 1;
  if (p.step >= 1 && (p.evaluation ?? views) < views) return { step: p.step, view: p.evaluation + 1 };
  return { step: Math.min(p.steps, p.step + 1), view: 1 };
}

function showRunProgress(p, started, estimate) {
  if (p.stage !== "denoise" || !p.steps) return;
  ui.progress.max = 1000;
  ui.progress.value = Math.round(Math.min(1, p.fraction) * 1000);
  const elapsed = (performance.now() - started) / 1000;
  const { step, view } = runningStep(p);
  const views = p.evaluations > 1 ? ` (view ${view} of ${p.evaluations})` : "";
  const where = p.workers > 1 && p.tiles > 1
    ? `${p.tilesDone ?? 0} of ${p.tiles} tiles done on ${p.workers} CPU workers`
    : `Step ${step} of ${p.steps}${views} · tile ${p.tile} of ${p.tiles}`;
  ui.progressText.textContent = `${where} · ${Math.floor(p.fraction * 100)}% · ${timeLeft(p, elapsed, estimate)}`;
  ui.progressText.dataset.step = String(step);
  document.title = `${Math.floor(p.fraction * 100)}% · ${TITLE}`;
}

// ---------- the estimate before a run ----------

function currentOptions() {
  return { steps: Number(ui.steps.value), sampler: ui.sampler.value, ensemble: ui.ensemble.value, strength: Number(ui.strength.value) };
}

/** Evaluations per tile: what the time of a run is proportional to. */
const workOf = (options) => Math.min(options.steps, Math.round(options.strength * (state.info?.timesteps ?? 1000))) * views(options.ensemble);

let estimating = 0;
/**
 * Says how long the run the settings describe should take on this device,
 * before it starts; over LONG_RUN_SECONDS it warns and offers Fast when
 * that is quicker. The first estimate times one small tile in the worker.
 */
async function refreshEstimate() {
  const ticket = ++estimating;
  ui.estimateWarning.hidden = true;
  state.estimate = null;
  if (!state.ready || !state.image || state.run !== null) {
    if (!state.image) ui.estimateText.textContent = "";
    return;
  }
  const options = currentOptions();
  if (!Number.isInteger(options.steps) || options.steps < 1 || options.steps > Number(ui.steps.max)) {
    ui.estimateText.textContent = "";
    return;
  }
  const { width, height } = state.image;
  ui.estimateText.textContent = "Estimating the time on this device…";
  let estimate;
  try {
    estimate = await engine.estimate(width, height, options);
  } catch {
    if (ticket === estimating) ui.estimateText.textContent = "";
    return;
  }
  if (ticket !== estimating) return; // the settings changed meanwhile
  state.estimate = estimate;
  const where = state.backend === "webgpu" ? "the GPU"
    : estimate.workers > 1 ? `${estimate.workers} CPU workers` : "the CPU";
  ui.estimateText.textContent = `About ${seconds(estimate.seconds)} on this device (${estimate.tiles} tile${estimate.tiles === 1 ? "" : "s"} on ${where}).`;
  ui.estimateText.dataset.seconds = estimate.seconds.toFixed(2);
  ui.estimateText.dataset.basis = estimate.basis;
  const fast = { ...options, ...presets.fast };
  const work = workOf(options);
  if (estimate.seconds > LONG_RUN_SECONDS && work > workOf(fast)) {
    const faster = (estimate.seconds * workOf(fast)) / work;
    ui.estimateWarningText.textContent = `This is a long run: about ${seconds(estimate.seconds)}.`;
    ui.useFaster.textContent = `Use Fast instead (about ${seconds(faster)})`;
    ui.estimateWarning.hidden = false;
  }
}

ui.useFaster.addEventListener("click", () => {
  const radio = ui.form.querySelector("input[name=preset][value=fast]");
  radio.checked = true;
  applyPreset("fast");
  refreshEstimate();
  ui.denoise.focus();
});

// ---------- presets and settings ----------

function presetFor(steps, ensemble) {
  return Object.keys(presets).find((name) => presets[name].steps === steps && presets[name].ensemble === ensemble);
}

// "4 steps", "8 views" (1 step over 8 views), "2 steps × 8 views".
function presetLabel({ steps, ensemble }) {
  const label = `${steps} step${steps === 1 ? "" : "s"}`;
  if (ensemble === "off") return label;
  const viewsLabel = `${views(ensemble)} views`;
  return steps === 1 ? viewsLabel : `${label} × ${viewsLabel}`;
}

function applyPreset(name) {
  ui.steps.value = String(presets[name].steps);
  ui.ensemble.value = presets[name].ensemble;
  ui.sampler.value = state.info?.defaultSampler ?? "improved";
  ui.strength.value = "1";
  ui.strengthValue.textContent = "100%";
}

function applyInfo(info) {
  presets.balanced.steps = info.defaultSteps;
  for (const name of Object.keys(presets)) {
    $(`${name}-steps`).textContent = presetLabel(presets[name]);
  }
  ui.steps.max = String(info.timesteps);
  const checked = ui.form.querySelector("input[name=preset]:checked");
  if (checked) applyPreset(checked.value);
  const trained = info.trained
    ? "trained weights"
    : "UNTRAINED development weights: the output will not look clean until the trained model ships";
  ui.modelNote.textContent = `Model: ${(info.parameters / 1e6).toFixed(2)} M-parameter diffusion U-Net, ${trained}.`;
  ui.modelNote.dataset.kind = info.trained ? "" : "warning";
}

ui.form.addEventListener("change", (event) => {
  if (event.target.name === "preset") applyPreset(event.target.value);
  refreshEstimate();
});
function markPreset() {
  const name = presetFor(Number(ui.steps.value), ui.ensemble.value);
  for (const radio of ui.form.querySelectorAll("input[name=preset]")) radio.checked = radio.value === name;
}
ui.steps.addEventListener("input", () => {
  markPreset();
  refreshEstimate();
});
ui.ensemble.addEventListener("change", markPreset);
ui.strength.addEventListener("input", () => {
  ui.strengthValue.textContent = `${Math.round(Number(ui.strength.value) * 100)}%`;
});
ui.quality.addEventListener("input", () => {
  ui.qualityValue.textContent = ui.quality.value;
});

// ---------- the model ----------

const megabytes = (bytes) => (bytes / 1e6).toFixed(1);

// The package reports the bytes of its two downloads (the WebAssembly module
// and the weights) as they arrive; `total` is null when the server sends no
// Content-Length (or a compressed one).
function showLoadProgress(p) {
  ui.progress.max = 1;
  ui.progress.value = p.fraction;
  const what = { wasm: "the program", weights: "the weights" }[p.stage];
  if (what && typeof p.loaded === "number") {
    const of = p.total ? ` of ${megabytes(p.total)} MB` : " MB";
    ui.progressText.textContent = `Loading ${what}: ${megabytes(p.loaded)}${of}…`;
    ui.progressText.dataset.bytes = `${p.stage}:${p.loaded}:${p.total ?? ""}`;
    return;
  }
  if (p.stage === "workers") {
    ui.progressText.textContent = `Starting the CPU workers: ${p.loaded} of ${p.total}…`;
    return;
  }
  ui.progressText.textContent = `Loading the model: ${{ init: "starting", backend: "choosing WebGPU or the CPU", model: "preparing", ready: "ready" }[p.stage] ?? p.stage}…`;
}

/** Moves focus to `control` (opening the Advanced settings it may sit in). */
function focusOn(control) {
  const details = control.closest("details");
  if (details && !details.open) details.open = true;
  control.focus();
}

async function loadModel(choice) {
  state.ready = false;
  refreshButtons();
  ui.backend.textContent = "…";
  ui.backend.dataset.backend = "";
  ui.backendNote.textContent = "";
  setStatus("loading the model");
  try {
    const { backend, reason, info, limits, fellBack, workers } = await engine.load(choice, showLoadProgress, knownSpeed);
    state.backend = backend;
    state.workers = workers;
    state.info = info;
    state.limits = limits;
    applyInfo(info);
    ui.backend.textContent = backend === "webgpu" ? "WebGPU" : "CPU";
    ui.backend.dataset.backend = backend;
    // The package never picks a software WebGPU renderer (SwiftShader,
    // llvmpipe...) by itself, and says why in `reason`.
    const software = /software renderer \(([^)]+)\)/.exec(reason ?? "")?.[1];
    ui.backendNote.textContent =
      backend === "webgpu" ? (software ? `as you chose, on a software renderer (${software}): slower than the CPU` : "your graphics card does the work")
      : choice === "cpu" ? "as you chose: slower than WebGPU, same result"
      : fellBack ? `WebGPU failed (${fellBack.message}), so the CPU does the work: slower, same result`
      : software ? `because ${reason}`
      : "WebGPU is not available in this browser, so the CPU does the work: slower, same result";
    ui.backendNote.dataset.reason = reason ?? "";
    state.ready = true;
    ui.progress.value = 0;
    ui.progressText.textContent = "\u00a0";
    setStatus(state.image ? "ready" : "ready: open a photo");
    refreshButtons();
    refreshEstimate();
    // A photo opened while the model loaded: Denoise is next.
    if (state.image && (document.activeElement === document.body || document.activeElement === null)) ui.denoise.focus();
  } catch (error) {
    setStatus(`error: the model did not load (${error.message}); try another choice under Run on`, "error");
    refreshButtons();
    focusOn(ui.engineChoice);
  }
}

ui.engineChoice.addEventListener("change", () => loadModel(ui.engineChoice.value));

// ---------- opening photos ----------

/**
 * Reads the file's bytes before the browser decodes them (www/imagecheck.js):
 * a damaged (truncated) or too large photo is refused with the reason, and
 * whatever was open before stays as it was. Returns whether to go on.
 */
async function checkBeforeDecoding(blob, name) {
  let bytes;
  try {
    bytes = await blob.arrayBuffer();
  } catch (error) {
    setStatus(`error: cannot read “${name}” (${error.message})`, "error");
    focusOpenControl();
    return false;
  }
  const checked = checkImage(bytes);
  if (checked.ok) return true;
  const kept = state.image ? ` “${state.name}” is still open.` : "";
  setStatus(`error: “${name}” is ${checked.problem}: ${checked.reason}. It was not opened.${kept}`, "error");
  focusOpenControl();
  return false;
}

async function openBlob(blob, name) {
  if (!(await checkBeforeDecoding(blob, name))) return;
  if (state.run !== null) state.run.abort();
  let pixels;
  try {
    const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", premultiplyAlpha: "none" });
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    pixels = context.getImageData(0, 0, bitmap.width, bitmap.height);
    bitmap.close();
  } catch {
    setStatus(`error: cannot read “${name}” as an image; try a JPEG, PNG, WebP or AVIF file`, "error");
    focusOpenControl();
    return;
  }
  state.image = pixels;
  state.name = name;
  state.results = [];
  clearResult();
  ui.empty.hidden = true;
  ui.viewer.hidden = false;
  compare.setBefore(pixels);
  const megapixels = (pixels.width * pixels.height) / 1e6;
  ui.photoName.textContent = `${name} · ${pixels.width}×${pixels.height} · ${megapixels.toFixed(megapixels < 1 ? 2 : 1)} MP`;
  ui.progress.value = 0;
  ui.progressText.textContent = "\u00a0";
  if (state.ready) setStatus("ready");
  refreshButtons();
  refreshEstimate();
  // Next: Denoise (or, while the model still loads, once it is ready: see loadModel).
  if (!ui.denoise.disabled) ui.denoise.focus();
  else document.activeElement?.blur?.();
}

/** After a file problem: the control that opens another photo. */
function focusOpenControl() {
  (ui.viewer.hidden ? ui.choose : ui.openAnother).focus();
}

function openFirstImage(files) {
  const list = [...(files ?? [])];
  const file = list.find((f) => f.type.startsWith("image/")) ?? list[0];
  if (file) openBlob(file, file.name || "pasted image");
  return Boolean(file);
}

ui.choose.addEventListener("click", () => ui.fileInput.click());
ui.openAnother.addEventListener("click", () => ui.fileInput.click());
ui.fileInput.addEventListener("change", () => {
  openFirstImage(ui.fileInput.files);
  ui.fileInput.value = "";
});
ui.example.addEventListener("click", async () => {
  try {
    const response = await fetch("vendor/sample-noisy.png");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    await openBlob(await response.blob(), "example-cat-noisy.png");
  } catch (error) {
    setStatus(`error: the example photo did not load (${error.message})`, "error");
    ui.example.focus();
  }
});

let dragDepth = 0;
const carriesFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes("Files");
window.addEventListener("dragenter", (event) => {
  if (!carriesFiles(event)) return;
  dragDepth += 1;
  ui.overlay.hidden = false;
});
window.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) ui.overlay.hidden = true;
});
window.addEventListener("dragover", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
});
window.addEventListener("drop", (event) => {
  event.preventDefault();
  dragDepth = 0;
  ui.overlay.hidden = true;
  openFirstImage(event.dataTransfer?.files);
});
window.addEventListener("paste", (event) => {
  if (openFirstImage(event.clipboardData?.files)) event.preventDefault();
});

// ---------- running ----------

function clearResult() {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = null;
  ui.download.removeAttribute("href");
  ui.result.hidden = true;
  compare.clearAfter();
  showCompareMode("photo");
}

// ---------- comparing two results (A/B) ----------

/**
 * "photo": the photo (left) against the latest result (right).
 * "ab": the previous result, A (left), against the latest, B (right): two
 * presets or settings side by side, at the same zoom and divider.
 */
function showCompareMode(mode) {
  const [a, b] = state.results.length === 2 ? state.results : [null, state.results[0] ?? null];
  if (mode === "ab" && !a) mode = "photo";
  state.compare = mode;
  ui.compareMode.hidden = !a;
  for (const button of ui.compareMode.querySelectorAll("[data-compare]")) {
    button.setAttribute("aria-pressed", String(button.dataset.compare === mode));
  }
  if (!state.image) return;
  if (mode === "ab") {
    compare.paintBefore(a.pixels);
    compare.setLabels(`A · ${a.label}`, `B · ${b.label}`);
  } else {
    compare.paintBefore(state.image);
    compare.setLabels("Before", b ? `After · ${b.label}` : "After");
  }
}

for (const button of ui.compareMode.querySelectorAll("[data-compare]")) {
  button.addEventListener("click", () => showCompareMode(button.dataset.compare));
}

/** "Balanced · 4 steps" or "4 steps" for settings that are no preset. */
function settingsLabel(options) {
  const name = presetFor(options.steps, options.ensemble);
  const label = presetLabel(options);
  const strength = options.strength === 1 ? "" : ` · ${Math.round(options.strength * 100)}%`;
  return `${name ? `${name[0].toUpperCase()}${name.slice(1)} · ` : ""}${label}${strength}`;
}

function outputName(extension) {
  const base = state.name.replace(/\.[^.]+$/, "") || "photo";
  return `${base}-denoised.${extension}`;
}

function canvasBlob(type, quality) {
  return new Promise((resolve, reject) => {
    compare.after.toBlob((blob) => (blob ? resolve(blob) : reject(new Error(`cannot encode ${type}`))), type, quality);
  });
}

async function run() {
  if (!state.ready || !state.image || state.run !== null) return;
  const steps = Number(ui.steps.value);
  const max = Number(ui.steps.max);
  if (!Number.isInteger(steps) || steps < 1 || steps > max) {
    setStatus(`error: steps must be a whole number from 1 to ${max}`, "error");
    focusOn(ui.steps);
    return;
  }
  const options = { steps, sampler: ui.sampler.value, ensemble: ui.ensemble.value, strength: Number(ui.strength.value) };
  const estimate = state.estimate;
  estimating += 1; // an estimate still on its way is for settings of the past
  ui.estimateWarning.hidden = true;
  // The last result (and its downloads) stays until this run replaces it.
  ui.result.classList.toggle("previous", !ui.result.hidden);
  ui.progress.max = 1;
  ui.progress.value = 0;
  ui.progressText.textContent = "Starting…";
  setStatus("denoising");
  const started = performance.now();
  let last = null;
  let ticker = null;
  const controller = new AbortController();
  // The package copies what it sends to the workers; the photo stays ours.
  const result = engine.denoise(state.image, options, (p) => {
    if (p.stage === "denoise" && p.steps) last = p;
    showRunProgress(p, started, estimate);
  }, controller.signal);
  // Keep the time left moving between progress events.
  ticker = setInterval(() => last && showRunProgress(last, started, estimate), 1000);
  state.run = controller;
  refreshButtons();
  ui.cancel.focus(); // Denoise is disabled while it runs; Cancel (or Esc) is next
  let next = ui.denoise;
  try {
    const out = await result;
    const elapsed = (performance.now() - started) / 1000;
    clearInterval(ticker);
    const pixels = new ImageData(out.data, out.width, out.height);
    compare.setAfter(pixels);
    state.results = [...state.results, { pixels, label: settingsLabel(options) }].slice(-2);
    showCompareMode(state.compare);
    const png = await canvasBlob("image/png");
    if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
    state.resultUrl = URL.createObjectURL(png);
    ui.download.href = state.resultUrl;
    ui.download.download = outputName("png");
    const backend = state.backend === "webgpu" ? "WebGPU" : "CPU";
    const tiles = last?.tiles ?? 1;
    const viewsLabel = options.ensemble === "off" ? "" : ` × ${views(options.ensemble)} views`;
    ui.summary.textContent = `Denoised on ${backend} in ${seconds(elapsed)} · ${steps} step${steps === 1 ? "" : "s"}${viewsLabel}, ${tiles} tile${tiles === 1 ? "" : "s"}, ${options.sampler} sampler, strength ${Math.round(options.strength * 100)}%`;
    ui.summary.dataset.seconds = elapsed.toFixed(2);
    if (estimate) {
      ui.summary.dataset.estimated = estimate.seconds.toFixed(2);
      ui.summary.textContent += ` (estimated ${seconds(estimate.seconds)})`;
    }
    ui.result.hidden = false;
    ui.progress.value = ui.progress.max;
    ui.progressText.textContent = `Finished in ${seconds(elapsed)}. Drag across the photo to compare.`;
    setStatus("done", "done");
    next = ui.download;
  } catch (error) {
    const kept = ui.result.hidden ? "" : " The previous result is kept.";
    if (error.name === "AbortError") {
      ui.progress.value = 0;
      ui.progressText.textContent = `Cancelled: the photo is unchanged.${kept}`;
      setStatus("cancelled");
    } else {
      setStatus(`error: ${error.message}.${kept}`, "error");
      // Settings the run refused are fixed there; a backend failure by running elsewhere.
      if (error.name === "InputError") next = ui.steps;
      else if (error.name === "BackendError" || error.name === "InternalError") next = ui.engineChoice;
    }
  } finally {
    ui.result.classList.remove("previous");
    clearInterval(ticker);
    state.run = null;
    document.title = TITLE;
    refreshButtons();
    refreshEstimate();
    if (state.image) focusOn(next);
  }
}

function cancel() {
  if (state.run === null) return;
  setStatus("cancelling");
  ui.cancel.disabled = true;
  state.run.abort();
}

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  run();
});
ui.cancel.addEventListener("click", cancel);
window.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.run !== null) cancel();
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) run();
});

ui.downloadJpeg.addEventListener("click", async () => {
  try {
    const jpeg = await canvasBlob("image/jpeg", Number(ui.quality.value) / 100);
    const url = URL.createObjectURL(jpeg);
    const link = Object.assign(document.createElement("a"), { href: url, download: outputName("jpg") });
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    setStatus(`error: ${error.message}`, "error");
  }
});

// ---------- offline ----------

async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) {
    ui.offlineNote.textContent = "This browser cannot keep the page for offline use.";
    return;
  }
  navigator.serviceWorker.addEventListener("message", ({ data }) => {
    if (data?.type === "precache" && !state.ready) {
      ui.progress.max = data.total;
      ui.progress.value = data.done;
      ui.progressText.textContent = `Saving the page and model for offline use: ${data.done} of ${data.total} files…`;
    }
  });
  let registration;
  try {
    registration = await navigator.serviceWorker.register("sw.js", { updateViaCache: "none" });
  } catch (error) {
    ui.offlineNote.textContent = `Offline use is not available (${error.message}).`;
    return;
  }
  const hadController = Boolean(navigator.serviceWorker.controller);
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (hadController) ui.offlineNote.textContent = "A new version was saved for offline use; reload the page to use it.";
  });
  if (!hadController) {
    // First visit: let the service worker fetch and cache everything once,
    // then load the model from that cache (one download, not two).
    await new Promise((resolve) => {
      navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true });
      const installing = registration.installing ?? registration.waiting;
      installing?.addEventListener("statechange", () => installing.state === "redundant" && resolve());
      if (!installing) resolve(); // active already (e.g. after a hard reload)
      setTimeout(resolve, 60_000);
    });
  }
  ui.offlineNote.textContent = navigator.serviceWorker.controller
    ? "Saved in this browser: the page and model work offline from now on."
    : "Offline use is not available right now.";
}

// ---------- start ----------

refreshButtons();
setStatus("loading the model");
await registerServiceWorker();
await loadModel("auto");
