// Runs one function node of a Node-RED flow file outside Node-RED, the way
// Node-RED calls it (msg, node, flow, env, Buffer), for
// tests/integration/test_node_red.py:
//
//   node tests/node-red/run-function.js FLOWS.json "NODE NAME" < input.json
//
// input.json: {"msg": {...}, "flow": {...}, "correlationData": "text"?}
// (correlationData becomes a Buffer on msg). Prints one JSON line:
// {"result": <returned msg or null>, "flow": <flow context after>,
//  "status": <last node.status()>, "warnings": [...]}.
"use strict";
const fs = require("fs");

const [flowsPath, name] = process.argv.slice(2);
const nodes = JSON.parse(fs.readFileSync(flowsPath, "utf8"));
const fn = nodes.find((n) => n.type === "function" && n.name === name);
if (!fn) {
    console.error("no function node named " + JSON.stringify(name));
    process.exit(2);
}
const input = JSON.parse(fs.readFileSync(0, "utf8"));
const msg = input.msg || {};
if (typeof input.correlationData === "string") {
    msg.correlationData = Buffer.from(input.correlationData);
}
const context = Object.assign({}, input.flow || {});
const flow = {
    get: (k) => context[k],
    set: (k, v) => {
        context[k] = v;
    },
};
const out = { status: null, warnings: [] };
const node = {
    status: (s) => {
        out.status = s;
    },
    warn: (w) => out.warnings.push(String(w)),
    error: (e) => out.warnings.push("error: " + String(e)),
    log: () => {},
};
const env = { get: (k) => process.env[k] };
const body = new Function("msg", "node", "flow", "env", "Buffer", fn.func);
const result = body(msg, node, flow, env, Buffer);
if (result && Buffer.isBuffer(result.correlationData)) {
    result.correlationData = result.correlationData.toString();
}
out.result = result === undefined ? null : result;
out.flow = context;
process.stdout.write(JSON.stringify(out) + "\n");
