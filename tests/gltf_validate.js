// Validate GLB/glTF files with the Khronos glTF-Validator; print one JSON report per file.
// Usage: node gltf_validate.js MODULE_DIR FILE...   (MODULE_DIR: .../node_modules/gltf-validator)
const fs = require("fs");
const path = require("path");
const validator = require(path.resolve(process.argv[2]));

async function main() {
  const out = {};
  for (const file of process.argv.slice(3)) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)), {
      uri: path.basename(file),
      maxIssues: 0,
      externalResourceFunction: (uri) => new Promise((resolve, reject) => {
        const target = path.resolve(path.dirname(file), decodeURIComponent(uri));
        if (!target.startsWith(path.resolve(path.dirname(file)) + path.sep)) {
          reject(new Error("outside the asset folder"));
          return;
        }
        fs.readFile(target, (err, data) => (err ? reject(err) : resolve(new Uint8Array(data))));
      }),
    });
    out[file] = report.issues;
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});
