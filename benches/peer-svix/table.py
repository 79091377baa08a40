#!/usr/bin/env python3
"""Prints the README's throughput table from criterion's saved estimates.

Run after `cargo bench` in this directory (reads target/criterion, or $CARGO_TARGET_DIR/criterion).
GB/s is 10^9 bytes per second, from criterion's typical time per iteration
(the slope estimate, as in its `thrpt:` lines; the mean where there is no slope).
"""
import json
import os
import pathlib

root = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "criterion" / "standard-webhooks-verify"
sizes = [("1KiB", 1 << 10), ("16KiB", 16 << 10), ("1MiB", 1 << 20)]


def gbps(name, label, size):
    estimates = json.loads((root / name / label / "new" / "estimates.json").read_text())
    typical = estimates.get("slope") or estimates["mean"]  # what criterion prints as thrpt
    return size / typical["point_estimate"]  # bytes per ns == GB/s


print("| body | hookrelay (GB/s) | svix (GB/s) | raw HMAC (GB/s) | hookrelay / svix | hookrelay / raw HMAC |")
print("|---|---:|---:|---:|---:|---:|")
for label, size in sizes:
    h, s, r = (gbps(n, label, size) for n in ("hookrelay", "svix", "raw-hmac"))
    print(f"| {label.replace('KiB', ' KiB').replace('MiB', ' MiB')} | {h:.3f} | {s:.3f} | {r:.3f} | {h / s:.2f}x | {h / r:.2f}x |")
