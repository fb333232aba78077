// Load GLB files with three.js' GLTFLoader (npm `three`, with its DRACOLoader and the Draco
// decoder it ships) in headless Chromium (Debian's /usr/bin/chromium) through playwright-core,
// and report what three.js built from each.
//
// Usage: node three_loader.mjs '<JSON job>'   (prints one JSON report on stdout)
// Job fields:
//   files      GLB paths to load, in order
//   three      the `three` package folder (node_modules/three)
//   chromium   the browser binary, default /usr/bin/chromium
//
// The page and every file it fetches are served by the driver itself (request interception on
// a loopback address); any other request is recorded (offHost) and aborted.
// Report: {offHost, consoleErrors, results: [{file, error?, meshes, primitives, vertices,
//          triangles, degenerate, box: [min, max], cameras, extensionsUsed, textured}]}
// triangles: those three.js built with three distinct indices; degenerate: the others (a
// triangle strip's joins, which GLTFLoader keeps when it unrolls the strip into a list).
import { createRequire } from "node:module";
import { readFile } from "node:fs/promises";
import path from "node:path";

const job = JSON.parse(process.argv[2] ?? "{}");
const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const ORIGIN = "http://127.0.0.1:9";
const TYPES = { ".js": "text/javascript", ".wasm": "application/wasm", ".glb": "model/gltf-binary" };

const PAGE = `<!doctype html><html><head><script type="importmap">
{"imports": {"three": "/three/build/three.module.js", "three/addons/": "/three/examples/jsm/"}}
</script></head><body><script type="module">
import * as THREE from "three";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { DRACOLoader } from "three/addons/loaders/DRACOLoader.js";
const draco = new DRACOLoader();
draco.setDecoderPath("/three/examples/jsm/libs/draco/gltf/");
const loader = new GLTFLoader();
loader.setDRACOLoader(draco);
window.loadGlb = async (url) => {
  const gltf = await loader.loadAsync(url);
  gltf.scene.updateMatrixWorld(true);
  let primitives = 0, vertices = 0, triangles = 0, degenerate = 0, textured = false;
  gltf.scene.traverse((object) => {
    if (!object.isMesh && !object.isPoints) return;
    primitives += 1;
    const geometry = object.geometry;
    vertices += geometry.attributes.position.count;
    if (object.isMesh) {
      // GLTFLoader turns a TRIANGLE_STRIP into a triangle list with the strip's joins in it:
      // triangles that repeat an index draw nothing and are not counted
      const index = geometry.index ? geometry.index.array : null;
      const count = index ? index.length : geometry.attributes.position.count;
      for (let i = 0; i + 2 < count; i += 3) {
        const a = index ? index[i] : i, b = index ? index[i + 1] : i + 1, c = index ? index[i + 2] : i + 2;
        if (a !== b && b !== c && c !== a) triangles += 1;
        else degenerate += 1;
      }
    }
    if (object.material && object.material.map) textured = true;
  });
  const box = new THREE.Box3().setFromObject(gltf.scene, true);
  return {
    meshes: gltf.parser.json.meshes.length, primitives, vertices, triangles, degenerate, textured,
    box: [box.min.toArray(), box.max.toArray()], cameras: gltf.cameras.length,
    extensionsUsed: gltf.parser.json.extensionsUsed ?? [],
  };
};
window.ready = true;
</script></body></html>`;

async function main() {
  const report = { offHost: [], consoleErrors: [], results: [] };
  const browser = await chromium.launch({
    executablePath: job.chromium ?? "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    const page = await browser.newPage();
    page.on("console", (message) => {
      if (message.type() === "error") report.consoleErrors.push(message.text().slice(0, 300));
    });
    await page.route("**/*", async (route) => {
      const url = new URL(route.request().url());
      if (url.origin !== ORIGIN) {
        report.offHost.push(url.href);
        return route.abort();
      }
      if (url.pathname === "/") return route.fulfill({ contentType: "text/html", body: PAGE });
      let file = null;
      if (url.pathname.startsWith("/three/")) {
        file = path.join(job.three, decodeURIComponent(url.pathname.slice("/three/".length)));
      } else if (url.pathname.startsWith("/glb/")) {
        file = job.files[Number(url.pathname.slice("/glb/".length).split(".")[0])];
      }
      if (file === null || file === undefined) return route.fulfill({ status: 404, body: "" });
      try {
        const body = await readFile(file);
        const type = TYPES[path.extname(file)] ?? "application/octet-stream";
        return route.fulfill({ status: 200, contentType: type, body });
      } catch {
        return route.fulfill({ status: 404, body: "" });
      }
    });
    await page.goto(`${ORIGIN}/`, { waitUntil: "load", timeout: 60000 });
    await page.waitForFunction(() => window.ready === true, null, { timeout: 60000 });
    for (let index = 0; index < job.files.length; index += 1) {
      const result = await page.evaluate(async (url) => {
        try {
          return await window.loadGlb(url);
        } catch (error) {
          return { error: String(error && error.stack ? error.stack : error) };
        }
      }, `/glb/${index}.glb`);
      report.results.push({ file: job.files[index], ...result });
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report));
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
