#!/usr/bin/env node
// Computes, with Node's crypto and JSON.stringify, what the seed documents' own Node
// receivers and signers produce. Writes node.json beside this file.
// Run: node tests/vectors/generate_node.js [OUTPUT]   (tests/vectors.rs checks the committed
// file equals a fresh run)
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const hmacHex = (key, data) => crypto.createHmac("sha256", key).update(data).digest("hex");

// TaskOn's Node example builds {user_id, timestamp} in that insertion order.
const taskonBody = { task_id: 222222, reward_type: "GTCPoints", reward_amount: "100",
  point_name: "PointNameA", user_id: 11111, evm_address: ["0xaaaaaaaaa", "0xbbbbbbbbb"],
  email: "user@example.com", timestamp: 1758251308 };
const nodeOrder = JSON.stringify({ user_id: taskonBody.user_id, timestamp: taskonBody.timestamp });

// 004's Express receiver verifies JSON.stringify(req.body) against X-Hub-Signature.
const hubBody = JSON.stringify({ id: "evt_7", type: "task.updated", timestamp: "2025-01-01T00:00:00Z",
  data: { taskId: "123", changes: ["status"] } });
// 002's Node receiver verifies X-Webhook-ID + JSON.stringify(req.body).
const tasklinkBody = JSON.stringify({ event: "payment.created", id: "evt_123460",
  timestamp: "2025-10-07T10:00:00.000Z", data: { payment: { id: "pay_123456", amount: 500,
  currency: "ZAR", status: "PENDING" } } });

const out = {
  generated_by: "tests/vectors/generate_node.js (Node crypto)",
  cases: [
    { name: "taskon node-example order", scheme: "canonical-json", key_order: "node-example",
      secret: "your-secret-key", api_key: "your-api-key",
      body_hex: Buffer.from(JSON.stringify(taskonBody)).toString("hex"), signed: nodeOrder,
      headers: [["X-API-Key", "your-api-key"], ["X-Signature", hmacHex("your-secret-key", nodeOrder)]] },
    { name: "task-hub express receiver", scheme: "x-hub", secret: "your-secret-key",
      body_hex: Buffer.from(hubBody).toString("hex"),
      headers: [["X-Hub-Signature", "sha256=" + hmacHex("your-secret-key", hubBody)]] },
    { name: "tasklink node receiver", scheme: "id-body", secret: "tl-secret", id: "evt_123460",
      body_hex: Buffer.from(tasklinkBody).toString("hex"),
      headers: [["X-Webhook-ID", "evt_123460"],
                ["X-Webhook-Signature", "sha256=" + hmacHex("tl-secret", "evt_123460" + tasklinkBody)]] },
  ],
};
fs.writeFileSync(process.argv[2] || path.join(__dirname, "node.json"), JSON.stringify(out, null, 1) + "\n");
