#!/usr/bin/env python3
"""Prints a markdown table of criterion results (slope estimates, else medians) for one group, with each benchmark's
throughput and its ratio to the group's baseline at the same size.

Usage: python3 benches/report.py GROUP [BASELINE]   (BASELINE defaults to raw-hmac)
Reads target/criterion/GROUP/*/*/new/{estimates,benchmark}.json.
"""
import json
import os
import sys

group = sys.argv[1]
baseline = sys.argv[2] if len(sys.argv) > 2 else "raw-hmac"
root = os.path.join("target", "criterion", group)
rows = {}
for function in sorted(os.listdir(root)):
    fdir = os.path.join(root, function)
    if not os.path.isdir(fdir) or function == "report":
        continue
    params_here = ["."] if os.path.isdir(os.path.join(fdir, "new")) else os.listdir(fdir)
    for param in params_here:
        new = os.path.join(fdir, param, "new")
        if not os.path.isdir(new):
            continue
        est = json.load(open(os.path.join(new, "estimates.json")))
        bench = json.load(open(os.path.join(new, "benchmark.json")))
        # The slope (linear sampling) regresses out per-sample constants; else the median.
        ns = (est.get("slope") or est["median"])["point_estimate"]
        tp = bench.get("throughput") or {}
        size = tp.get("Bytes") or tp.get("BytesDecimal")
        elements = tp.get("Elements")
        if elements:  # report per element (e.g. per request of a batch)
            ns /= elements
        rows[(function, param)] = (ns, size)

params = sorted({p for _, p in rows}, key=lambda p: min(s or 0 for (f, q), (_, s) in rows.items() if q == p))
print(f"| benchmark | " + " | ".join("time" if p == "." else p for p in params) + " |")
print("|---|" + "---|" * len(params))
for function in sorted({f for f, _ in rows}, key=lambda f: (f != baseline, f)):
    cells = []
    for param in params:
        if (function, param) not in rows:
            cells.append("")
            continue
        ns, size = rows[(function, param)]
        cell = f"{ns / 1000:.2f} µs"
        if size:
            cell += f", {size / ns:.2f} GB/s"
        else:
            cell += f", {1e9 / ns:,.0f}/s"
        base = rows.get((baseline, param))
        if base and function != baseline:
            cell += f", **{base[0] / ns:.2f}×**"
        cells.append(cell)
    print(f"| {function} | " + " | ".join(cells) + " |")
print(f"\nRatio = {baseline} time / benchmark time (above 1 means faster than {baseline}).")
