// Writes the root crate's version (from `cargo metadata` on stdin) into the
// npm package built in the folder named by the first argument: package.json's
// "version" and index.js's VERSION, so the package is never versioned by hand.
//   cargo metadata --no-deps --format-version 1 --offline | node scripts/stamp-version.mjs pkg
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const folder = process.argv[2];
if (!folder) {
  console.error("usage: cargo metadata --no-deps --format-version 1 | node scripts/stamp-version.mjs <package folder>");
  process.exit(2);
}
const metadata = JSON.parse(readFileSync(0, "utf8"));
const crate = metadata.packages.find((p) => p.name === "realdenoise");
if (!crate || !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(crate.version)) {
  console.error(`stamp-version: no semver version for the realdenoise crate in cargo metadata (${crate?.version})`);
  process.exit(1);
}
const { version } = crate;

const manifestPath = join(folder, "package.json");
const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
manifest.version = version;
writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);

const placeholder = 'export const VERSION = "0.0.0-unstamped";';
const indexPath = join(folder, "index.js");
const index = readFileSync(indexPath, "utf8");
if (!index.includes(placeholder)) {
  console.error(`stamp-version: ${indexPath} lacks the line ${placeholder}`);
  process.exit(1);
}
writeFileSync(indexPath, index.replace(placeholder, `export const VERSION = ${JSON.stringify(version)};`));
console.log(`stamp-version: realdenoise ${version} in ${folder}/package.json and ${folder}/index.js`);
