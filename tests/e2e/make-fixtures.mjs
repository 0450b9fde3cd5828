// Makes the e2e fixtures once (they are committed): the same crop of the
// bundled demo photo's noisy and clean versions (assets/sample-*.png, made by
// `realdenoise-train synth ... --level mid --seed 7`: seeded synthetic camera noise).
//   node tests/e2e/make-fixtures.mjs
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { PNG } from "pngjs";

const root = resolve(import.meta.dirname, "../..");
export const CROP = { x: 134, y: 74, width: 96, height: 96 }; // the cat's left eye

for (const kind of ["noisy", "clean"]) {
  const source = PNG.sync.read(readFileSync(resolve(root, `assets/sample-${kind}.png`)));
  const crop = new PNG({ width: CROP.width, height: CROP.height, colorType: 2 });
  PNG.bitblt(source, crop, CROP.x, CROP.y, CROP.width, CROP.height, 0, 0);
  const path = resolve(import.meta.dirname, `fixtures/eye-${kind}-${CROP.width}x${CROP.height}.png`);
  writeFileSync(path, PNG.sync.write(crop, { colorType: 2 }));
  console.log(path);
}
