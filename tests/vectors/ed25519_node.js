#!/usr/bin/env node
// An Ed25519 (Standard Webhooks v1a) vector from Node's crypto, with a fixed seed.
// Run: node tests/vectors/ed25519_node.js > tests/vectors/ed25519.json
const crypto = require("crypto");
const seed = Buffer.alloc(32, 7);
// PKCS#8 DER prefix for a raw Ed25519 seed.
const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
const privateKey = crypto.createPrivateKey({ key: der, format: "der", type: "pkcs8" });
const publicRaw = crypto.createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(12);
const body = '{"type":"task.created","data":{"taskId":"123"}}';
const signed = Buffer.from(`msg_ed.1700000000.${body}`);
const signature = crypto.sign(null, signed, privateKey).toString("base64");
console.log(JSON.stringify({
  generated_by: "tests/vectors/ed25519_node.js (Node crypto)",
  secret_key: "whsk_" + seed.toString("base64"),
  public_key: "whpk_" + publicRaw.toString("base64"),
  body,
  signature: "v1a," + signature,
}, null, 1));
