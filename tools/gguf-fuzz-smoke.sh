#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# gguf_fuzz_smoke: run the GGUF reader's fuzzer (fuzz_gguf) briefly on
# seeds written by gguf-gen; installed as $(O)/host-tests/gguf_fuzz_smoke.
#
#   GGUF_FUZZ_SECONDS=30   how long to fuzz
#
# Prints TAP. Exit: 0 no crash, 1 a crash, leak or hang was found (the
# input is kept in $(O)/logs/gguf-fuzz/), 4 skipped (fuzzer not built).
set -u

here=$(cd "$(dirname "$0")" && pwd)
fuzzer=$here/../fuzz/fuzz_gguf
gen=$here/../bin/gguf-gen
secs=${GGUF_FUZZ_SECONDS:-30}
keep=$here/../logs/gguf-fuzz

if [ ! -x "$fuzzer" ]; then
	echo "1..0 # SKIP fuzz_gguf not built (needs clang and libclang-rt-14-dev; make -C tools fuzz)"
	exit 4
fi
if [ ! -x "$gen" ]; then
	echo "1..0 # SKIP gguf-gen not built"
	exit 4
fi

work=$(mktemp -d /tmp/gguf-fuzz.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/seeds" "$work/corpus"

echo "TAP version 13"
echo "1..1"
for t in f32 f16 q8_0 q4_0; do
	if ! "$gen" -o "$work/seeds/$t.gguf" --layers 1 --embd 32 --heads 2 \
		--heads-kv 1 --ff 32 --vocab 8 --type "$t" 2>"$work/gen.log"; then
		echo "not ok 1 fuzz gguf ${secs}s # gguf-gen failed"
		sed 's/^/# /' "$work/gen.log"
		exit 1
	fi
done
# the format's words, for the mutator
cat >"$work/gguf.dict" <<'EOF'
"GGUF"
"\x02\x00\x00\x00"
"\x03\x00\x00\x00"
"\xff\xff\xff\xff\xff\xff\xff\xff"
"general.alignment"
"general.architecture"
"tokenizer.ggml.tokens"
"blk.0.attn_q.weight"
EOF

"$fuzzer" -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=1024 \
	-print_final_stats=1 -dict="$work/gguf.dict" -artifact_prefix="$work/" \
	"$work/corpus" "$work/seeds" >"$work/fuzz.log" 2>&1
rc=$?

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log")
if [ $rc -eq 0 ]; then
	echo "ok 1 fuzz gguf ${secs}s"
	echo "# ${runs:-?} runs, ${rate:-?} exec/s, corpus $(ls "$work/corpus" | wc -l) inputs"
	exit 0
fi
mkdir -p "$keep"
cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$keep"/ 2>/dev/null
cp "$work/fuzz.log" "$keep/fuzz.log"
echo "not ok 1 fuzz gguf ${secs}s # fuzzer exit $rc; inputs and log in $keep"
grep -E 'ERROR|SUMMARY|fuzz_gguf:|#[0-9]+ in ' "$work/fuzz.log" | head -n 30 | sed 's/^/# /'
exit 1
