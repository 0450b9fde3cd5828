// www/imagecheck.js under node: the declared size of PNG, JPEG and WebP
// files, the size limits (the CLI's), and every way of cutting a file short.
//   node --test tests/e2e/imagecheck.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { deflateSync } from "node:zlib";
import { PNG } from "pngjs";
import { checkImage, MAX_SIDE, MAX_PIXELS } from "../../www/imagecheck.js";

const root = resolve(import.meta.dirname, "../..");
const cliFixture = (name) => readFileSync(resolve(root, "cli/tests/fixtures", name));

/** Every proper prefix of `bytes` from `from` bytes on must be refused as damaged. */
function assertEveryCutRefused(bytes, from, label) {
  for (let cut = from; cut < bytes.length; cut++) {
    const result = checkImage(bytes.subarray(0, cut));
    assert.equal(result.ok, false, `${label} cut to ${cut} of ${bytes.length} bytes was accepted`);
    assert.equal(result.problem, "damaged", `${label} cut to ${cut}: ${JSON.stringify(result)}`);
  }
}

// ---------- PNG ----------

function crc32(bytes) {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "ascii");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A PNG whose header claims width x height, with a tiny IDAT: a decompression bomb's header. */
export function pngClaiming(width, height) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr), chunk("IDAT", deflateSync(Buffer.alloc(64))), chunk("IEND", Buffer.alloc(0)),
  ]);
}

test("PNG: the declared size is read; every cut is refused as damaged", () => {
  const image = new PNG({ width: 40, height: 30 });
  for (let i = 0; i < image.data.length; i++) image.data[i] = (i * 2654435761) >>> 24;
  const bytes = PNG.sync.write(image);
  assert.deepEqual(checkImage(bytes), { ok: true, format: "png", width: 40, height: 30 });
  assert.deepEqual(checkImage(cliFixture("palette.png")), { ok: true, format: "png", width: 16, height: 12 });
  assertEveryCutRefused(bytes, 8, "PNG");
  assert.match(checkImage(bytes.subarray(0, bytes.length - 12)).reason, /^it is truncated: .* before the PNG end chunk \(IEND\)$/);
  assert.match(checkImage(bytes.subarray(0, 20)).reason, /^it is truncated: the data ends at byte 20, inside the PNG header$/);
});

test("PNG: a 100,000 x 100,000 header (a few hundred bytes) is refused as too large, with the CLI's limits", () => {
  const bomb = pngClaiming(100_000, 100_000);
  assert.ok(bomb.length < 300, `${bomb.length} bytes`);
  const result = checkImage(bomb);
  assert.deepEqual({ ...result, reason: undefined }, { ok: false, problem: "too large", format: "png", width: 100_000, height: 100_000, reason: undefined });
  assert.equal(result.reason, "its header declares 100000×100000 pixels (10000 megapixels); the most this page accepts is 65535 pixels per side and 200 megapixels");
  assert.equal(MAX_SIDE, 65_535);
  assert.equal(MAX_PIXELS, 200_000_000);
  const accepted = (width, height) => checkImage(pngClaiming(width, height)).ok;
  assert.equal(accepted(MAX_SIDE, 1), true);
  assert.equal(accepted(MAX_SIDE + 1, 1), false);
  assert.equal(accepted(1, MAX_SIDE + 1), false);
  assert.equal(accepted(20_000, 10_000), true); // exactly 200 megapixels
  assert.equal(accepted(20_000, 10_001), false);
  assert.equal(accepted(2 ** 32 - 1, 2 ** 32 - 1), false);
  assert.equal(checkImage(pngClaiming(0, 10)).problem, "damaged");
});

// ---------- JPEG ----------

const SOI = [0xff, 0xd8];
const EOI = [0xff, 0xd9];
/** A marker segment: FF, marker, big-endian length (payload + 2), payload. */
const segment = (marker, payload) => [0xff, marker, (payload.length + 2) >> 8, (payload.length + 2) & 0xff, ...payload];
const frame = (width, height) => segment(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]);
const scanHeader = segment(0xda, [1, 1, 0, 0, 63, 0]);

test("JPEG: every cut of the CLI's fixtures (baseline, progressive, CMYK, EXIF) is refused as damaged", () => {
  const expected = { "progressive.jpg": [24, 16], "cmyk.jpg": [16, 12], "orientation6.jpg": [24, 16] };
  for (const [name, [width, height]] of Object.entries(expected)) {
    const bytes = cliFixture(name);
    assert.deepEqual(checkImage(bytes), { ok: true, format: "jpeg", width, height }, name);
    // From 3 bytes on (FF D8 FF) the file is recognised as a JPEG.
    assertEveryCutRefused(bytes, 3, name);
    assert.equal(checkImage(bytes.subarray(0, bytes.length - 1)).reason,
      `it is truncated: the data ends at byte ${bytes.length - 1} before the JPEG end-of-image marker`);
  }
});

test("JPEG: a thumbnail in APP1 (with its own SOF and EOI) is skipped; FF00 and RSTn in scan data are data", () => {
  const thumbnail = cliFixture("cmyk.jpg"); // 16x12, a whole JPEG with its own EOI
  const scanData = [0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56, 0xff, 0xff, 0xd7, 0x78];
  const main = [...SOI, ...segment(0xe1, [...Buffer.from("Exif\0\0"), ...thumbnail]), ...frame(3000, 2000), ...scanHeader, ...scanData, ...EOI];
  const bytes = Uint8Array.from(main);
  assert.deepEqual(checkImage(bytes), { ok: true, format: "jpeg", width: 3000, height: 2000 });
  // Cut right after the thumbnail's EOI: still truncated, not complete.
  const thumbnailEnd = 2 + 4 + 6 + thumbnail.length;
  assert.deepEqual([bytes[thumbnailEnd - 2], bytes[thumbnailEnd - 1]], EOI);
  assert.equal(checkImage(bytes.subarray(0, thumbnailEnd)).problem, "damaged");
  // Cut after a restart marker or stuffing inside the scan data.
  assertEveryCutRefused(bytes, 3, "JPEG with a thumbnail");
  // A second scan (progressive) is walked too.
  const twoScans = Uint8Array.from([...SOI, ...frame(8, 8), ...scanHeader, 1, 2, ...scanHeader, 3, 4, ...EOI]);
  assert.equal(checkImage(twoScans).ok, true);
  assertEveryCutRefused(twoScans, 3, "two scans");
});

test("JPEG: no scan, no frame header, bad lengths and huge frames are refused", () => {
  const reason = (bytes) => checkImage(Uint8Array.from(bytes)).reason;
  assert.equal(reason([...SOI, ...frame(8, 8), ...EOI]), "it ends without any image data (no start-of-scan segment)");
  assert.equal(reason([...SOI, ...scanHeader, 1, ...EOI]), "it has image data before its frame header (no SOF segment)");
  assert.equal(reason([...SOI, 0xff, 0xe0, 0x00, 0x01, ...EOI]), "it has a malformed segment length at byte 4");
  const huge = checkImage(Uint8Array.from([...SOI, ...frame(65_535, 65_535), ...scanHeader, 1, ...EOI]));
  assert.deepEqual([huge.problem, huge.width, huge.height], ["too large", 65_535, 65_535]);
  // The size is known (and refused) even when the file is cut inside the scan.
  assert.equal(checkImage(Uint8Array.from([...SOI, ...frame(60_000, 60_000), ...scanHeader, 1])).problem, "too large");
  assert.equal(checkImage(Uint8Array.from([...SOI, ...frame(0, 8), ...scanHeader, 1, ...EOI])).problem, "damaged");
});

// ---------- WebP ----------

function riff(kind, payload) {
  const chunkBytes = Buffer.alloc(8 + payload.length + (payload.length & 1));
  chunkBytes.write(kind, 0, "ascii");
  chunkBytes.writeUInt32LE(payload.length, 4);
  Buffer.from(payload).copy(chunkBytes, 8);
  const header = Buffer.alloc(12);
  header.write("RIFF", 0, "ascii");
  header.writeUInt32LE(4 + chunkBytes.length, 4);
  header.write("WEBP", 8, "ascii");
  return Buffer.concat([header, chunkBytes]);
}

test("WebP: VP8, VP8L and VP8X sizes; every cut refused; too large refused", () => {
  // VP8 (lossy): frame tag, start code, 14-bit sizes.
  const vp8 = riff("VP8 ", [0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 640 & 0xff, 640 >> 8, 480 & 0xff, 480 >> 8, ...Array(20).fill(0)]);
  assert.deepEqual(checkImage(vp8), { ok: true, format: "webp", width: 640, height: 480 });
  assertEveryCutRefused(vp8, 12, "VP8");
  // VP8L (lossless): 0x2F, then width-1 and height-1 in 14 bits each.
  const bits = (300 - 1) | ((200 - 1) << 14);
  const vp8l = riff("VP8L", [0x2f, bits & 0xff, (bits >> 8) & 0xff, (bits >> 16) & 0xff, (bits >>> 24) & 0xff, ...Array(11).fill(0)]);
  assert.deepEqual(checkImage(vp8l), { ok: true, format: "webp", width: 300, height: 200 });
  assertEveryCutRefused(vp8l, 12, "VP8L");
  // VP8X (extended): the CLI's animated fixture, 8x8, and a 100,000-pixel-wide canvas.
  const animated = cliFixture("animated.webp");
  assert.deepEqual(checkImage(animated), { ok: true, format: "webp", width: 8, height: 8 });
  assertEveryCutRefused(animated, 12, "animated WebP");
  const wide = riff("VP8X", [0, 0, 0, 0, ...[99_999 & 0xff, (99_999 >> 8) & 0xff, 99_999 >> 16], 9, 0, 0]);
  assert.deepEqual({ ...checkImage(wide), reason: undefined }, { ok: false, problem: "too large", format: "webp", width: 100_000, height: 10, reason: undefined });
});

/** An ISO-BMFF box. */
function box(type, ...payload) {
  const body = Buffer.concat(payload.map((part) => Buffer.from(part)));
  const out = Buffer.alloc(8 + body.length);
  out.writeUInt32BE(out.length, 0);
  out.write(type, 4, "ascii");
  body.copy(out, 8);
  return out;
}

function avif(width, height, mdat = 64) {
  const ispe = Buffer.alloc(12);
  ispe.writeUInt32BE(width, 4);
  ispe.writeUInt32BE(height, 8);
  return Buffer.concat([
    box("ftyp", Buffer.from("avif\0\0\0\0mif1miafavif")),
    box("meta", [0, 0, 0, 0], box("hdlr", Buffer.alloc(25)), box("iprp", box("ipco", box("ispe", ispe)), box("ipma", Buffer.alloc(8)))),
    box("mdat", Buffer.alloc(mdat, 7)),
  ]);
}

test("AVIF: the size from ispe; every cut refused; too large refused", () => {
  const bytes = avif(1200, 800);
  assert.deepEqual(checkImage(bytes), { ok: true, format: "avif", width: 1200, height: 800 });
  assertEveryCutRefused(bytes, 12, "AVIF");
  assert.equal(checkImage(avif(100_000, 100_000)).problem, "too large");
});

test("other formats (GIF, text) are left to the browser", () => {
  assert.deepEqual(checkImage(Buffer.from("GIF89a......")), { ok: true, format: null });
  assert.deepEqual(checkImage(new Uint8Array(0)), { ok: true, format: null });
  assert.deepEqual(checkImage(new ArrayBuffer(4)), { ok: true, format: null });
});
