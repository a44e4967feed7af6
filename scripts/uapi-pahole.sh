#!/usr/bin/env bash
# The uapi structs have no implicit padding: no hole between fields and no
# padding at the end, as pahole sees them in a build with debug info. A
# hole would be kernel memory copied to userspace uninitialised, and a
# layout that differs between compilers or architectures.
#
#   uapi-pahole.sh [UAPI_DIR]     prints KTAP, one test per struct
#
# Exit 0 when every struct is clean, 1 otherwise, 4 (skip) without pahole.
set -uo pipefail
uapi=${1:-@UAPI@}
[ -d "$uapi" ] || uapi=$(cd "$(dirname "$0")/../uapi" && pwd)

if ! command -v pahole >/dev/null; then
	echo "KTAP version 1"
	echo "1..0 # SKIP pahole (Debian: dwarves) is not installed"
	exit 4
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mapfile -t structs < <(sed -n 's/^struct \([a-z0-9_]*\) {.*/\1/p' \
	"$uapi"/llmdev.h "$uapi"/llmdev_netlink.h)
{
	echo '#include <linux/types.h>'
	echo '#include "llmdev.h"'
	echo '#include "llmdev_netlink.h"'
	for s in "${structs[@]}"; do
		echo "struct $s v_$s;"
	done
} >"$tmp/uapi.c"
if ! cc -g -c -I "$uapi" -o "$tmp/uapi.o" "$tmp/uapi.c" 2>"$tmp/cc.log"; then
	echo "KTAP version 1"
	echo "1..1"
	sed 's/^/# /' "$tmp/cc.log"
	echo "not ok 1 the uapi headers compile"
	exit 1
fi

echo "KTAP version 1"
echo "1..${#structs[@]}"
i=0 bad=0
for s in "${structs[@]}"; do
	i=$((i + 1))
	out=$(pahole -C "$s" "$tmp/uapi.o" 2>&1)
	if [ -z "$out" ]; then
		echo "not ok $i $s # pahole printed nothing"
		bad=1
	# pahole marks a hole as /* XXX N bytes hole */ and tail padding
	# as /* padding: N */
	elif grep -Eq 'XXX|padding:|hole' <<<"$out"; then
		sed 's/^/# /' <<<"$out"
		echo "not ok $i $s has implicit padding"
		bad=1
	else
		echo "ok $i $s"
	fi
done
exit $bad
