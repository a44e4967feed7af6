#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR MIT)
# Host test (KTAP): every function libllmdev exports (llmdev.map) has a
# man3 page made from its kernel-doc comment (make -C lib man), and every
# page renders without a groff warning. Run from build/host-tests.
here=$(cd "$(dirname "$0")" && pwd)
man3=$here/../lib/man3
map=$here/../lib/llmdev.map
echo "TAP version 13"
if [ ! -f "$map" ] || [ ! -d "$man3" ]; then
	echo "1..0 # SKIP $map or $man3 missing (make -C lib man)"
	exit 4
fi
syms=$(grep -Eo '^[[:space:]]+llmdev_[a-z0-9_]+;' "$map" | tr -d ' \t;' | sort -u)
n=0
for s in $syms; do n=$((n + 1)); done
echo "1..$((n + 1))"
i=0 fail=0
for s in $syms; do
	i=$((i + 1))
	if [ -f "$man3/$s.3" ] && grep -q "^$s \\\\-" "$man3/$s.3"; then
		echo "ok $i $s.3"
	else
		echo "not ok $i $s.3 # no page, or no NAME line"
		fail=1
	fi
done
i=$((i + 1))
if command -v man >/dev/null 2>&1; then
	out=$(for p in "$man3"/*.3; do MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null; done)
	if [ -z "$out" ]; then
		echo "ok $i every page renders without warnings"
	else
		echo "$out" | sed 's/^/# /'
		echo "not ok $i groff warnings"
		fail=1
	fi
else
	echo "ok $i # SKIP man is not installed"
fi
exit $fail
