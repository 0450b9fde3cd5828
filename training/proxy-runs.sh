#!/usr/bin/env bash
# Fixed-budget proxy runs (issue 19, "more quality per FLOP"): each variant
# trains from scratch on the same data, seed and validation for the same CPU
# budget of training steps (`train --cpu-minutes`: the process's CPU time, so
# a build sharing the machine does not shorten one variant's run), with a
# warmup-stable-decay schedule sized so the decay ends with the budget.
#
#   training/proxy-runs.sh [CPU_MINUTES] [VARIANT ...]   (default 15, all)
#
# Runs go to runs/proxy/NAME (their weights git-ignored); the table goes to
# runs/proxy/results.md. Uses burn-tch (training/tch.sh), the fastest CPU
# backend here.
#
# THREADS=N sets LibTorch's intra-op threads (OMP_NUM_THREADS). Two
# single-threaded instances over disjoint variant lists finish a table in
# about half the wall time of one two-threaded instance on two cores, with
# the same CPU budget per variant; every variant of one table should be run
# the same way, since one thread spends fewer CPU seconds per step than two.
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${1:-15}"
shift || true
out=runs/proxy
mkdir -p "$out"
# OpenMP threads that wait by spinning burn CPU time while another process
# holds the other core; passive waiting keeps the budget a measure of work.
export OMP_WAIT_POLICY=PASSIVE
[ -n "${THREADS:-}" ] && export OMP_NUM_THREADS="$THREADS"

# name -> architecture flags. Inference cost per pixel per step against
# today's network (249 GFLOP per megapixel): level4 1.03x, unshuffle32
# 1.01x, unshuffle32-level4 1.04x, wide20-shallow 1.11x, narrow14-deep
# 0.99x; wide32 costs 3.99x, to set one step of it against four of today's.
declare -A flags=(
  [today]=""
  [level4]="--channel-multipliers 1,2,4,4"
  [unshuffle32]="--pixel-unshuffle 2 --base-channels 32"
  [unshuffle32-level4]="--pixel-unshuffle 2 --base-channels 32 --channel-multipliers 1,2,4,4"
  [wide20-shallow]="--base-channels 20 --blocks-per-level 1"
  [narrow14-deep]="--base-channels 14 --blocks-per-level 3"
  [wide32]="--base-channels 32"
)
variants=("$@")
[ ${#variants[@]} -eq 0 ] && variants=(today unshuffle32 level4 narrow14-deep wide32 unshuffle32-level4 wide20-shallow)

common=(--batch-size 4 --patch-size 128 --learning-rate 5e-4 --seed 19 --schedule wsd --validate-every 1000000)
for name in "${variants[@]}"; do
  run="$out/$name"
  [ -n "${flags[$name]+set}" ] || { echo "unknown variant $name" >&2; exit 2; }
  if [ -f "$run/done" ]; then echo "$name: done already"; continue; fi
  rm -rf "$run"
  # 10 warm-up steps (the first step allocates and is several times slower),
  # then 20 that measure this variant's CPU seconds per step; the schedule is
  # sized so its decay ends when the budget does, and the rest of the budget
  # is spent.
  # shellcheck disable=SC2086
  training/tch.sh train --run "$run" --backend cpu-tch --iterations 1000000 --steps 10 "${common[@]}" ${flags[$name]} | tee "$out/$name.log"
  training/tch.sh train --run "$run" --backend cpu-tch --steps 20 | tee "$out/$name.measure.log"
  used=$(sed -n 's/.*training steps used \([0-9.]*\) CPU seconds.*/\1/p' "$out/$name.log")
  per_step=$(sed -n 's/.*training steps used .* CPU seconds (\([0-9.]*\) per step).*/\1/p' "$out/$name.measure.log")
  cat "$out/$name.measure.log" >> "$out/$name.log" && rm "$out/$name.measure.log"
  read -r iterations left < <(python3 -c "b=$budget*60; p=$per_step; u=$used+20*p; print(30+int((b-u)/p), (b-u)/60)")
  echo "$name: $per_step CPU s per step after warm-up -> $iterations iterations in $budget CPU minutes"
  training/tch.sh train --run "$run" --backend cpu-tch --iterations "$iterations" --cpu-minutes "$left" | tee -a "$out/$name.log"
  touch "$run/done"
done

python3 - "$out" "$budget" <<'PY'
import csv, os, re, sys
out, budget = sys.argv[1], sys.argv[2]
rows = []
for name in sorted(os.listdir(out)):
    log, run = os.path.join(out, name + ".log"), os.path.join(out, name)
    if not (os.path.isdir(run) and os.path.exists(os.path.join(run, "done")) and os.path.exists(log)):
        continue
    text = open(log).read()
    gflops = float(re.search(r"network: ([0-9.]+) GFLOP", text).group(1))
    per_step = float(re.findall(r"\(([0-9.]+) per step\)", text)[-1])
    last = [r for r in csv.DictReader(open(os.path.join(run, "log.csv"))) if r["validation_psnr"]][-1]
    rows.append((name, gflops, per_step, int(last["step"]), float(last["validation_psnr"]), float(last["validation_psnr_1step"]), float(last["validation_psnr_unseen"])))
base = next((r[1] for r in rows if r[0] == "today"), None)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
threads = os.environ.get("THREADS", str(os.cpu_count()))
lines = [f"Proxy runs: {budget} CPU minutes of training steps each ({cpu}, {os.cpu_count()} cores, {threads} thread(s) per run, burn-tch), from scratch, seed 19, 4 crops of 128 px, "
         "lr 5e-4 wsd; validation 24 crops of 256 px at the three levels (EMA weights).", "",
         "| variant | GFLOP/MP/step | x today | CPU s/step | steps | training camera, 4 steps (dB) | 1 step (dB) | unseen camera, 4 steps (dB) |",
         "|---|---|---|---|---|---|---|---|"]
for name, g, p, steps, v4, v1, vu in sorted(rows, key=lambda r: -r[4]):
    ratio = f"{g / base:.2f}" if base else "?"
    lines.append(f"| {name} | {g:.1f} | {ratio} | {p:.2f} | {steps} | {v4:.2f} | {v1:.2f} | {vu:.2f} |")
open(os.path.join(out, "results.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
