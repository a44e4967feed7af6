#!/usr/bin/env bash
# Print the path of a sparse newer than Debian 12's 0.6.4, built (once) from
# the source package in sid: kernels from 6.15 or so need one that knows
# __typeof_unqual__ (their scripts/checker-valid.sh rejects 0.6.4, and C=1
# then checks nothing). The source comes through the private apt of
# scripts/suite-apt.sh (suite sid-src); the build is cached in
# $LLMDEV_CACHE/tools/sparse/<version>/. Logs go to stderr.
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$LLMDEV_TOP/scripts/suite-apt.sh"

suite_lock sid-src
suite_update sid-src || die "cannot read sid's source package lists (no network?)"
ver=$(suite_apt sid-src apt-cache showsrc sparse 2>/dev/null |
	awk '$1 == "Version:" { print $2 }' | sort -V | tail -n 1)
[ -n "$ver" ] || die "no source package sparse in sid"
dir=$LLMDEV_CACHE/tools/sparse/${ver//[:~+]/_}
if [ ! -x "$dir/sparse" ]; then
	log "building sparse $ver from sid's source package (log: $dir.log)"
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp/dl"
	(cd "$dir.tmp/dl" && suite_apt sid-src apt-get source --download-only "sparse=$ver") >&2 ||
		die "could not download the source of sparse $ver"
	dpkg-source --no-check -x "$dir.tmp"/dl/sparse_*.dsc "$dir.tmp/src" >"$dir.log" 2>&1 ||
		die "could not unpack sparse $ver (log: $dir.log)"
	# Debian's packaging names its own gcc; ours builds it
	make -C "$dir.tmp/src" -j"$(nproc)" CC=gcc sparse >>"$dir.log" 2>&1 ||
		die "building sparse $ver failed (log: $dir.log)"
	rm -rf "$dir"
	mkdir -p "$dir"
	install -m 0755 "$dir.tmp/src/sparse" "$dir/sparse"
	rm -rf "$dir.tmp"
fi
echo "$dir/sparse"
