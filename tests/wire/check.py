"""Independent checks of hookrelay's requests on the wire, with Python's hmac.

Reads one JSON object per line on stdin:
  {"case": str, "profile": str, "secrets": [str], "api_key": str|null,
   "headers": {lowercase name: value}, "body_hex": str}
and prints one JSON object per line:
  {"case": str, "matched": [bool per secret], "api_key_ok": bool|null,
   "seed_002_python": bool|null}

Each profile's signature is computed here from the scheme's published rules, not from
hookrelay's code. `seed_002_python` re-implements the TaskLink document's Python receiver,
which verifies json.dumps(request.json, separators=(',', ':')) instead of the raw body.
"""
import base64
import hashlib
import hmac
import json
import sys


def mac(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def check(case):
    profile = case["profile"]
    headers = case["headers"]
    body = bytes.fromhex(case["body_hex"])
    matched = []
    for secret in case["secrets"]:
        key = secret.encode()
        if profile == "proposal-generator":
            ok = hmac.compare_digest(mac(key, body).hex(), headers["x-webhook-signature"])
        elif profile == "tasklink":
            payload = headers["x-webhook-id"].encode() + body
            ok = hmac.compare_digest("sha256=" + mac(key, payload).hex(), headers["x-webhook-signature"])
        elif profile == "taskon":
            data = json.loads(body)
            # TaskOn's Go signer marshals a map: keys sorted.
            signed = json.dumps({"timestamp": data["timestamp"], "user_id": data["user_id"]},
                                separators=(",", ":"), sort_keys=True).encode()
            ok = hmac.compare_digest(mac(key, signed).hex(), headers["x-signature"])
        elif profile == "task-hub":
            ok = hmac.compare_digest("sha256=" + mac(key, body).hex(), headers["x-hub-signature"])
        elif profile == "github":
            ok = hmac.compare_digest("sha256=" + mac(key, body).hex(), headers["x-hub-signature-256"])
        elif profile == "standard-webhooks":
            raw = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
            signed = "{}.{}.".format(headers["webhook-id"], headers["webhook-timestamp"]).encode() + body
            expected = "v1," + base64.b64encode(mac(raw, signed)).decode()
            ok = any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split(" "))
        elif profile == "stripe":
            items = [i.split("=", 1) for i in headers["stripe-signature"].split(",")]
            t = [v for k, v in items if k == "t"][0]
            expected = mac(key, t.encode() + b"." + body).hex()
            ok = any(hmac.compare_digest(expected, v) for k, v in items if k == "v1")
        else:
            raise SystemExit("unknown profile " + profile)
        matched.append(ok)

    api_key_ok = None
    if profile == "taskon":
        api_key_ok = headers.get("x-api-key") == case["api_key"]

    seed = None
    if profile == "tasklink":
        # The seed's Python receiver, as documented.
        redumped = json.dumps(json.loads(body), separators=(",", ":"))
        payload = headers["x-webhook-id"] + redumped
        expected = hmac.new(case["secrets"][0].encode(), payload.encode(), hashlib.sha256).hexdigest()
        seed = hmac.compare_digest(expected, headers["x-webhook-signature"].replace("sha256=", ""))

    return {"case": case["case"], "matched": matched, "api_key_ok": api_key_ok, "seed_002_python": seed}


for line in sys.stdin:
    if line.strip():
        print(json.dumps(check(json.loads(line))))
