"""Independent signature checks for tests/relay.rs, with Python's hmac only.

Reads one JSON object on stdin and prints the expected signature header value:
  {"scheme": "github", "secret": "<text>", "body": "<text>"}
      -> sha256=<hex HMAC-SHA256(secret, body)>
  {"scheme": "standard-webhooks", "secret": "whsec_<base64>", "id": ..., "timestamp": ..., "body": ...}
      -> v1,<base64 HMAC-SHA256(base64decode(secret), id.timestamp.body)>
"""
import base64
import hashlib
import hmac
import json
import sys

case = json.load(sys.stdin)
body = case["body"].encode()
if case["scheme"] == "github":
    mac = hmac.new(case["secret"].encode(), body, hashlib.sha256).hexdigest()
    print("sha256=" + mac)
elif case["scheme"] == "standard-webhooks":
    key = base64.b64decode(case["secret"].removeprefix("whsec_"))
    signed = f'{case["id"]}.{case["timestamp"]}.'.encode() + body
    mac = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    print("v1," + mac)
else:
    sys.exit("unknown scheme")
