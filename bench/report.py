"""Merges the burn and PyTorch benchmark JSON into a markdown section and
writes it into docs/benchmarks.md between the markers
`<!-- results:NAME:begin -->` and `<!-- results:NAME:end -->`.

    python report.py --burn burn.json --pytorch pytorch.json --verify verify.json --name cpu --doc docs/benchmarks.md
"""

import argparse
import datetime
import json
import re


def fmt(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


def section(burn, pytorch, verify, commands):
    lines = []
    machine = burn["machine"]
    lines.append(f"Measured {datetime.date.today().isoformat()}. CPU: {machine['cpu']}, {machine['logical_cores']} logical cores, "
                 f"{fmt(machine.get('memory_gib'), 0)} GiB. 1-minute load average before/after the burn run: "
                 f"{fmt(machine.get('load_before'), 2)}/{fmt(machine.get('load_after'), 2)} (a quiet machine reads close to 0).")
    lines.append(f"Weights: `{burn['weights']}` ({'trained' if burn['trained_weights'] else 'untrained, random'}; "
                 f"{burn['parameters']:,} parameters, {burn['flops_per_pixel'] * 1e6 / 1e9:.1f} GFLOP per megapixel per step). "
                 f"PyTorch {pytorch.get('torch', '?')}.")
    if verify:
        lines.append(f"Equality check before timing (`verify.py`, {verify['device']}, input {verify['shape']}): max |burn - PyTorch| = "
                     f"{verify['network_max_abs_diff']:.2e} for S(x_t, t), {verify['sample4_max_abs_diff']:.2e} for the 4-step improved sampler "
                     f"(tolerance {verify['tolerance']:g}): {'passed' if verify['ok'] else 'FAILED'}.")
    lines.append("")
    lines.append("Times are wall time per image through the whole pipeline (tiles, upload, sampler loop, read-back, blend); "
                 "GFLOP/s counts the convolutions of every executed tile pixel (overlaps and padding included).")
    lines.append("")
    lines.append("| backend | precision | image | steps | tiles (side) | warm-up+runs | median s | min–max s (spread) | s/step/MP | GFLOP/s | peak RSS MiB | GPU MiB |")
    lines.append("| --- | --- | --- | ---: | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for m in burn["results"]:
        lines.append(f"| burn {m['backend']} | {m['precision']} | {m['width']}x{m['height']} | {m['steps']} | {m['tiles']} ({m['tile_size']}) | "
                     f"{m['warmup']}+{len(m['times_s'])} | {m['median_s']:.3f} | {m['min_s']:.3f}–{m['max_s']:.3f} ({m['spread_pct']:.1f}%) | "
                     f"{m['s_per_step_per_mp']:.3f} | {m['achieved_gflops']:.2f} | {fmt(m['peak_rss_mib'], 0)} | {fmt(m.get('gpu_reserved_mib'), 0)} |")
    for m in pytorch.get("results", []):
        lines.append(f"| PyTorch {m['mode']} | | {m['width']}x{m['height']} | {m['steps']} | {m['tiles']} ({m['tile_size']}) | "
                     f"{m['warmup']}+{len(m['times_s'])} | {m['median_s']:.3f} | {m['min_s']:.3f}–{m['max_s']:.3f} ({m['spread_pct']:.1f}%) | "
                     f"{m['s_per_step_per_mp']:.3f} | {m['achieved_gflops']:.2f} | {fmt(m['peak_rss_mib'], 0)} | {fmt(m.get('gpu_peak_allocated_mib'), 0)} |")
    lines.append("")
    # Ratios: for every burn result, PyTorch's time over burn's (>= 1: burn is at least as fast).
    modes = sorted({m["mode"] for m in pytorch.get("results", [])})
    if modes and burn["results"]:
        lines.append("Speed ratio burn/PyTorch = PyTorch median time / burn median time (1.0 = equal, above 1 = burn faster):")
        lines.append("")
        lines.append("| burn | image | steps | " + " | ".join(f"vs {mode}" for mode in modes) + " |")
        lines.append("| --- | --- | ---: | " + " | ".join("---:" for _ in modes) + " |")
        index = {(m["mode"], m["width"], m["height"], m["steps"]): m for m in pytorch["results"]}
        for m in burn["results"]:
            cells = []
            for mode in modes:
                other = index.get((mode, m["width"], m["height"], m["steps"]))
                cells.append("n/a" if other is None else f"{other['median_s'] / m['median_s']:.2f}x")
            lines.append(f"| {m['backend']} {m['precision']} | {m['width']}x{m['height']} | {m['steps']} | " + " | ".join(cells) + " |")
        lines.append("")
    skipped = burn.get("skipped", []) + [{"backend": "pytorch " + f["mode"], "precision": "", "width": f["size"], "height": "", "steps": f["steps"], "reason": f["reason"]} for f in pytorch.get("failed", [])]
    if skipped:
        lines.append("Not run:")
        lines.append("")
        for s in skipped:
            size = f"{s['width']}x{s['height']}" if s["height"] != "" else s["width"]
            lines.append(f"- {s['backend']} {s['precision']} {size} steps {s['steps']}: {s['reason']}")
        lines.append("")
    if commands:
        lines.append("Produced by:")
        lines.append("")
        lines.append("```sh")
        lines.extend(commands)
        lines.append("```")
    return "\n".join(lines).rstrip() + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burn", required=True)
    parser.add_argument("--pytorch", required=True)
    parser.add_argument("--verify")
    parser.add_argument("--name", required=True, help="marker name, e.g. cpu or cuda")
    parser.add_argument("--doc", required=True)
    parser.add_argument("--command", action="append", default=[], help="a command line to quote")
    args = parser.parse_args()
    burn = json.load(open(args.burn))
    pytorch = json.load(open(args.pytorch))
    verify = json.load(open(args.verify)) if args.verify else None
    body = section(burn, pytorch, verify, args.command)
    text = open(args.doc).read()
    begin, end = f"<!-- results:{args.name}:begin -->", f"<!-- results:{args.name}:end -->"
    block = f"{begin}\n{body}{end}"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    with open(args.doc, "w") as handle:
        handle.write(text)
    print(body)


if __name__ == "__main__":
    main()
