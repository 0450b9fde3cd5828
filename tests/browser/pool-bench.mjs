// The CPU worker pool's speed-up, measured (not a test: speed is measured,
// never asserted). Denoises a 1400 x 1000 photo (the bundled example scaled
// up: at least 8 tiles of the browser's 544-pixel CPU tiles) with 1 step on
// 1 worker and then on WORKERS workers (default 2, this machine's cores) in
// headless Debian Chromium; before each run it asks the package for its
// estimate (fresh client: calibrated on one 128-pixel tile) and reports its
// error against the real time. A control first times two plain JavaScript
// workers together and one after another: on a machine whose cores are
// busy with something else, neither can gain much.
//   make pkg && (cd tests/browser && node pool-bench.mjs)     # WORKERS=4 SIZE=2000x1500 STEPS=1
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cpus, loadavg } from "node:os";
import { startServer, launch, root } from "./harness.mjs";

const [width, height] = (process.env.SIZE ?? "1400x1000").split("x").map(Number);
const steps = Number(process.env.STEPS ?? 1);
const counts = [1, Number(process.env.WORKERS ?? 2)];

const server = await startServer();
const browser = await launch({ webgpu: false });
const runs = [];
try {
  const page = await browser.newPage();
  await page.goto(`${server.origin}/tests/browser/index.html`);
  await page.waitForFunction(() => window.ready === true);
  // Control: how much two plain JavaScript workers gain from running at
  // once on this machine right now. Other processes on the cores (a build)
  // take it down with the pool's gain; then the pool's number says little.
  const control = await page.evaluate(async () => {
    const source = "onmessage = () => { let x = 0; for (let i = 0; i < 2e8; i++) x = (x * 1103515245 + i) | 0; postMessage(x); };";
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    const workers = [new Worker(url), new Worker(url)];
    const spin = (k) => new Promise((done) => { workers[k].onmessage = done; workers[k].postMessage(0); });
    await Promise.all([spin(0), spin(1)]);
    let started = performance.now();
    await spin(0);
    await spin(1);
    const oneAfterAnother = performance.now() - started;
    started = performance.now();
    await Promise.all([spin(0), spin(1)]);
    const together = performance.now() - started;
    for (const worker of workers) worker.terminate();
    return oneAfterAnother / together;
  });
  console.log(`control: two busy JavaScript workers run ${control.toFixed(2)}x faster together than one after another`);
  runs.control = control;
  for (const workers of counts) {
    const load = loadavg()[0];
    const run = await page.evaluate(async ({ width, height, steps, workers }) => {
      const { WorkerDenoiser } = await import("/pkg/worker-client.js");
      const photo = await window.loadPixels("/assets/sample-noisy.png");
      const canvas = new OffscreenCanvas(width, height);
      const context = canvas.getContext("2d");
      context.drawImage(await createImageBitmap(photo), 0, 0, width, height);
      const image = context.getImageData(0, 0, width, height);
      const client = await WorkerDenoiser.load({ backend: "cpu", workers });
      const estimate = await client.estimate(width, height, { steps });
      let tiles = 0;
      const started = performance.now();
      await client.denoise(image, { steps, onProgress: (p) => (tiles = p.tiles) });
      const seconds = (performance.now() - started) / 1000;
      const used = client.workers;
      await client.dispose();
      return { workers: used, tiles, seconds, estimate: estimate.seconds, basis: estimate.basis, speed: estimate.speed };
    }, { width, height, steps, workers });
    run.estimateError = run.estimate / run.seconds - 1;
    run.loadBefore = load;
    runs.push(run);
    console.log(`${run.workers} worker(s): ${run.tiles} tiles, ${run.seconds.toFixed(1)} s; estimated ${run.estimate.toFixed(1)} s before the run (${run.basis}), error ${(run.estimateError * 100).toFixed(0)} %`);
  }
} finally {
  await browser.close();
  await server.close();
}
const speedup = runs[0].seconds / runs[1].seconds;
const summary = {
  date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: cpus().length, size: `${width}x${height}`, steps, runs,
  speedup, controlSpeedup: runs.control, loadAfter: loadavg()[0],
};
console.log(`speed-up of ${runs[1].workers} workers over 1: ${speedup.toFixed(2)}x`);
mkdirSync(join(root, "out/browser-bench"), { recursive: true });
writeFileSync(join(root, "out/browser-bench/pool.json"), `${JSON.stringify(summary, null, 2)}\n`);
