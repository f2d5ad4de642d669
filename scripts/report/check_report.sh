#!/usr/bin/env bash
# Browser check of `qgoft report`, and the TensorBoard / scalars exports read back by TensorBoard.
#
# Makes two tiny real sessions (qGOFT and GOFT, 6 steps of the default model on a 96-row CSV whose
# file name holds markup, to prove it is escaped), then:
#  1. `qgoft report` of one and of both sessions; the HTML must reference nothing outside itself
#     (no http(s) URL, no src=, no <link>/<script>/<img>/<iframe>/<object>/<embed>, no CSS url(),
#     every href an in-page #anchor);
#  2. headless Chromium renders each to a PNG (must be a 1200-pixel-wide PNG of real size) and dumps
#     the DOM after parsing, which must hold the expected sections, charts and tables, no element
#     made from the session text, and no element that loads anything;
#  3. Chromium's network log while rendering the report must hold no request that an empty page
#     does not also make (the browser's own update pings);
#  4. the refusals of `qgoft export` (no output, bad extension, existing file, second export);
#  5. if a Python with tensorboard is given (TB_PYTHON, e.g. a venv with `pip install tensorboard`),
#     `qgoft export --tensorboard --scalars` of each session is checked by
#     scripts/interop/check_tensorboard.py.
#
# Needs: a release build (.build/release/qgoft, or QGOFT=path), the model asset (`qgoft fetch`),
# Chromium (Debian: apt-get install -y chromium; or CHROMIUM=path), python3.
# Usage: scripts/report/check_report.sh [ARTIFACTS_DIR]   (the PNGs and HTML are kept there)
set -euo pipefail
cd "$(dirname "$0")/../.."
Q=${QGOFT:-$PWD/.build/release/qgoft}
CHROMIUM=${CHROMIUM:-chromium}
TB_PYTHON=${TB_PYTHON:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
art=${1:-$work/artifacts}
mkdir -p "$art"
fail() { echo "check_report: FAIL: $*" >&2; exit 1; }
command -v "$CHROMIUM" >/dev/null || fail "no $CHROMIUM (Debian: apt-get install -y chromium)"
[ -x "$Q" ] || fail "no qgoft at $Q (swift build -c release)"

# A small balanced data set; the file name carries markup that must come out as text.
data="$work/tiny <i>x & co.csv"
python3 - "$data" <<'EOF'
import csv, random, sys
random.seed(7)
good = ["a wonderful, moving film", "brilliant acting and a clever script", "funny, warm and beautifully shot",
        "one of the best films this year", "a delight from start to finish", "smart and touching"]
bad = ["a dull, lifeless mess", "badly written and far too long", "the worst film i have seen",
       "boring, predictable and loud", "a waste of a good cast", "tedious and clumsy"]
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["text", "label"])
    for k in range(96):
        label = k % 2
        w.writerow([random.choice(good if label else bad) + " " + random.choice(["", "really", "truly", "!"]), label])
EOF

sessions="$work/sessions"
ids=()
for method in qgoft goft; do
    log="$work/$method.log"
    "$Q" train --headless --data "$data" --method "$method" --max-steps 6 --batch-size 8 --stats-every 2 \
        --eval-every 3 --snapshot-every 3 --log-every 100 --sessions-dir "$sessions" >"$log" 2>&1 || { cat "$log"; fail "training $method"; }
    ids+=("$(sed -n 's/^session \([^ ]*\) in .*/\1/p' "$log" | head -n 1)")
done
echo "check_report: sessions ${ids[*]}"

"$Q" report "${ids[0]}" --out "$art/report-one.html" --sessions-dir "$sessions"
"$Q" report "${ids[@]}" --out "$art/report-two.html" --sessions-dir "$sessions"
if "$Q" report "${ids[0]}" --out "$art/report-one.html" --sessions-dir "$sessions" 2>"$work/refused"; then
    fail "an existing --out was overwritten without --force"
fi
grep -q "already exists" "$work/refused" || fail "no clear refusal: $(cat "$work/refused")"

# 1. Static: nothing outside the file.
for html in "$art/report-one.html" "$art/report-two.html"; do
    if grep -Eiqo 'https?://|src=|<link|<script|<img|<iframe|<object|<embed|url\(|@import' "$html"; then
        fail "$html references something: $(grep -Eio '.{40}(https?://|src=|<link|<script|<img|<iframe|<object|<embed|url\(|@import).{40}' "$html" | head -n 3)"
    fi
    if grep -o 'href="[^"]*"' "$html" | grep -v 'href="#' | head -n 1 | grep -q .; then
        fail "$html links outside itself: $(grep -o 'href="[^"]*"' "$html" | grep -v 'href="#' | head -n 3)"
    fi
done

# 2. Rendered by Chromium.
chrome() {
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --disable-extensions \
        --disable-background-networking --disable-component-update --disable-sync --disable-default-apps \
        --user-data-dir="$work/chromium-profile" "$@" 2>>"$work/chromium.log"
}
for name in report-one report-two; do
    html="$art/$name.html"
    chrome --screenshot="$art/$name.png" --window-size=1200,2400 "file://$html" >/dev/null
    python3 - "$art/$name.png" <<'EOF' || fail "$name.png is not a real screenshot"
import struct, sys, os
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", b[16:24])
assert (w, h) == (1200, 2400), (w, h)
assert len(b) > 60000, f"only {len(b)} bytes: a blank or nearly blank page"
print(f"check_report: {os.path.basename(sys.argv[1])}: {w}x{h}, {len(b)} bytes")
EOF
    chrome --dump-dom "file://$html" >"$work/$name.dom"
    grep -q '</html>' "$work/$name.dom" || fail "$name: Chromium produced no DOM"
    needles=('class="session"' 'class="config"' 'class="chart chart-loss"' 'class="chart timeline-lambda"'
             'class="chart timeline-lr"' 'class="heatmap heatmap-stages"' 'class="heatmap heatmap-time"'
             'class="layers"' 'class="events"' "${ids[0]}" '&lt;i&gt;x &amp; co')
    [ "$name" = report-two ] && needles+=('id="comparison"' 'id="overlay-loss"' 'id="overlay-accuracy"' "${ids[1]}")
    for needle in "${needles[@]}"; do
        grep -qF -- "$needle" "$work/$name.dom" || fail "$name: the rendered DOM lacks $needle"
    done
    if grep -Eiq '<(i|script|img|link|iframe|object|embed)[ >]' "$work/$name.dom"; then
        fail "$name: the DOM holds an element made from session text or one that loads something"
    fi
    svgs=$(grep -o '<svg' "$work/$name.dom" | wc -l)
    rects=$(grep -o '<rect' "$work/$name.dom" | wc -l)
    [ "$svgs" -ge 5 ] && [ "$rects" -ge 100 ] || fail "$name: only $svgs charts and $rects heatmap cells"
    echo "check_report: $name: DOM has every section, $svgs SVG charts, $rects rects"
done

# 3. Network: what the report made the browser request, less what an empty page makes.
echo '<!DOCTYPE html><html><body></body></html>' >"$work/empty.html"
chrome --log-net-log="$work/net-empty.json" --dump-dom "file://$work/empty.html" >/dev/null
chrome --log-net-log="$work/net-report.json" --dump-dom "file://$art/report-two.html" >/dev/null
hosts() { grep -o '"url":"[a-z]*://[^/"]*' "$1" | sed 's/.*:\/\///' | sort -u; }
extra=$(comm -13 <(hosts "$work/net-empty.json") <(hosts "$work/net-report.json"))
[ -z "$extra" ] || fail "rendering the report contacted: $extra"
echo "check_report: no network request beyond the browser's own"

# 4. The export's refusals: no output given, an unknown extension, --merge without --out, an
#    existing scalars file without --force, a second TensorBoard export into the same run folder.
refuse() {  # refuse EXPECTED_TEXT ARGS...: the command must fail, saying EXPECTED_TEXT
    local want=$1; shift
    if "$Q" export "${ids[0]}" --sessions-dir "$sessions" "$@" >"$work/out" 2>&1; then fail "export $* succeeded"; fi
    grep -qF -- "$want" "$work/out" || fail "export $*: expected '$want', got: $(cat "$work/out")"
}
refuse "give at least one of --out FOLDER, --tensorboard DIR, --scalars FILE"
refuse "unknown extension '.txt'" --scalars "$work/s.txt"
refuse "give --out FOLDER" --merge --scalars "$work/s.csv"
echo keep >"$work/existing.csv"
refuse "already exists; choose another file or pass --force" --scalars "$work/existing.csv" --tensorboard "$work/tb-refused"
[ "$(cat "$work/existing.csv")" = keep ] || fail "an existing scalars file was changed"
[ ! -e "$work/tb-refused" ] || fail "a refused export wrote its TensorBoard folder"
"$Q" export "${ids[0]}" --sessions-dir "$sessions" --tensorboard "$work/tb-twice" 2>/dev/null
refuse "already holds an event file" --tensorboard "$work/tb-twice"
echo "check_report: export refusals OK"

# 5. TensorBoard and scalars, read back by TensorBoard's own readers.
if [ -n "$TB_PYTHON" ]; then
    for id in "${ids[@]}"; do
        "$Q" export "$id" --tensorboard "$work/tb" --scalars "$work/$id.csv" --sessions-dir "$sessions"
        "$Q" export "$id" --scalars "$work/$id.json" --sessions-dir "$sessions"
        "$TB_PYTHON" scripts/interop/check_tensorboard.py "$sessions/$id" "$work/tb" --scalars "$work/$id.csv" --min-points 100
        "$TB_PYTHON" scripts/interop/check_tensorboard.py "$sessions/$id" "$work/tb" --scalars "$work/$id.json" --min-points 100
    done
else
    echo "check_report: TB_PYTHON not set, TensorBoard read-back skipped"
fi
echo "check_report: OK"
