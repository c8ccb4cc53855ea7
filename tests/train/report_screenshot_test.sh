#!/usr/bin/env bash
# `longalign report` as a person sees it: the page for a small run (40 steps of metrics, plan
# statistics) rendered by headless Chromium, and the screenshot checked for content: not blank,
# and the charts' blue lines and bars drawn. Exit 77 (CTest: skipped) where Chromium is absent.
set -u
bin="$1"; py="$2"
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "SKIP: no chromium here (apt-get install chromium to run this check)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run="$tmp/run"
mkdir -p "$run/data.pack"
"$py" - "$run" <<'PY'
import json, math, sys
run = sys.argv[1]
with open(f"{run}/metrics.jsonl", "w") as f:
    for s in range(1, 41):
        f.write(json.dumps({"step": s, "loss": 7 * math.exp(-s / 12) + 2, "lr": 3e-3 * min(1, s / 4),
                            "grad_norm": 5 / math.sqrt(s), "tokens": 2000, "tokens_per_s": 1800 + 10 * s,
                            "elapsed_s": s, "skipped": False}) + "\n")
json.dump({"records": 400, "sequences": 400, "tokens": 86396, "target_tokens": 6316, "steps": 22,
           "efficiency": 0.981, "padding_tokens": 1668,
           "length_histogram": [{"min": 2 ** i, "max_exclusive": 2 ** (i + 1), "count": c}
                                for i, c in zip(range(4, 10), [100, 130, 9, 27, 80, 54])]},
          open(f"{run}/data.pack/stats.json", "w"))
open(f"{run}/train_config.yaml", "w").write("model:\n  hidden_size: 256\n")
PY
"$bin" report "$run" >"$tmp/report.log" 2>&1 || { echo "FAIL: longalign report"; cat "$tmp/report.log"; exit 1; }
[ -s "$run/report.html" ] || { echo "FAIL: no report.html"; exit 1; }
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,1400 \
  --screenshot="$tmp/shot.png" "file://$run/report.html" >"$tmp/chromium.log" 2>&1
[ -s "$tmp/shot.png" ] || { echo "FAIL: chromium wrote no screenshot"; tail -5 "$tmp/chromium.log"; exit 1; }
"$py" - "$tmp/shot.png" <<'PY'
# A PNG decoder for what Chromium writes (8-bit RGB or RGBA, not interlaced), then what is on it.
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat = 8, b""
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
bpp = 3 if color == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
rows, prev, i = [], bytearray(stride), 0
for _ in range(h):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b, c = prev[x], prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line)
    prev = line
px = [tuple(r[x:x + 3]) for r in rows[::4] for x in range(0, stride, 4 * bpp)]
ink = sum(1 for p in px if sum(p) < 600) / len(px)
blue = sum(1 for (r, g, b) in px if b > 150 and r < 100 and g < 140) / len(px)
print(f"screenshot {w}x{h}: {100 * ink:.1f}% of sampled pixels not white, {100 * blue:.2f}% chart blue")
assert ink > 0.02, "the page looks blank"
assert blue > 0.0005, "no chart line or bar in the picture"
PY
rc=$?
[ "$rc" = 0 ] && echo "ok: report.html renders with its charts in Chromium" || { echo "FAIL: screenshot check"; exit 1; }
