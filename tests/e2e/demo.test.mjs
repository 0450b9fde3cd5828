// The demo page (www/) end to end in headless Debian Chromium: the real
// server (www/serve.mjs), a photo through the file input, a Balanced run, the
// downloaded PNG's PSNR, every request the page makes, Cancel, the CPU
// fallback without WebGPU, offline use, and the phone-sized layout.
//
// Two noisy photos, both validation photo chelsea (scikit-image, assets/) with
// seeded synthetic camera noise from the training pipeline:
// - fixtures/eye-*-96x96.png: a 96 px crop (the cat's eye) of the demo's
//   mid-noise example, small enough for WebGPU under SwiftShader (make-fixtures.mjs);
// - fixtures/chelsea-high-noisy-451x300.png: the whole photo at the SIDD-like
//   level (a phone at night), the setting of the paper's benchmark, for the
//   issue's PSNR check on the CPU path:
//   `realdenoise-train synth assets/sample-clean.png -o tests/e2e/fixtures/chelsea-high-noisy-451x300.png --level high --seed 7`
// Screenshots go to out/e2e/; E2E_DOCS=1 also runs the bundled example photo
// (slow on the CPU) and writes docs/demo.png and docs/demo-phone.png;
// E2E_LARGE=1 also denoises a whole 24-megapixel photo on the CPU path
// (about 8 minutes on two cores).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { PNG } from "pngjs";
import { startServer } from "../../www/serve.mjs";
import { checkImage } from "../../www/imagecheck.js";
// The module's own tests (node, no browser) run with these.
import { pngClaiming } from "./imagecheck.test.mjs";

const root = resolve(import.meta.dirname, "../..");
const shots = join(root, "out/e2e");
const NOISY = join(import.meta.dirname, "fixtures/eye-noisy-96x96.png");
const CLEAN = join(import.meta.dirname, "fixtures/eye-clean-96x96.png");
const PHOTO_NOISY = join(import.meta.dirname, "fixtures/chelsea-high-noisy-451x300.png");
const PHOTO_CLEAN = join(root, "assets/sample-clean.png");
const RUN_TIMEOUT = 240_000;
mkdirSync(shots, { recursive: true });

const FLAGS = [
  "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync",
];

let server;
let origin;
const profiles = [];
const report = {}; // printed at the end: what the page showed
before(async () => {
  server = await startServer({ port: 0 });
  origin = new URL(server.url).origin;
});
after(async () => {
  await server?.close();
  for (const dir of profiles) rmSync(dir, { recursive: true, force: true });
  console.log(`e2e report ${JSON.stringify(report, null, 2)}`);
});

function source(request) {
  if (request.serviceWorker()) return "service worker";
  try {
    return request.frame() ? "page" : "worker";
  } catch {
    return "worker";
  }
}

/** A fresh Chromium profile; records every request (page, workers, service worker) and console errors. */
async function open({ webgpu, viewport = { width: 1280, height: 860 } }) {
  const profile = mkdtempSync(join(tmpdir(), "realdenoise-e2e-"));
  profiles.push(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: webgpu ? [...FLAGS, "--enable-unsafe-webgpu"] : FLAGS,
    viewport,
    acceptDownloads: true,
  });
  const requests = [];
  const problems = [];
  context.on("request", (request) => {
    requests.push({
      url: request.url(),
      method: request.method(),
      body: request.postDataBuffer()?.length ?? 0,
      from: source(request),
    });
  });
  // Progress <progress> value/max and status text, as the page shows them.
  await context.addInitScript(() => {
    window.__seen = [];
    document.addEventListener("DOMContentLoaded", () => {
      const progress = document.querySelector("[data-testid=progress]");
      const status = document.querySelector("[data-testid=status]");
      const text = document.querySelector("[data-testid=progress-text]");
      new MutationObserver(() => {
        window.__seen.push({ t: Math.round(performance.now()), value: progress.value, max: progress.max, status: status.textContent, text: text?.textContent });
      }).observe(document.body, { attributes: true, childList: true, subtree: true, characterData: true });
    });
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (message) => {
    if (message.type() === "error" || /Content Security Policy/i.test(message.text())) problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  return { context, page, requests, problems, profile };
}

const status = (page) => page.textContent("[data-testid=status]");

async function waitForStatus(page, pattern, timeout = RUN_TIMEOUT) {
  await page.waitForFunction(
    (source) => new RegExp(source).test(document.querySelector("[data-testid=status]").textContent),
    pattern.source, { timeout, polling: 100 },
  );
}

async function loadPage(page) {
  await page.goto(origin + "/");
  await waitForStatus(page, /^ready|^error/, 120_000);
  const text = await status(page);
  assert.match(text, /^ready/, `page did not get ready: ${text}`);
}

async function choosePreset(page, name) {
  await page.click(`label:has([data-testid=preset-${name}])`);
}

/** Balanced (etc.) run on a noisy photo; returns what the page showed. */
async function runAndDownload(page, preset, file = NOISY, timeout = RUN_TIMEOUT) {
  await page.setInputFiles("[data-testid=file-input]", file);
  await page.waitForSelector("#viewer:not([hidden])");
  await choosePreset(page, preset);
  const steps = Number(await page.inputValue("[data-testid=steps]"));
  await page.evaluate(() => (window.__seen.length = 0));
  await page.click("[data-testid=denoise]");
  await waitForStatus(page, /^done$|^error/, timeout);
  assert.equal(await status(page), "done");
  const seen = await page.evaluate(() => window.__seen);
  const href = await page.getAttribute("[data-testid=download]", "href");
  assert.match(href, /^blob:/, "the download link is a blob: URL");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("[data-testid=download]")]);
  const png = readFileSync(await download.path());
  return {
    steps, seen, png, name: download.suggestedFilename(),
    summary: await page.textContent("[data-testid=summary]"),
    backend: await page.textContent("[data-testid=backend]"),
    progressText: seen.map((s) => s.text).filter((t) => /^Step/.test(t ?? "")),
  };
}

function decode(bytes) {
  const image = PNG.sync.read(bytes);
  return { width: image.width, height: image.height, data: image.data }; // RGBA
}

function psnr(a, b) {
  assert.equal(a.width, b.width);
  assert.equal(a.height, b.height);
  let sum = 0;
  let n = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    for (let c = 0; c < 3; c++) {
      const d = a.data[i + c] - b.data[i + c];
      sum += d * d;
      n += 1;
    }
  }
  return 10 * Math.log10((255 * 255) / (sum / n));
}

/** PSNR (dB) of the noisy input and of the page's result against the clean photo. */
function psnrGain(result, noisyPath, cleanPath) {
  const clean = decode(readFileSync(cleanPath));
  const noisy = psnr(decode(readFileSync(noisyPath)), clean);
  const denoised = psnr(result, clean);
  return { noisy, denoised, gain: denoised - noisy };
}

/** The same numbers rounded to 0.01 dB, for the report and messages. */
const rounded = (decibels) => Object.fromEntries(Object.entries(decibels).map(([key, value]) => [key, Number(value.toFixed(2))]));

function checkRequests(requests, label) {
  const foreign = requests.filter((r) => !/^(blob|data):/.test(r.url) && new URL(r.url).origin !== origin);
  const withBody = requests.filter((r) => r.body > 0 || !["GET", "HEAD"].includes(r.method));
  const byFrom = {};
  for (const r of requests) byFrom[r.from] = (byFrom[r.from] ?? 0) + 1;
  report[`requests (${label})`] = {
    total: requests.length, ...byFrom, foreign: foreign.length, withBody: withBody.length,
    paths: [...new Set(requests.map((r) => (/^(blob|data):/.test(r.url) ? r.url.split(":")[0] + ":" : new URL(r.url).pathname)))],
  };
  assert.deepEqual(foreign, [], `requests to another origin: ${JSON.stringify(foreign)}`);
  assert.deepEqual(withBody, [], `requests with a body: ${JSON.stringify(withBody)}`);
}

let balanced = null; // the WebGPU Balanced run, for the PSNR test

test("the server: the page, application/wasm, the CSP header, nothing private", async () => {
  const page = await fetch(origin + "/");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-security-policy"), /default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; img-src 'self' blob: data:/);
  const html = await page.text();
  assert.match(html, /http-equiv="Content-Security-Policy"/);
  assert.match(html, /never leaves this device/);
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=/i, "no inline scripts or styles");
  const wasm = await fetch(origin + "/vendor/realdenoise/realdenoise_bg.wasm", { method: "HEAD" });
  assert.equal(wasm.headers.get("content-type"), "application/wasm");
  for (const path of ["/serve.mjs", "/package.json", "/node_modules/sirv/package.json", "/.gitignore"]) {
    assert.equal((await fetch(origin + path)).status, 404, path);
  }
});

// SwiftShader, the only WebGPU adapter here, is a software renderer: "auto"
// runs on the CPU (next test), so this run asks for WebGPU explicitly.
test("WebGPU: a Balanced run on a noisy photo finishes; progress, download, requests, screenshots", { timeout: 600_000 }, async () => {
  const { context, page, requests, problems } = await open({ webgpu: true });
  try {
    await loadPage(page);
    await page.click("#advanced summary");
    await page.selectOption("[data-testid=engine-choice]", "webgpu");
    await waitForStatus(page, /^ready|^error/, 120_000);
    assert.match(await status(page), /^ready/);
    assert.equal(await page.textContent("[data-testid=backend]"), "WebGPU");
    assert.equal(await page.textContent("[data-testid=backend-note]"), "as you chose, on a software renderer (SwiftShader): slower than the CPU");
    await page.screenshot({ path: join(shots, "demo-empty.png") });
    await page.setInputFiles("[data-testid=file-input]", NOISY);
    await page.waitForSelector("#viewer:not([hidden])");
    await page.screenshot({ path: join(shots, "demo-before.png") });
    balanced = await runAndDownload(page, "balanced");
    await page.screenshot({ path: join(shots, "demo-after.png") });
    await page.click("[data-testid=zoom-1to1]");
    await page.screenshot({ path: join(shots, "demo-after-1to1.png") });

    // Cancel on WebGPU: the package stops the worker at its next network
    // evaluation (it waits for the GPU at each), so control is back within
    // 2 s and the model stays loaded: no new worker, no second wasm download.
    const wasmFetches = () => requests.filter((r) => r.url.endsWith("/realdenoise_bg.wasm")).length;
    const fetchedBefore = wasmFetches();
    await choosePreset(page, "best");
    await page.click("[data-testid=denoise]");
    await page.waitForFunction(() => document.querySelector("[data-testid=progress]").value > 0, null, { timeout: RUN_TIMEOUT, polling: 50 });
    const clicked = Date.now();
    await page.click("[data-testid=cancel]");
    await waitForStatus(page, /^cancelled$/, 30_000);
    const cancelled = (Date.now() - clicked) / 1000;
    await page.waitForSelector("[data-testid=denoise]:not([disabled])", { timeout: 120_000 });
    const ready = (Date.now() - clicked) / 1000;
    report["WebGPU cancel"] = { secondsToCancelled: cancelled, secondsToReady: ready, backend: await page.textContent("[data-testid=backend]") };
    assert.ok(ready < 2, `Denoise was back ${ready} s after Cancel`);
    assert.equal(wasmFetches(), fetchedBefore, "Cancel replaced the worker (the wasm was fetched again)");
    assert.equal(await page.textContent("[data-testid=backend]"), "WebGPU");

    // The <progress> advanced through the run, with step and tile text.
    const during = balanced.seen.filter((s) => s.status === "denoising" && s.max > 1);
    const ratios = during.map((s) => s.value / s.max);
    assert.ok(ratios.length >= 2, `progress seen: ${JSON.stringify(balanced.seen.slice(0, 20))}`);
    assert.ok(ratios.every((r, i) => i === 0 || r >= ratios[i - 1]), `progress went back: ${ratios}`);
    assert.ok(ratios.at(-1) > ratios[0]);
    assert.ok(balanced.progressText.some((t) => /Step \d+ of \d+ · tile 1 of 1 · \d+% · (about .* left|estimating|finishing)/.test(t)), balanced.progressText.join("\n"));
    // Steps counted from 1: "Step 1 of 4" while the first step runs, never "Step 0".
    assert.ok(balanced.progressText.some((t) => /^Step 1 of \d+/.test(t)), balanced.progressText.join("\n"));
    assert.ok(!balanced.progressText.some((t) => /^Step 0/.test(t)), balanced.progressText.join("\n"));
    const info = await page.evaluate(() => document.querySelector("#balanced-steps").textContent);
    assert.equal(`${balanced.steps} steps`, info);
    assert.match(balanced.summary, /^Denoised on WebGPU in [\d.]+ s/);
    assert.match(balanced.name, /-denoised\.png$/);
    const image = decode(balanced.png);
    assert.deepEqual([image.width, image.height], [96, 96]);
    const t0 = balanced.seen.find((s) => s.status === "denoising")?.t ?? 0;
    report["WebGPU Balanced"] = {
      steps: balanced.steps, summary: balanced.summary,
      progress: balanced.seen.filter((s) => /^Step/.test(s.text ?? "")).map((s) => `+${((s.t - t0) / 1000).toFixed(1)} s ${s.text}`)
        .filter((line, i, all) => i === 0 || line.slice(line.indexOf(" s ")) !== all[i - 1].slice(all[i - 1].indexOf(" s "))),
    };

    // Every request, from the page, the package's worker and the service worker.
    checkRequests(requests, "WebGPU run");
    assert.ok(requests.some((r) => r.url.endsWith("/realdenoise.rdnz")), "the weights were requested");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

// The WebGPU run's crop is the detailed eye at mid noise, where even FFDNet
// at its oracle sigma gains only ~3.7 dB: this checks a real gain (and the
// browser matches the native CLI within 2/255, see tests/browser) and reports
// the number. The 5 dB check is on the whole photo at high noise, below.
test("WebGPU: the denoised crop is closer to the clean crop than the noisy input (PSNR)", () => {
  assert.ok(balanced, "the Balanced run did not finish");
  const decibels = psnrGain(decode(balanced.png), NOISY, CLEAN);
  const shown = rounded(decibels);
  report["PSNR, eye crop, mid noise, WebGPU Balanced"] = shown;
  assert.ok(decibels.gain > 0.05, `PSNR noisy ${shown.noisy} dB, denoised ${shown.denoised} dB: the page made the photo worse or left it unchanged`);
});

// The target: the downloaded PNG is at least 5 dB closer (PSNR) to
// the clean photo than the noisy input.
const TARGET_GAIN_DB = 5;

test("without WebGPU the page says it runs on the CPU, gains at least 5 dB on a whole noisy photo, and Cancel mid-run recovers", { timeout: 600_000 }, async () => {
  const { context, page, requests, problems } = await open({ webgpu: false });
  try {
    await loadPage(page);
    assert.equal(await page.textContent("[data-testid=backend]"), "CPU");
    assert.match(await page.textContent("[data-testid=backend-note]"), /WebGPU is not available/);
    const run = await runAndDownload(page, "balanced", PHOTO_NOISY);
    assert.match(run.summary, /^Denoised on CPU in [\d.]+ s/);
    const denoised = decode(run.png);
    assert.deepEqual([denoised.width, denoised.height], [451, 300]);
    const decibels = psnrGain(denoised, PHOTO_NOISY, PHOTO_CLEAN);
    const shown = rounded(decibels);
    report["CPU Balanced, whole photo, high noise"] = { steps: run.steps, summary: run.summary, ...shown };
    assert.ok(decibels.gain >= TARGET_GAIN_DB, `PSNR noisy ${shown.noisy} dB, denoised ${shown.denoised} dB: a gain of ${shown.gain} dB, under the ${TARGET_GAIN_DB} dB target`);

    // Cancel after the first step of a Best run: the last result stays.
    const previousHref = await page.getAttribute("[data-testid=download]", "href");
    await choosePreset(page, "best");
    await page.click("[data-testid=denoise]");
    await page.waitForFunction(() => {
      const p = document.querySelector("[data-testid=progress]");
      return p.max > 1 && p.value > 0;
    }, null, { timeout: RUN_TIMEOUT, polling: 50 });
    assert.equal(await page.isEnabled("[data-testid=cancel]"), true);
    const clicked = Date.now();
    await page.click("[data-testid=cancel]");
    await waitForStatus(page, /^cancelled$/, 30_000);
    report.cancel = { secondsToCancelled: (Date.now() - clicked) / 1000, progressText: await page.textContent("[data-testid=progress-text]") };
    assert.equal(await page.getAttribute("[data-testid=download]", "href"), previousHref, "the last result is kept after a cancelled run");
    assert.equal(await page.isVisible("#result"), true);
    await page.waitForSelector("[data-testid=denoise]:not([disabled])", { timeout: 60_000 });
    assert.equal(await page.isDisabled("[data-testid=cancel]"), true);
    const again = await runAndDownload(page, "fast");
    assert.match(again.summary, /1 step,/);
    report["CPU Fast after cancel"] = again.summary;
    checkRequests(requests, "CPU run and cancel");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

/** A real JPEG (encoded by the page's canvas), and the same cut to `fraction` of its length. */
async function truncatedJpeg(page, fraction = 0.6) {
  const base64 = await page.evaluate(async () => {
    const canvas = new OffscreenCanvas(320, 240);
    const context = canvas.getContext("2d");
    for (let i = 0; i < 60; i++) {
      context.fillStyle = `hsl(${(i * 47) % 360} 70% 50%)`;
      context.fillRect((i * 53) % 320, (i * 31) % 240, 40, 30);
    }
    const bytes = new Uint8Array(await (await canvas.convertToBlob({ type: "image/jpeg", quality: 0.9 })).arrayBuffer());
    let text = "";
    for (const byte of bytes) text += String.fromCharCode(byte);
    return btoa(text);
  });
  const whole = Buffer.from(base64, "base64");
  assert.deepEqual(checkImage(whole), { ok: true, format: "jpeg", width: 320, height: 240 });
  return whole.subarray(0, Math.floor(whole.length * fraction));
}

/** Counts the page's createImageBitmap calls (the decodes) in window.__decodes. */
async function countDecodes(context) {
  await context.addInitScript(() => {
    const decode = window.createImageBitmap;
    window.__decodes = 0;
    window.createImageBitmap = function (...args) {
      window.__decodes += 1;
      return decode.apply(this, args);
    };
  });
}

// Browsers decode a truncated JPEG silently (the lower part grey) and try to
// decode a PNG header claiming 100,000 x 100,000 pixels (which can take the
// tab down): the page reads the bytes first (www/imagecheck.js).
test("a truncated JPEG and a 100,000 x 100,000 PNG bomb are refused before decoding; the open photo stays usable", { timeout: 600_000 }, async () => {
  const { context, page, requests, problems } = await open({ webgpu: false });
  try {
    await countDecodes(context);
    await loadPage(page);
    await page.setInputFiles("[data-testid=file-input]", NOISY);
    await page.waitForSelector("#viewer:not([hidden])");
    const shown = await page.textContent("#photo-name");
    assert.match(shown, /^eye-noisy-96x96\.png · 96×96/);
    const decodes = await page.evaluate(() => window.__decodes);
    assert.equal(decodes, 1);

    const cut = await truncatedJpeg(page);
    await page.setInputFiles("[data-testid=file-input]", { name: "cut.jpg", mimeType: "image/jpeg", buffer: cut });
    await waitForStatus(page, /^error/, 30_000);
    const damaged = await status(page);
    report["damaged file"] = damaged;
    assert.equal(damaged, `error: “cut.jpg” is damaged: it is truncated: the data ends at byte ${cut.length} before the JPEG end-of-image marker. It was not opened. “eye-noisy-96x96.png” is still open.`);

    const bomb = pngClaiming(100_000, 100_000);
    assert.ok(bomb.length < 300);
    await page.setInputFiles("[data-testid=file-input]", { name: "bomb.png", mimeType: "image/png", buffer: bomb });
    await waitForStatus(page, /^error: “bomb/, 30_000);
    const large = await status(page);
    report["100,000 x 100,000 PNG"] = large;
    assert.equal(large, "error: “bomb.png” is too large: its header declares 100000×100000 pixels (10000 megapixels); the most this page accepts is 65535 pixels per side and 200 megapixels. It was not opened. “eye-noisy-96x96.png” is still open.");

    // Neither was decoded; the photo before them is still open and runs.
    assert.equal(await page.evaluate(() => window.__decodes), decodes);
    assert.equal(await page.textContent("#photo-name"), shown);
    await choosePreset(page, "fast");
    await page.click("[data-testid=denoise]");
    await waitForStatus(page, /^done$|^error/);
    assert.equal(await status(page), "done");
    assert.match(await page.textContent("[data-testid=summary]"), /^Denoised on CPU in [\d.]+ s · 1 step/);
    checkRequests(requests, "damaged files");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

// Headless Chromium's only WebGPU adapter is SwiftShader, a GPU emulated on
// the CPU: the package's "auto" runs on the CPU instead, and the page says why.
test("with only a software WebGPU adapter (SwiftShader) the page runs on the CPU and says why", { timeout: 600_000 }, async () => {
  const { context, page, requests, problems } = await open({ webgpu: true });
  try {
    await loadPage(page);
    assert.equal(await page.evaluate(async () => (await navigator.gpu?.requestAdapter())?.info?.architecture), "swiftshader");
    assert.equal(await page.textContent("[data-testid=backend]"), "CPU");
    const note = await page.textContent("[data-testid=backend-note]");
    report["software WebGPU note"] = note;
    assert.equal(note, "because the only WebGPU adapter is a software renderer (SwiftShader); the CPU is faster");
    await page.setInputFiles("[data-testid=file-input]", NOISY);
    await page.waitForSelector("#viewer:not([hidden])");
    await choosePreset(page, "fast");
    await page.click("[data-testid=denoise]");
    await waitForStatus(page, /^done$|^error/);
    assert.equal(await status(page), "done");
    assert.match(await page.textContent("[data-testid=summary]"), /^Denoised on CPU in /);
    // A damaged file on top, for the screenshot of both messages.
    const cut = await truncatedJpeg(page, 0.5);
    await page.setInputFiles("[data-testid=file-input]", { name: "holiday.jpg", mimeType: "image/jpeg", buffer: cut });
    await waitForStatus(page, /^error: “holiday\.jpg” is damaged/, 30_000);
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(shots, "demo-software-gpu-damaged-file.png"), animations: "disabled" });
    checkRequests(requests, "software WebGPU");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("offline after the first visit; example photo, paste, drop; labels; phone layout", { timeout: 600_000 }, async () => {
  const { context, page, requests, problems } = await open({ webgpu: false, viewport: { width: 390, height: 844 } });
  try {
    await loadPage(page);
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    assert.match(await page.textContent("[data-testid=offline-note]"), /offline/);

    // Every control has a label, and the phone layout does not scroll sideways.
    const unlabeled = await page.evaluate(() => [...document.querySelectorAll("input, select, button, progress")]
      .filter((el) => !(el.labels?.length || el.getAttribute("aria-label") || el.textContent.trim()))
      .map((el) => el.outerHTML.slice(0, 80)));
    assert.deepEqual(unlabeled, []);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);

    // Offline: reload, load the model from the Cache API, run Fast.
    await context.setOffline(true);
    await loadPage(page);
    await page.click("[data-testid=example]");
    await page.waitForSelector("#viewer:not([hidden])");
    assert.match(await page.textContent("#photo-name"), /451×300/);
    await page.screenshot({ path: join(shots, "demo-phone-before.png"), fullPage: true });
    await page.setInputFiles("[data-testid=file-input]", NOISY);
    await choosePreset(page, "fast");
    await page.click("[data-testid=denoise]");
    await waitForStatus(page, /^done$|^error/);
    assert.equal(await status(page), "done");
    report["offline CPU Fast"] = await page.textContent("[data-testid=summary]");
    await page.screenshot({ path: join(shots, "demo-phone-after.png"), fullPage: true });
    await page.emulateMedia({ colorScheme: "dark" });
    await page.screenshot({ path: join(shots, "demo-phone-dark.png"), fullPage: true });
    await page.emulateMedia({ colorScheme: "light" });
    await context.setOffline(false);

    // Paste and drop open a photo too.
    const bytes = readFileSync(NOISY).toString("base64");
    for (const how of ["paste", "drop"]) {
      const size = await page.evaluate(async ({ bytes, how }) => {
        const file = new File([Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0))], `${how}.png`, { type: "image/png" });
        const transfer = new DataTransfer();
        transfer.items.add(file);
        if (how === "paste") window.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer }));
        else document.body.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        await new Promise((r) => setTimeout(r, 500));
        return document.querySelector("#photo-name").textContent;
      }, { bytes, how });
      assert.match(size, new RegExp(`^${how}\\.png · 96×96`));
    }
    checkRequests(requests, "offline and phone");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

const focused = (page) => page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName);

test("load shows byte progress; the last result stays through a new run and its cancel; focus moves to the next control", { timeout: 600_000 }, async () => {
  const { context, page, problems } = await open({ webgpu: false });
  try {
    await loadPage(page);
    const loading = (await page.evaluate(() => window.__seen.map((s) => s.text))).filter((t) => /^Loading the/.test(t ?? ""));
    assert.ok(loading.some((t) => /^Loading the weights: [\d.]+ of 1\.8 MB…$/.test(t)), `no weights byte progress: ${[...new Set(loading)].join(" | ")}`);
    assert.ok(loading.some((t) => /^Loading the program: [\d.]+( of [\d.]+)? MB…$/.test(t)), `no wasm byte progress: ${[...new Set(loading)].join(" | ")}`);
    report["load progress"] = [...new Set(loading)].slice(-3);

    // "Try the example photo" -> Denoise.
    await page.click("[data-testid=example]");
    await page.waitForSelector("#viewer:not([hidden])");
    await page.waitForFunction(() => document.activeElement?.id === "denoise", null, { timeout: 10_000 }).catch(() => {});
    assert.equal(await focused(page), "denoise", "after the example photo opens");

    // A run finishes -> Download PNG.
    await page.setInputFiles("[data-testid=file-input]", NOISY);
    await page.waitForFunction(() => document.querySelector("#photo-name").textContent.includes("96×96"));
    assert.equal(await focused(page), "denoise", "after a photo opens");
    await choosePreset(page, "fast");
    await page.click("[data-testid=denoise]");
    await waitForStatus(page, /^done$|^error/);
    assert.equal(await status(page), "done");
    assert.equal(await focused(page), "download", "after a run");
    const href = await page.getAttribute("[data-testid=download]", "href");
    const summary = await page.textContent("[data-testid=summary]");

    // A new run keeps the last result and its downloads on screen; Cancel keeps them too.
    await choosePreset(page, "best");
    await page.click("[data-testid=denoise]");
    await page.waitForFunction(() => document.querySelector("[data-testid=progress]").value > 0, null, { timeout: RUN_TIMEOUT, polling: 50 });
    assert.equal(await focused(page), "cancel", "during a run");
    assert.equal(await page.isVisible("#result"), true, "the last result disappeared when a new run started");
    assert.equal(await page.getAttribute("[data-testid=download]", "href"), href);
    assert.equal(await page.isVisible("[data-testid=download-jpeg]"), true);
    await page.screenshot({ path: join(shots, "demo-run-keeps-result.png") });
    await page.click("[data-testid=cancel]");
    await waitForStatus(page, /^cancelled$/, 30_000);
    await page.waitForSelector("[data-testid=denoise]:not([disabled])", { timeout: 60_000 });
    assert.equal(await page.isVisible("#result"), true, "the last result disappeared after Cancel");
    assert.equal(await page.getAttribute("[data-testid=download]", "href"), href);
    assert.equal(await page.textContent("[data-testid=summary]"), summary);
    assert.match(await page.textContent("[data-testid=progress-text]"), /previous result is kept/);
    await page.waitForFunction(() => document.activeElement?.id === "denoise", null, { timeout: 10_000 }).catch(() => {});
    assert.equal(await focused(page), "denoise", "after Cancel");
    await page.screenshot({ path: join(shots, "demo-cancel-keeps-result.png") });
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("[data-testid=download]")]);
    assert.deepEqual([decode(readFileSync(await download.path())).width], [96]);

    // An error -> the control that fixes it: a damaged file -> "Open another…"; bad steps -> Steps.
    await page.setInputFiles("[data-testid=file-input]", { name: "cut.jpg", mimeType: "image/jpeg", buffer: await truncatedJpeg(page) });
    await waitForStatus(page, /^error/, 10_000);
    assert.equal(await focused(page), "open-another", "after a damaged file");
    await page.evaluate(() => {
      document.querySelector("#advanced").open = false;
      document.querySelector("[data-testid=steps]").value = "0";
    });
    await page.click("[data-testid=denoise]");
    await waitForStatus(page, /^error: steps/, 10_000);
    assert.equal(await focused(page), "steps", "after a bad step count");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

/** A screenshot of a new state: into out/e2e/, and with E2E_DOCS=1 also docs/. */
async function stateShot(page, name) {
  await page.waitForTimeout(300); // the progress bar's 0.2 s transition
  await page.screenshot({ path: join(shots, name), animations: "disabled" });
  if (process.env.E2E_DOCS) await page.screenshot({ path: join(root, "docs", name), animations: "disabled" });
}

/** A checksum of a canvas's pixels, to tell which image it shows. */
const canvasSum = (page, id) => page.evaluate((id) => {
  const canvas = document.getElementById(id);
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  let sum = 0;
  for (let i = 0; i < data.length; i++) sum = (sum * 31 + data[i]) % 1_000_000_007;
  return sum;
}, id);

// The estimate before a run: made from the device's measured speed (here a
// slow device is simulated by a remembered speed of 20,000 s per megapixel-
// evaluation), a warning for a long run that offers Fast, and the real
// speed taking over after a run. Then A/B: the two last results side by side.
test("the estimate before a run warns about a long one and offers Fast; steps count from 1; A/B compares two presets", { timeout: 600_000 }, async () => {
  const { context, page, problems } = await open({ webgpu: false });
  try {
    await context.addInitScript(() => {
      if (!sessionStorage.getItem("seeded")) {
        localStorage.setItem("realdenoise.secondsPerMegapixelEvaluation.cpu", "20000");
        sessionStorage.setItem("seeded", "1");
      }
    });
    await loadPage(page);
    await page.setInputFiles("[data-testid=file-input]", NOISY);
    await page.waitForSelector("#viewer:not([hidden])");
    await choosePreset(page, "balanced");
    await page.waitForSelector("[data-testid=estimate-warning]:not([hidden])", { timeout: 30_000 });
    const estimate = await page.textContent("[data-testid=estimate-text]");
    const warning = await page.textContent("[data-testid=estimate-warning]");
    // 96 x 96 px = 0.0092 MP, 4 evaluations, 20,000 s each: 737 s; Fast: 184 s.
    assert.match(estimate, /^About 12 min 17 s on this device \(1 tile on the CPU\)\.$/);
    assert.match(warning, /This is a long run: about 12 min 17 s\.\s*Use Fast instead \(about 3 min 4 s\)/);
    await stateShot(page, "demo-estimate-warning.png");
    await page.click("[data-testid=use-faster]");
    assert.equal(await page.isChecked("[data-testid=preset-fast]"), true);
    await page.waitForFunction(() => /^About 3 min 4 s/.test(document.querySelector("[data-testid=estimate-text]").textContent), null, { timeout: 10_000 });
    assert.equal(await page.isHidden("[data-testid=estimate-warning]"), true, "Fast itself is not warned about");
    assert.equal(await focused(page), "denoise");

    // A Fast run: "Step 1 of 1" while it runs, never "Step 0".
    await page.evaluate(() => (window.__seen.length = 0));
    await page.click("[data-testid=denoise]");
    await waitForStatus(page, /^done$|^error/);
    assert.equal(await status(page), "done");
    const texts = (await page.evaluate(() => window.__seen.map((s) => s.text))).filter((t) => /^Step/.test(t ?? ""));
    assert.ok(texts.some((t) => /^Step 1 of 1 · tile 1 of 1/.test(t)), texts.join("\n"));
    assert.ok(!texts.some((t) => /^Step 0/.test(t)), texts.join("\n"));
    assert.match(await page.textContent("[data-testid=summary]"), /\(estimated 3 min 4 s\)$/);
    const fastResult = await canvasSum(page, "after");
    // The run measured the real speed: the next estimate uses it.
    await page.waitForFunction(() => Number(document.querySelector("[data-testid=estimate-text]").dataset.seconds) < 60, null, { timeout: 30_000 });
    const realEstimate = Number(await page.getAttribute("[data-testid=estimate-text]", "data-seconds"));
    const fastSeconds = Number(await page.getAttribute("[data-testid=summary]", "data-seconds"));
    assert.ok(realEstimate < 60, `the estimate after a ${fastSeconds} s run is ${realEstimate} s`);
    report["estimate after a run"] = { fastSeconds, nextEstimate: realEstimate, text: await page.textContent("[data-testid=estimate-text]") };

    // A Balanced run, then A/B: A = the Fast result, B = the Balanced one.
    assert.equal(await page.isHidden("#compare-mode"), true, "A/B offered with one result");
    await choosePreset(page, "balanced");
    await page.click("[data-testid=denoise]");
    await waitForStatus(page, /^done$|^error/);
    assert.equal(await status(page), "done");
    const balancedResult = await canvasSum(page, "after");
    assert.notEqual(balancedResult, fastResult);
    const photo = await canvasSum(page, "before");
    await page.click("[data-testid=compare-ab]");
    assert.equal(await page.getAttribute("[data-testid=compare-ab]", "aria-pressed"), "true");
    assert.equal(await page.textContent("#tag-before"), "A · Fast · 1 step");
    assert.equal(await page.textContent("#tag-after"), "B · Balanced · 4 steps");
    assert.equal(await canvasSum(page, "before"), fastResult);
    assert.equal(await canvasSum(page, "after"), balancedResult);
    await page.screenshot({ path: join(shots, "demo-ab-crop.png"), animations: "disabled" });
    await page.click("[data-testid=compare-photo]");
    assert.equal(await canvasSum(page, "before"), photo);
    assert.equal(await page.textContent("#tag-before"), "Before");
    assert.equal(await page.textContent("#tag-after"), "After · Balanced · 4 steps");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("a 24-megapixel photo opens, is split into tiles, and Cancel stops it", { timeout: 600_000 }, async () => {
  const { context, page, requests, problems } = await open({ webgpu: false });
  try {
    await loadPage(page);
    // Make a 6000x4000 JPEG in the page and paste it.
    await page.evaluate(async () => {
      const canvas = new OffscreenCanvas(6000, 4000);
      const context = canvas.getContext("2d");
      const gradient = context.createLinearGradient(0, 0, 6000, 4000);
      gradient.addColorStop(0, "#c96");
      gradient.addColorStop(1, "#369");
      context.fillStyle = gradient;
      context.fillRect(0, 0, 6000, 4000);
      for (let i = 0; i < 400; i++) {
        context.fillStyle = `hsl(${i * 37 % 360} 60% 50%)`;
        context.fillRect((i * 997) % 6000, (i * 613) % 4000, 180, 120);
      }
      const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.9 });
      const transfer = new DataTransfer();
      transfer.items.add(new File([blob], "big.jpg", { type: "image/jpeg" }));
      window.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer }));
    });
    await page.waitForFunction(() => /6000×4000 · 24\.0 MP/.test(document.querySelector("#photo-name").textContent), null, { timeout: 60_000 });
    await choosePreset(page, "fast");
    await page.click("[data-testid=denoise]");
    // On the CPU the tiles are shared by the pool of workers (one per core).
    const pattern = /^Step \d+ of 1 · tile \d+ of (\d+)|^\d+ of (\d+) tiles done on \d+ CPU workers/;
    await page.waitForFunction((source) => new RegExp(source).test(document.querySelector("[data-testid=progress-text]").textContent), pattern.source, { timeout: 120_000, polling: 100 });
    const text = await page.textContent("[data-testid=progress-text]");
    const match = text.match(pattern);
    const tiles = Number(match[1] ?? match[2]);
    assert.ok(tiles > 1, `a 24 MP photo is tiled: ${text}`);
    const clicked = Date.now();
    await page.click("[data-testid=cancel]");
    await waitForStatus(page, /^cancelled$/, 30_000);
    const cancelled = (Date.now() - clicked) / 1000;
    await page.waitForSelector("[data-testid=denoise]:not([disabled])", { timeout: 120_000 });
    report["24 MP"] = { progressText: text, tiles, secondsToCancelled: cancelled, secondsToReady: (Date.now() - clicked) / 1000 };
    checkRequests(requests, "24 MP");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

/** `source` (decoded PNG) repeated from the top left to fill width x height. */
function repeated(source, width, height) {
  const data = Buffer.alloc(width * height * 4);
  const row = source.width * 4;
  for (let y = 0; y < height; y++) {
    const from = (y % source.height) * row;
    for (let x = 0; x < width; x += source.width) {
      const bytes = Math.min(source.width, width - x) * 4;
      source.data.copy(data, (y * width + x) * 4, from, from + bytes);
    }
  }
  return { width, height, data };
}

/** The part of `image` at (left, top), width x height, as a decoded image. */
function crop(image, left, top, width, height) {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * image.width + left) * 4;
    image.data.copy(data, y * width * 4, from, from + width * 4);
  }
  return { width, height, data };
}

/**
 * Peak resident memory of a Chromium instance (the browser process found by
 * its profile directory, and every process below it), sampled every second
 * until `stop()`: the sum of RSS, so pages shared between processes count
 * once per process (an upper bound).
 */
function watchMemory(profile) {
  const children = new Map(); // parent pid -> child pids
  const read = (path) => { try { return readFileSync(path, "utf8"); } catch { return ""; } };
  let peak = 0;
  const sample = () => {
    children.clear();
    let root = null;
    for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
      const stat = read(`/proc/${pid}/stat`);
      const parent = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1];
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(pid);
      const command = read(`/proc/${pid}/cmdline`);
      if (command.includes(`--user-data-dir=${profile}`) && !command.includes("--type=")) root = pid;
    }
    if (!root) return;
    let total = 0;
    for (const queue = [root]; queue.length;) {
      const pid = queue.pop();
      total += Number(read(`/proc/${pid}/status`).match(/VmRSS:\s+(\d+)/)?.[1] ?? 0) * 1024;
      queue.push(...(children.get(pid) ?? []));
    }
    peak = Math.max(peak, total);
  };
  const timer = setInterval(sample, 1000);
  return { stop: () => (clearInterval(timer), sample(), peak) };
}

// Every copy of the repeated photo has the same noisy pixels, so their
// results differ by where the tile grid falls, by their neighbours, and by
// the column's parity: the photo is 451 px wide, so every other column of
// copies starts at an odd x, where the synthetic noise's Bayer pattern
// (RGGB at the photo's origin) reads GRBG; weights trained on RGGB alone
// lost 0.25 dB there (28.86 against 28.61 dB, 2026-11-30). Copies of the same
// parity must agree: a seam or a badly blended tile would set some apart.
const COPY_SPREAD_DB = 0.1;

// A whole 24-megapixel photo, not only its tiling: the high-noise validation
// photo repeated over 6000x4000 (13 x 13 whole copies), denoised to the end
// with Fast on the CPU path, then compared with the clean photo repeated the
// same way. Every copy sees the tile grid at another offset, so a seam or a
// tile that blends badly makes some copies worse than others.
test("a 24-megapixel noisy photo is denoised to the end on the CPU: full size, at least 5 dB cleaner, every part alike", { skip: !process.env.E2E_LARGE, timeout: 3_600_000 }, async () => {
  const [width, height] = [6000, 4000];
  const noisyCopy = decode(readFileSync(PHOTO_NOISY));
  const cleanCopy = decode(readFileSync(PHOTO_CLEAN));
  const noisy = repeated(noisyCopy, width, height);
  const clean = repeated(cleanCopy, width, height);
  const noisyPath = join(shots, "large-noisy-6000x4000.png");
  writeFileSync(noisyPath, PNG.sync.write(noisy, { colorType: 2, deflateLevel: 1 }));

  const { context, page, requests, problems, profile } = await open({ webgpu: false });
  const memory = watchMemory(profile);
  try {
    await loadPage(page);
    const started = Date.now();
    const run = await runAndDownload(page, "fast", noisyPath, 3_000_000);
    const seconds = (Date.now() - started) / 1000;
    writeFileSync(join(shots, "large-denoised-6000x4000.png"), run.png);
    const result = decode(run.png);
    assert.deepEqual([result.width, result.height], [width, height]);
    const noisyPsnr = psnr(noisy, clean);
    const denoisedPsnr = psnr(result, clean);

    // PSNR of every whole copy, by the parity of its left edge.
    const copies = { even: [], odd: [] };
    for (let top = 0; top + cleanCopy.height <= height; top += cleanCopy.height) {
      for (let left = 0; left + cleanCopy.width <= width; left += cleanCopy.width) {
        copies[left % 2 ? "odd" : "even"].push(psnr(crop(result, left, top, cleanCopy.width, cleanCopy.height), cleanCopy));
      }
    }
    const range = (values) => [Math.min(...values), Math.max(...values)].map((v) => Number(v.toFixed(2)));
    const tiles = Number(run.progressText.at(-1)?.match(/tile \d+ of (\d+)/)?.[1]);
    report["24 MP, CPU Fast, to the end"] = {
      summary: run.summary, tiles, secondsUntilDownloaded: Math.round(seconds),
      peakBrowserMemoryMiB: Math.round(memory.stop() / 2 ** 20),
      noisy: Number(noisyPsnr.toFixed(2)), denoised: Number(denoisedPsnr.toFixed(2)), gain: Number((denoisedPsnr - noisyPsnr).toFixed(2)),
      copies: copies.even.length + copies.odd.length, copyPsnrEvenX: range(copies.even), copyPsnrOddX: range(copies.odd),
    };
    assert.ok(tiles > 1, `a 24 MP photo is tiled: ${run.progressText.at(-1)}`);
    assert.ok(denoisedPsnr - noisyPsnr >= TARGET_GAIN_DB, JSON.stringify(report["24 MP, CPU Fast, to the end"]));
    assert.deepEqual([copies.even.length, copies.odd.length], [7 * 13, 6 * 13]);
    for (const parity of [copies.even, copies.odd]) {
      assert.ok(Math.max(...parity) - Math.min(...parity) < COPY_SPREAD_DB, JSON.stringify(report["24 MP, CPU Fast, to the end"]));
    }
    checkRequests(requests, "24 MP to the end");
    assert.deepEqual(problems, []);
  } finally {
    memory.stop();
    await context.close();
  }
});

test("docs screenshots: the example photo, desktop and phone", { skip: !process.env.E2E_DOCS, timeout: 900_000 }, async () => {
  const { context, page, problems } = await open({ webgpu: false, viewport: { width: 1280, height: 820 } });
  try {
    await loadPage(page);
    await page.click("[data-testid=example]");
    await page.waitForSelector("#viewer:not([hidden])");
    await choosePreset(page, "balanced");
    await page.click("[data-testid=denoise]");
    await waitForStatus(page, /^done$|^error/, 840_000);
    assert.equal(await status(page), "done");
    report["docs: example photo, CPU Balanced"] = await page.textContent("[data-testid=summary]");
    mkdirSync(join(root, "docs"), { recursive: true });
    // Finished transitions, not a frame in the middle of one. The progress
    // bar's fill (a 0.2 s transition on ::-webkit-progress-value) is not
    // fast-forwarded by `animations: "disabled"`: a screenshot at once showed
    // it at about 95%, so wait it out.
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(root, "docs/demo.png"), animations: "disabled" });
    await page.setViewportSize({ width: 390, height: 844 });
    // The comparison view re-fits itself on resize (a ResizeObserver); a
    // screenshot taken before that lands shows the desktop width. Once it has,
    // the page must not scroll sideways.
    await page.waitForFunction(() => document.documentElement.scrollWidth <= window.innerWidth, null, { timeout: 10_000 });
    await page.screenshot({ path: join(root, "docs/demo-phone.png"), fullPage: true, animations: "disabled" });
    // Two presets side by side: Balanced (A) against Best (B), at 1:1 on the cat's face.
    await page.setViewportSize({ width: 1280, height: 820 });
    await choosePreset(page, "best");
    await page.click("[data-testid=denoise]");
    await waitForStatus(page, /^done$|^error/, 840_000);
    assert.equal(await status(page), "done");
    await page.click("[data-testid=compare-ab]");
    assert.equal(await page.textContent("#tag-before"), "A · Balanced · 4 steps");
    assert.equal(await page.textContent("#tag-after"), "B · Best · 8 views");
    await page.click("[data-testid=zoom-1to1]");
    await stateShot(page, "demo-ab.png");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
