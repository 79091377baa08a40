#!/usr/bin/env python3
"""Computes the expected signature headers for every hookrelay scheme with Python's own
hmac/hashlib/base64, independently of the Rust code. Writes schemes.json beside this file.

Run: python3 tests/vectors/generate.py [OUTPUT]   (tests/vectors.rs checks the committed
file equals a fresh run)
"""
import base64
import hashlib
import hmac
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


TASKLINK_JOB_CREATED = (
    '{"event":"job.created","id":"evt_123456","timestamp":"2025-10-07T07:37:03.000Z",'
    '"data":{"job":{"id":"job_123456","title":"Garden Maintenance Service","budget":500,'
    '"budgetType":"fixed","status":"OPEN"}}}'
)
PG_JOB_COMPLETED = (
    '{"id":"evt_pg_1","type":"job.completed","timestamp":"2024-01-15T10:40:00Z",'
    '"data":{"job_id":"job_123","proposal_id":"prop_123","document_id":"doc_123","status":"completed"}}'
)
TASKON_TOKEN = (
    '{"task_id":111111,"reward_type":"Token","reward_amount":"0.1","token_contract":"0x0000...",'
    '"token_symbol":"USDT","token_network":"bsc","user_id":11111,'
    '"evm_address":["0xaaaaaaaaa","0xbbbbbbbbb"],"email":"user@example.com","timestamp":1758251308}'
)
TASK_HUB = '{"id":"evt_1","type":"task.completed","timestamp":"2025-01-01T00:00:00Z","data":{"taskId":"123","completedAt":"2025-01-01T00:00:00Z"}}'
NON_UTF8 = b"\xff\xfe\x00binary\x80"
# A GitHub `push` delivery as GitHub sends it: the type is only in X-GitHub-Event (the body
# has no top-level `type`; `sender.type` is nested).
GITHUB_PUSH = (
    '{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246",'
    '"after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","created":false,"deleted":false,'
    '"forced":false,"compare":"https://github.com/octocat/Hello-World/compare/6113728f27ae...0d1a26e67d8f",'
    '"commits":[{"id":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","message":"Update README.md",'
    '"timestamp":"2025-10-07T10:00:00+02:00","author":{"name":"Monalisa Octocat","email":"octocat@github.com","username":"octocat"}}],'
    '"repository":{"id":1296269,"node_id":"MDEwOlJlcG9zaXRvcnkxMjk2MjY5","name":"Hello-World",'
    '"full_name":"octocat/Hello-World","private":false,"owner":{"login":"octocat","id":1,"type":"User"}},'
    '"pusher":{"name":"octocat","email":"octocat@github.com"},'
    '"sender":{"login":"octocat","id":1,"type":"User"}}'
)
# 004's flat payload (its test-event example): the type is only in X-Event-Type.
TASK_HUB_FLAT = '{"taskId": "123", "status": "completed"}'

cases = []


def case(name, scheme, secret, body: bytes, headers, **extra):
    entry = {
        "name": name,
        "scheme": scheme,
        "secret": secret,
        "body_hex": body.hex(),
        "headers": headers,
    }
    entry.update(extra)
    cases.append(entry)


# raw-body (Proposal Generator): hex HMAC of the body.
for name, secret, body in [
    ("pg job.completed", "your_webhook_secret", PG_JOB_COMPLETED.encode()),
    ("pg empty body", "your_webhook_secret", b""),
    ("pg non-utf8 body", "s3cr3t", NON_UTF8),
]:
    sig = mac(secret.encode(), body).hex()
    case(name, "raw-body", secret, body, [["X-Webhook-Signature", sig]])

# id-body (TaskLink): sha256=hex HMAC of id + body.
for name, secret, wid, body in [
    ("tasklink job.created", "whsec_tasklink", "evt_123456", TASKLINK_JOB_CREATED.encode()),
    ("tasklink unicode", "k", "evt_9", '{"msg":"Ünïcödé ✓ 😀"}'.encode()),
]:
    sig = mac(secret.encode(), wid.encode() + body).hex()
    case(name, "id-body", secret, body,
         [["X-Webhook-ID", wid], ["X-Webhook-Signature", "sha256=" + sig]], id=wid)

# canonical-json (TaskOn): Go's sorted-key json.Marshal of {user_id, timestamp}.
for name, secret, api_key, body in [
    ("taskon token", "your-secret-key", "your-api-key", TASKON_TOKEN.encode()),
]:
    parsed = json.loads(body)
    signed = json.dumps({"user_id": parsed["user_id"], "timestamp": parsed["timestamp"]},
                        sort_keys=True, separators=(",", ":")).encode()
    sig = mac(secret.encode(), signed).hex()
    case(name, "canonical-json", secret, body,
         [["X-API-Key", api_key], ["X-Signature", sig]], api_key=api_key,
         signed=signed.decode())

# x-hub (task-hub) and github: sha256=hex HMAC of the body.
for name, scheme, header, secret, body in [
    ("task-hub task.completed", "x-hub", "X-Hub-Signature", "your-secret-key", TASK_HUB.encode()),
    ("github documented", "github", "X-Hub-Signature-256", "It's a Secret to Everybody", b"Hello, World!"),
    ("github non-utf8", "github", "X-Hub-Signature-256", "k", NON_UTF8),
]:
    sig = mac(secret.encode(), body).hex()
    case(name, scheme, secret, body, [[header, "sha256=" + sig]])

# Whole deliveries whose event type is only in a header: `extra_headers` are the transport
# headers besides the signature (`headers`), as the sender sends them.
for name, scheme, header, secret, body, extra in [
    ("github push delivery", "github", "X-Hub-Signature-256", "github-secret",
     GITHUB_PUSH.encode(),
     [["X-GitHub-Event", "push"], ["X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"],
      ["User-Agent", "GitHub-Hookshot/044aadd"]]),
    ("task-hub flat task.completed", "x-hub", "X-Hub-Signature", "your-secret-key",
     TASK_HUB_FLAT.encode(),
     [["X-Webhook-ID", "wh_1"], ["X-Delivery-ID", "dlv_flat_1"], ["X-Event-Type", "task.completed"]]),
]:
    sig = mac(secret.encode(), body).hex()
    case(name, scheme, secret, body, [[header, "sha256=" + sig]], extra_headers=extra)

# standard-webhooks: base64 HMAC of "{id}.{ts}.{body}" with the base64-decoded whsec key.
for name, secret, wid, ts, body in [
    ("standard spec example", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'),
    ("standard task-hub body", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "msg_2", 1700000000,
     TASK_HUB.encode()),
]:
    key = base64.b64decode(secret[len("whsec_"):])
    sig = base64.b64encode(mac(key, f"{wid}.{ts}.".encode() + body)).decode()
    case(name, "standard-webhooks", secret, body,
         [["webhook-id", wid], ["webhook-timestamp", str(ts)], ["webhook-signature", "v1," + sig]],
         id=wid, timestamp=ts)

# stripe: hex HMAC of "{t}.{body}" keyed with the whole secret string.
for name, secret, ts, body in [
    ("stripe event", "whsec_test_secret", 1700000000, b'{"id":"evt_1","object":"event"}'),
]:
    sig = mac(secret.encode(), f"{ts}.".encode() + body).hex()
    case(name, "stripe", secret, body, [["Stripe-Signature", f"t={ts},v1={sig}"]], timestamp=ts)

# RFC 4231 HMAC-SHA-256 test cases 1-4, 6, 7 (case 5 is truncated output).
rfc4231 = [
    ("1", "0b" * 20, b"Hi There".hex()),
    ("2", b"Jefe".hex(), b"what do ya want for nothing?".hex()),
    ("3", "aa" * 20, "dd" * 50),
    ("4", "0102030405060708090a0b0c0d0e0f10111213141516171819", "cd" * 50),
    ("6", "aa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First".hex()),
    ("7", "aa" * 131, b"This is a test using a larger than block-size key and a larger than "
                      b"block-size data. The key needs to be hashed before being used by the "
                      b"HMAC algorithm.".hex()),
]
rfc = [{"case": n, "key_hex": k, "data_hex": d,
        "mac_hex": mac(bytes.fromhex(k), bytes.fromhex(d)).hex()} for n, k, d in rfc4231]

out = {"generated_by": "tests/vectors/generate.py (Python hmac)", "cases": cases, "rfc4231": rfc}
with open(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "schemes.json"), "w") as f:
    json.dump(out, f, indent=1, ensure_ascii=True)
    f.write("\n")
