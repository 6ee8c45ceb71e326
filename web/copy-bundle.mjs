// Copy NiiVue's self-contained UMD bundle (it sets window.niivue; no network imports) into the
// package's static folder, where `seldinger serve` serves it from its own origin (CSP default-src 'self').
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "node_modules", "@niivue", "niivue", "dist", "niivue.umd.js");
const vendor = join(here, "..", "src", "seldinger", "app", "web", "static", "vendor");
const version = JSON.parse(
  readFileSync(join(here, "node_modules", "@niivue", "niivue", "package.json"), "utf8"),
).version;
mkdirSync(vendor, { recursive: true });
copyFileSync(source, join(vendor, "niivue.umd.js"));
console.log(`copied @niivue/niivue ${version} to ${join(vendor, "niivue.umd.js")}`);
