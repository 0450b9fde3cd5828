"""Writes the ONNX side-by-side tables (bench/onnx/run.sh's JSON) into
docs/benchmarks.md between `<!-- results:onnx:begin -->` and
`<!-- results:onnx:end -->`.

    python report.py --check check.json --native native.json --browser browser.json \\
        --doc docs/benchmarks.md --command "make bench-onnx" [--note TEXT]
"""

import argparse
import json
import os

BEGIN = "<!-- results:onnx:begin -->"
END = "<!-- results:onnx:end -->"
NAMES = {"burn": "ours (burn ndarray)", "onnxruntime": "ONNX Runtime", "pytorch": "PyTorch eager"}
CONFIGS = {
    "wasm-1t": "wasm CPU, 1 thread (page without COOP/COEP)",
    "wasm-2t": "wasm CPU, onnxruntime-web 2 threads (page with COOP/COEP; ours 1 thread)",
    "webgpu": "WebGPU",
}


def ms(value):
    return "n/a" if value is None else (f"{value:,.0f}" if value >= 100 else f"{value:.1f}")


def median(values):
    values = sorted(values)
    n = len(values)
    if n == 0:
        return None
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def ratio(ours, theirs):
    return "n/a" if not ours or not theirs else f"{ours / theirs:.2f}"


def native_section(native):
    lines = [
        f"**Native CPU** ({native['cpu']}, {native['logical_cores']} logical cores; every runtime in its own process with "
        f"{native['threads']} threads; 1 cold + {native['repeats']} timed rounds, interleaved burn, ONNX Runtime, PyTorch; "
        f"t = {native['results'][0]['t']}; 1-minute load average before/after: {native['load_before']:.2f}/{native['load_after']:.2f}). "
        f"{', '.join(v for k, v in sorted(native['versions'].items()))}.",
        "",
        "| image | runtime | cold ms | median ms | min–max ms | ours ÷ this (median time) | ours ÷ this (cold) | max abs diff vs ours |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    by_size = {}
    for row in native["results"]:
        by_size.setdefault((row["width"], row["height"]), {})[row["runtime"]] = row
    for (width, height), rows in by_size.items():
        ours = rows["burn"]
        for name in ("burn", "onnxruntime", "pytorch"):
            row = rows[name]
            extra = f" (+{ms(row['session_create_ms'])} ms session creation)" if "session_create_ms" in row else ""
            lines.append(
                f"| {width}x{height} | {NAMES[name]}{extra} | {ms(row['cold_ms'])} | {ms(row['median_ms'])} | {ms(row['min_ms'])}–{ms(row['max_ms'])} | "
                f"{'–' if name == 'burn' else ratio(ours['median_ms'], row['median_ms'])} | {'–' if name == 'burn' else ratio(ours['cold_ms'], row['cold_ms'])} | "
                f"{'–' if name == 'burn' else format(row['max_abs_diff_vs_burn'], '.2e')} |"
            )
    return lines


def browser_section(browser):
    lines = [
        f"**Browser** (headless Chromium {browser['chromium']}, {browser['cores']} cores, the npm package from `make pkg` "
        f"(`Model.evaluate`) against onnxruntime-web {first(browser, 'ortVersion')} (wasm backend with SIMD; WebGPU backend); "
        f"a fresh page per configuration; ours then onnxruntime-web, round after round, round 0 cold; "
        f"t = {first(browser, 't')}; load average before/after: {browser['loadBefore']:.2f}/{browser['loadAfter']:.2f}).",
        "",
        "| configuration | image | ours cold ms | ours median ms | onnxruntime-web cold ms | onnxruntime-web median ms | ours ÷ onnxruntime-web (median time) | ours ÷ onnxruntime-web (cold) | max abs diff |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    notes = []
    for run in browser["runs"]:
        label = CONFIGS.get(run["config"], run["config"])
        if run["config"] == "wasm-2t" and not run.get("info", {}).get("crossOriginIsolated", False):
            notes.append(f"- {run['config']}: the page was not cross-origin isolated, so onnxruntime-web ran on 1 thread.")
        if run.get("info", {}).get("adapter"):
            notes.append(f"- {run['config']}: WebGPU adapter {json.dumps(run['info']['adapter'])}.")
        if run.get("error"):
            notes.append(f"- {run['config']}: failed: `{one_line(run['error'])}`")
        for entry in run["results"]:
            ours, theirs = entry["ours"], entry["theirs"]
            cold_o, cold_t = (ours[0] if ours else None), (theirs[0] if theirs else None)
            med_o, med_t = median(ours[1:]), median(theirs[1:])
            diff = f"{entry['maxAbsDiff']:.2e}" if entry.get("maxAbsDiff") is not None else "n/a"
            lines.append(
                f"| {label} ({len(ours) - 1 if ours else 0} timed) | {entry['width']}x{entry['height']} | {ms(cold_o)} | {ms(med_o)} | {ms(cold_t)} | {ms(med_t)} | "
                f"{ratio(med_o, med_t)} | {ratio(cold_o, cold_t)} | {diff} |"
            )
            if entry.get("error"):
                notes.append(f"- {run['config']} {entry['width']}x{entry['height']}: failed: `{one_line(entry['error'])}`")
            if entry.get("theirsSessionMs") is not None:
                notes.append(f"- {run['config']} {entry['width']}x{entry['height']}: onnxruntime-web session creation {ms(entry['theirsSessionMs'])} ms (not in the times).")
    return lines + ([""] + notes if notes else [])


def first(browser, key):
    for run in browser["runs"]:
        if run.get("info", {}).get(key) is not None:
            return run["info"][key]
    return "?"


def one_line(text):
    return " ".join(str(text).split())[:400]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", required=True)
    parser.add_argument("--native")
    parser.add_argument("--browser")
    parser.add_argument("--doc", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--note", default="")
    args = parser.parse_args()

    check = json.load(open(args.check))
    reference = check.get("reference", {})
    lines = [BEGIN]
    date = None
    if args.native and os.path.exists(args.native):
        date = json.load(open(args.native))["date"]
    lines.append(
        f"Measured {date or 'see the JSON'} by one run of `{args.command}`. "
        f"Exported with torch {check['torch']} (opset {check['opset']}, static shapes, one file per size), "
        f"weights `{check['weights']}`. Times are milliseconds for **one network evaluation** S(x_t, t) "
        f"(one forward pass of the U-Net at that size with its time input, the output back in host memory); "
        f"ratios are **ours ÷ theirs in time: above 1 = ours slower** (the issue's speed ratio is the inverse)."
    )
    if args.note:
        lines += ["", args.note]
    lines += [
        "",
        f"Equality before timing: on burn's reference input ({'x'.join(map(str, reference.get('shape', [])))}, t = {reference.get('t', '?')}), "
        f"max |ONNX Runtime − burn| = {reference.get('max_abs_diff_onnxruntime_vs_burn', float('nan')):.2e}, "
        f"max |PyTorch − burn| = {reference.get('max_abs_diff_pytorch_vs_burn', float('nan')):.2e} "
        f"(tolerance {check['tolerance']:g}): {'passed' if check.get('ok') else 'FAILED'}. "
        f"The tables' last columns compare every runtime's cold output with ours at the timed sizes.",
        "",
    ]
    if args.native and os.path.exists(args.native):
        lines += native_section(json.load(open(args.native))) + [""]
    else:
        lines += ["(native CPU: not run)", ""]
    if args.browser and os.path.exists(args.browser):
        lines += browser_section(json.load(open(args.browser))) + [""]
    else:
        lines += ["(browser: not run)", ""]
    lines.append(END)
    block = "\n".join(lines)

    doc = open(args.doc).read()
    if BEGIN in doc and END in doc:
        before = doc[: doc.index(BEGIN)]
        after = doc[doc.index(END) + len(END):]
        doc = before + block + after
    else:
        doc = doc.rstrip("\n") + "\n\n## Side by side with ONNX Runtime\n\n" + block + "\n"
    with open(args.doc, "w") as handle:
        handle.write(doc)
    print(f"report: wrote the ONNX tables into {args.doc}")


if __name__ == "__main__":
    main()
