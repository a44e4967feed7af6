#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# gguf_fuzz_smoke: run the GGUF reader's fuzzer (fuzz_gguf) briefly on
# seeds written by gguf-gen; installed as $(O)/host-tests/gguf_fuzz_smoke.
#
#   GGUF_FUZZ_SECONDS=30   how long to fuzz
#
# The seeds are small models of each tensor type, one with a vocabulary
# large enough that its header spans two of the fuzz build's O_DIRECT
# chunks, each followed by each of the harness's O_DIRECT modes (the
# input's last byte, fuzz_gguf.c). First every seed runs once through the
# fuzzer binary (FUZZ_GGUF_REPORT=1): each must be accepted by the reader,
# and between them the reader must have refilled its buffer both through
# O_DIRECT and through the page cache; a fuzzer whose seeds the parser
# refuses (or truncates: -max_len) would only fuzz the error paths. Then
# the fuzzing itself.
#
# Prints TAP. Exit: 0 no crash, 1 a seed refused or a crash, leak or hang
# was found (the input is kept in $(O)/logs/gguf-fuzz/), 4 skipped (fuzzer
# not built).
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

# inputs up to this long (a seed longer than it would be cut by libFuzzer)
max_len=32768
echo "TAP version 13"
echo "1..2"
# type and vocabulary of each seed: the last one's header (~7 KiB) needs two
# O_DIRECT chunks of the fuzz build (4 KiB)
for s in f32:8 f16:8 q8_0:8 q4_0:8 q4_0:256; do
	t=${s%:*} v=${s#*:}
	if ! "$gen" -o "$work/$t-v$v.gguf" --layers 1 --embd 32 --heads 2 \
		--heads-kv 1 --ff 32 --vocab "$v" --type "$t" 2>"$work/gen.log"; then
		echo "not ok 1 seeds parse # gguf-gen failed"
		sed 's/^/# /' "$work/gen.log"
		echo "ok 2 fuzz gguf ${secs}s # SKIP no seeds"
		exit 1
	fi
	# the harness's O_DIRECT modes: refused, granted, reads refused
	for m in 0 1 2; do
		{ cat "$work/$t-v$v.gguf"; printf "\\$m"; } >"$work/seeds/$t-v$v-direct$m"
	done
	rm -f "$work/$t-v$v.gguf"
done

# each seed once: all must parse, the buffer refilled both ways
nseeds=$(ls "$work/seeds" | wc -l)
FUZZ_GGUF_REPORT=1 "$fuzzer" -rss_limit_mb=1024 "$work"/seeds/* >"$work/seeds.log" 2>&1
rc=$?
accepted=$(grep -c '^fuzz_gguf: accepted' "$work/seeds.log")
direct_refill=$(grep -c '^fuzz_gguf: accepted .*granted; [2-9][0-9]* O_DIRECT' "$work/seeds.log")
plain_refill=$(grep -c '^fuzz_gguf: accepted .*refused; 0 O_DIRECT and [2-9][0-9]* other' \
	"$work/seeds.log")
big=$(find "$work/seeds" -type f -size +"$max_len"c | wc -l)
why=
if [ $rc -ne 0 ]; then
	why="fuzz_gguf exit $rc on the seeds"
elif [ "$accepted" -ne "$nseeds" ]; then
	why="the reader accepted $accepted of $nseeds seeds"
elif [ "$direct_refill" -eq 0 ] || [ "$plain_refill" -eq 0 ]; then
	why="no seed refilled the reader's buffer ($direct_refill through O_DIRECT, $plain_refill through the page cache): built without its small chunks?"
elif [ "$big" -ne 0 ]; then
	why="$big seeds are longer than -max_len=$max_len"
fi
if [ -n "$why" ]; then
	echo "not ok 1 seeds parse # $why"
	grep -E '^fuzz_gguf:|ERROR|SUMMARY' "$work/seeds.log" | head -n 30 | sed 's/^/# /'
	echo "ok 2 fuzz gguf ${secs}s # SKIP test 1 failed"
	exit 1
fi
echo "ok 1 seeds parse"
echo "# $accepted of $nseeds seeds accepted; $direct_refill refilled through O_DIRECT, $plain_refill through the page cache"

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

"$fuzzer" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=1024 \
	-print_final_stats=1 -dict="$work/gguf.dict" -artifact_prefix="$work/" \
	"$work/corpus" "$work/seeds" >"$work/fuzz.log" 2>&1
rc=$?

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log")
if [ $rc -eq 0 ]; then
	echo "ok 2 fuzz gguf ${secs}s"
	echo "# ${runs:-?} runs, ${rate:-?} exec/s, corpus $(ls "$work/corpus" | wc -l) inputs"
	exit 0
fi
mkdir -p "$keep"
cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$keep"/ 2>/dev/null
cp "$work/fuzz.log" "$keep/fuzz.log"
echo "not ok 2 fuzz gguf ${secs}s # fuzzer exit $rc; inputs and log in $keep"
grep -E 'ERROR|SUMMARY|fuzz_gguf:|#[0-9]+ in ' "$work/fuzz.log" | head -n 30 | sed 's/^/# /'
exit 1
