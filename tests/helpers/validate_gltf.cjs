// Validate one glTF/GLB file with the Khronos glTF validator and print the JSON report.
// Usage: node validate_gltf.cjs <path to node_modules/gltf-validator> <file>
"use strict";
const fs = require("fs");

async function main() {
  const [validatorDir, file] = process.argv.slice(2);
  if (!validatorDir || !file) {
    process.stderr.write("usage: node validate_gltf.cjs <gltf-validator dir> <file>\n");
    process.exit(2);
  }
  const validator = require(validatorDir);
  const bytes = new Uint8Array(fs.readFileSync(file));
  const report = await validator.validateBytes(bytes, {
    uri: file,
    maxIssues: 0,
    writeTimestamp: false,
  });
  process.stdout.write(JSON.stringify(report));
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
