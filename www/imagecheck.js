// Checks a photo file's bytes BEFORE the browser decodes it: browsers decode
// a truncated JPEG without complaint (the missing lower part grey) and try to
// decode a PNG whose header claims 100,000 x 100,000 pixels, which can take
// the tab down. This reads the declared size from the header (PNG IHDR, JPEG
// SOFn found by a marker walk, WebP VP8 / VP8L / VP8X), refuses what is too
// large, and checks that the file is complete (JPEG: the end-of-image marker
// after the scan data; PNG: an IEND chunk; WebP: the whole RIFF payload;
// AVIF: the size from its ispe properties, every top-level box complete).
// A plain ES module without DOM use, so node can test it too.

// The same limits as the realdenoise CLI (cli/src/files.rs MAX_SIDE and
// MAX_PIXELS): JPEG's own largest side, and 200 megapixels.
export const MAX_SIDE = 65_535;
export const MAX_PIXELS = 200_000_000;

/**
 * @typedef {{ ok: true, format: "png" | "jpeg" | "webp" | null, width?: number, height?: number }} Accepted
 *   `format` null: not PNG, JPEG, WebP or AVIF (say GIF): left to the browser.
 * @typedef {{ ok: false, problem: "damaged" | "too large", format: string | null, width?: number, height?: number, reason: string }} Refused
 *   `reason`: a phrase for the user, e.g. "it is truncated: the data ends at byte 5120 before the JPEG end-of-image marker".
 */

/**
 * Inspects a whole file's bytes.
 * @param {ArrayBuffer | ArrayBufferView} input
 * @returns {Accepted | Refused}
 */
export function checkImage(input) {
  const bytes = ArrayBuffer.isView(input)
    ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
    : new Uint8Array(input);
  const format = sniff(bytes);
  if (format === null) return { ok: true, format: null };
  const check = { png: checkPng, jpeg: checkJpeg, webp: checkWebp, avif: checkAvif }[format];
  const { width, height, error } = check(bytes);
  if (width !== undefined && height !== undefined) {
    const size = { format, width, height };
    if (width === 0 || height === 0) {
      return { ok: false, problem: "damaged", ...size, reason: `its header declares an empty image (${width}×${height} pixels)` };
    }
    if (width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS) {
      const megapixels = (width * height) / 1e6;
      return {
        ok: false, problem: "too large", ...size,
        reason: `its header declares ${width}×${height} pixels (${megapixels.toFixed(megapixels < 10 ? 1 : 0)} megapixels); `
          + `the most this page accepts is ${MAX_SIDE} pixels per side and ${MAX_PIXELS / 1e6} megapixels`,
      };
    }
    if (!error) return { ok: true, ...size };
    return { ok: false, problem: "damaged", ...size, reason: error };
  }
  return { ok: false, problem: "damaged", format, reason: error ?? "its header cannot be read" };
}

/** "png", "jpeg", "webp", "avif" or null, from the first bytes. */
export function sniff(bytes) {
  if (startsWith(bytes, PNG_SIGNATURE)) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === "RIFF" && ascii(bytes, 8, 4) === "WEBP") return "webp";
  if (bytes.length >= 12 && ascii(bytes, 4, 4) === "ftyp") {
    // The major brand, or a compatible brand, is avif (still) or avis (sequence).
    const end = Math.min(bytes.length, u32be(bytes, 0));
    for (let i = 8; i + 4 <= end; i += 4) {
      if (i !== 12 && ["avif", "avis"].includes(ascii(bytes, i, 4))) return "avif";
    }
  }
  return null;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes, prefix) {
  return bytes.length >= prefix.length && prefix.every((value, i) => bytes[i] === value);
}

function ascii(bytes, start, length) {
  return String.fromCharCode(...bytes.subarray(start, start + length));
}

const u16be = (b, i) => (b[i] << 8) | b[i + 1];
const u32be = (b, i) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
const u16le = (b, i) => b[i] | (b[i + 1] << 8);
const u24le = (b, i) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16);
const u32le = (b, i) => (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;

// ---------- PNG ----------

/** IHDR's size, then a walk over the chunks to IEND (the file's last chunk). */
function checkPng(bytes) {
  // signature (8), IHDR length (4) and type (4), width (4), height (4), ...
  if (bytes.length < 33 || u32be(bytes, 8) !== 13 || ascii(bytes, 12, 4) !== "IHDR") {
    return { error: bytes.length < 33 ? `it is truncated: the data ends at byte ${bytes.length}, inside the PNG header` : "its PNG header (IHDR) is missing or malformed" };
  }
  const width = u32be(bytes, 16);
  const height = u32be(bytes, 20);
  let position = 8;
  let sawData = false;
  while (position + 8 <= bytes.length) {
    const length = u32be(bytes, position);
    const type = ascii(bytes, position + 4, 4);
    if (length > 0x7fffffff) return { width, height, error: `it has a malformed PNG chunk length at byte ${position}` };
    const end = position + 12 + length;
    if (end > bytes.length) break;
    if (type === "IDAT") sawData = true;
    if (type === "IEND") {
      return { width, height, error: sawData ? undefined : "it ends without any image data (no IDAT chunk)" };
    }
    position = end;
  }
  return { width, height, error: `it is truncated: the data ends at byte ${bytes.length} before the PNG end chunk (IEND)` };
}

// ---------- JPEG ----------

/** Start-of-frame markers: SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC). */
const isStartOfFrame = (marker) => marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;

/**
 * A port of `check_jpeg_structure` in cli/src/files.rs, which also reads the
 * first frame header's size: walks the marker segments and requires the
 * end-of-image marker. Segment payloads (APPn can hold a thumbnail with its
 * own EOI and SOF) are skipped by their length; in entropy-coded scan data,
 * FF00 stuffing and FFD0-FFD7 restart markers are data.
 */
export function checkJpeg(bytes) {
  if (bytes.length < 2 || bytes[0] !== 0xff || bytes[1] !== 0xd8) {
    return { error: "it does not start with a JPEG start-of-image marker" };
  }
  let width;
  let height;
  const result = (error) => ({ width, height, error });
  const truncated = () => result(`it is truncated: the data ends at byte ${bytes.length} before the JPEG end-of-image marker`);
  let position = 2;
  let scans = 0;
  for (;;) {
    // Find the next marker; bytes between segments are tolerated (as
    // libjpeg does), fill bytes (FF FF ...) are skipped.
    while (position < bytes.length && bytes[position] !== 0xff) position += 1;
    while (position + 1 < bytes.length && bytes[position + 1] === 0xff) position += 1;
    if (position + 1 >= bytes.length) return truncated();
    const marker = bytes[position + 1];
    position += 2;
    if (marker === 0xd9) return result(scans > 0 ? undefined : "it ends without any image data (no start-of-scan segment)");
    // Markers without a payload: TEM, RSTn, and a stray 00.
    if (marker === 0x00 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (position + 2 > bytes.length) return truncated();
    const length = u16be(bytes, position);
    if (length < 2) return result(`it has a malformed segment length at byte ${position}`);
    if (position + length > bytes.length) {
      // A frame header cut short still tells the size.
      if (isStartOfFrame(marker) && width === undefined && position + 7 <= bytes.length) {
        height = u16be(bytes, position + 3);
        width = u16be(bytes, position + 5);
      }
      return truncated();
    }
    if (isStartOfFrame(marker) && width === undefined) {
      if (length < 7) return result(`it has a malformed frame header at byte ${position}`);
      // length (2), precision (1), height (2), width (2)
      height = u16be(bytes, position + 3);
      width = u16be(bytes, position + 5);
    }
    position += length;
    if (marker === 0xda) {
      if (width === undefined) return result("it has image data before its frame header (no SOF segment)");
      scans += 1;
      // Entropy-coded data runs to the next marker that is not stuffing or
      // a restart marker.
      for (;;) {
        while (position < bytes.length && bytes[position] !== 0xff) position += 1;
        if (position + 1 >= bytes.length) return truncated();
        const next = bytes[position + 1];
        if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) position += 2;
        else if (next === 0xff) position += 1;
        else break;
      }
    }
  }
}

// ---------- WebP ----------

/** The RIFF container must hold all its declared bytes and chunks; the size comes from the first chunk. */
function checkWebp(bytes) {
  if (bytes.length < 30) {
    return { error: `it is truncated: the data ends at byte ${bytes.length}, inside the WebP header` };
  }
  const riffEnd = 8 + u32le(bytes, 4);
  const kind = ascii(bytes, 12, 4);
  const data = 20;
  let width;
  let height;
  if (kind === "VP8 ") {
    // frame tag (3), start code 9D 01 2A, 14-bit width and height (2 bits of scale each)
    if (bytes[data + 3] !== 0x9d || bytes[data + 4] !== 0x01 || bytes[data + 5] !== 0x2a) {
      return { error: "its WebP (VP8) frame header is malformed" };
    }
    width = u16le(bytes, data + 6) & 0x3fff;
    height = u16le(bytes, data + 8) & 0x3fff;
  } else if (kind === "VP8L") {
    // signature 2F, then 14 bits of width - 1 and 14 of height - 1
    if (bytes[data] !== 0x2f) return { error: "its WebP (VP8L) header is malformed" };
    const bits = u32le(bytes, data + 1);
    width = (bits & 0x3fff) + 1;
    height = ((bits >>> 14) & 0x3fff) + 1;
  } else if (kind === "VP8X") {
    // flags (4), 24 bits of canvas width - 1, 24 of height - 1
    width = u24le(bytes, data + 4) + 1;
    height = u24le(bytes, data + 7) + 1;
  } else {
    return { error: `its first WebP chunk is ${JSON.stringify(kind)}, not VP8, VP8L or VP8X` };
  }
  const truncated = { width, height, error: `it is truncated: the data ends at byte ${bytes.length} of the ${riffEnd} its WebP header declares` };
  if (riffEnd > bytes.length) return truncated;
  // Every chunk (padded to an even length) within the RIFF payload.
  let position = 12;
  while (position < riffEnd) {
    if (position + 8 > riffEnd) return truncated;
    const end = position + 8 + u32le(bytes, position + 4);
    if (end > riffEnd) return truncated;
    position = end + (end & 1);
  }
  return { width, height };
}

// ---------- AVIF ----------

/**
 * ISO-BMFF boxes: every top-level box must fit in the file (a cut file ends
 * inside one, usually mdat); the size is the largest of the image spatial
 * extents properties (meta > iprp > ipco > ispe: version and flags, width,
 * height), an upper bound over the primary image, a grid, thumbnails and
 * alpha; the image data (mdat, or idat in meta) must be there.
 */
function checkAvif(bytes) {
  let width;
  let height;
  let error;
  let sawData = false;
  const walk = (start, end, depth) => {
    let position = start;
    while (position < end) {
      if (position + 8 > end) return false;
      let size = u32be(bytes, position);
      const type = ascii(bytes, position + 4, 4);
      let header = 8;
      if (size === 1) {
        if (position + 16 > end) return false;
        size = u32be(bytes, position + 8) * 2 ** 32 + u32be(bytes, position + 12);
        header = 16;
      } else if (size === 0) {
        size = end - position; // to the end of the enclosing box or file
      }
      if (size < header) {
        error = `it has a malformed AVIF box size at byte ${position}`;
        return true;
      }
      if (position + size > end) return false;
      if (type === "mdat" || type === "idat") sawData = true;
      if (type === "ispe" && size >= header + 12) {
        width = Math.max(width ?? 0, u32be(bytes, position + header + 4));
        height = Math.max(height ?? 0, u32be(bytes, position + header + 8));
      } else if (depth < 4 && ["meta", "iprp", "ipco"].includes(type)) {
        const skip = type === "meta" ? 4 : 0; // meta is a full box
        if (!walk(position + header + skip, position + size, depth + 1)) return false;
      }
      position += size;
    }
    return true;
  };
  const complete = walk(0, bytes.length, 0);
  if (error) return { width, height, error };
  if (!complete) return { width, height, error: `it is truncated: the data ends at byte ${bytes.length}, inside an AVIF box` };
  if (width === undefined) return { error: "its AVIF header declares no image size (no ispe property)" };
  if (!sawData) return { width, height, error: `it is truncated: the data ends at byte ${bytes.length}, before the AVIF image data (mdat)` };
  return { width, height };
}
