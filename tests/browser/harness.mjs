// Shared pieces of the browser tests: a static server for the repository
// (sirv, correct application/wasm type), Debian's Chromium via playwright-core,
// and native reference outputs from the realdenoise CLI.
import { createServer } from "node:http";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync } from "node:fs";
import { tmpdir, homedir } from "node:os";
import { join, resolve } from "node:path";
import sirv from "sirv";
import { chromium } from "playwright-core";

export const root = resolve(import.meta.dirname, "../..");

export async function startServer() {
  const handler = sirv(root, { dev: true });
  const server = createServer((request, response) => handler(request, response, () => {
    response.statusCode = 404;
    response.end("not found");
  }));
  await new Promise((ready) => server.listen(0, "127.0.0.1", ready));
  const { port } = server.address();
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((done) => server.close(done)) };
}

const BASE_FLAGS = [
  "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync",
];

/** Headless Debian Chromium; `webgpu` adds the flag that exposes SwiftShader's adapter. */
export async function launch({ webgpu }) {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: webgpu ? [...BASE_FLAGS, "--enable-unsafe-webgpu"] : BASE_FLAGS,
  });
}

/** Denoises a fixture with the native CLI on the CPU; returns the output path relative to root. */
export function nativeReference(fixture, steps, ensemble = "off") {
  const target = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/realdenoise/target");
  const directory = join(root, "out", "browser-tests");
  mkdirSync(directory, { recursive: true });
  // A fixture name, or a path from the repository root (e.g. assets/sample-noisy.png).
  const input = fixture.includes("/") ? join(root, fixture) : join(root, "tests/browser/fixtures", fixture);
  const name = `${fixture.replaceAll("/", "-").replace(/\.png$/, "")}-steps${steps}-${ensemble}-native.png`;
  execFileSync(join(target, "release", "realdenoise"), [
    "denoise", input, "-o", join(directory, name),
    "--backend", "cpu", "--steps", String(steps), "--ensemble", ensemble,
    "--weights", join(root, "pkg/realdenoise.rdnz"), "--force", "--quiet",
  ]);
  return `out/browser-tests/${name}`;
}

export function freshProfile() {
  return mkdtempSync(join(tmpdir(), "realdenoise-chromium-"));
}
