#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run the llmdev selftests that sit next to this script and print KTAP:
#
#   KTAP version 1
#   1..N
#       <each test binary's own KTAP output, indented by 4 spaces>
#   ok 1 llmdev_enumerate            (exit 0)
#   ok 2 llmdev_registers # SKIP     (exit 4, kselftest "skip")
#   not ok 3 llmdev_aperture         (anything else)
#
# Order: the hardware tests in a fixed order, then any other test binaries
# in the directory (sorted), then the hot-unplug tests, which leave the VM
# with a card less. Exit status 0 iff every test is ok (or skipped); 2,
# before any output, when a TEST matches no test binary.
#
# usage: run_tests.sh [-l] [TEST...]
#   -l      list the tests in run order and exit
#   TEST    run only these (names or shell patterns, e.g. 'llmdev_d*')
#
# Written for busybox sh.

dir=$(cd "$(dirname "$0")" && pwd)

FIRST="llmdev_enumerate llmdev_registers llmdev_aperture llmdev_reset
       llmdev_fuzz llmdev_dma llmdev_scrub llmdev_perf"
UNPLUG_FIRST="llmdev_hotunplug"

is_test() {
	[ -f "$dir/$1" ] && [ -x "$dir/$1" ] && [ "$1" != run_tests.sh ] &&
		case "$1" in *.sh|*.conf|*.txt|*.o|*.so) return 1;; esac
}

in_list() {
	n=$1; shift
	for x in "$@"; do [ "$x" = "$n" ] && return 0; done
	return 1
}

all_tests() {
	for t in $FIRST; do is_test "$t" && echo "$t"; done
	for t in $(ls "$dir" | sort); do
		in_list "$t" $FIRST && continue
		case "$t" in *unplug*) continue;; esac
		is_test "$t" && echo "$t"
	done
	for t in $UNPLUG_FIRST; do is_test "$t" && echo "$t"; done
	for t in $(ls "$dir" | sort); do
		in_list "$t" $UNPLUG_FIRST && continue
		case "$t" in *unplug*) is_test "$t" && echo "$t";; esac
	done
}

list=0
if [ "$1" = "-l" ]; then list=1; shift; fi
case "$1" in -h|--help)
	sed -n '3,23s/^# \{0,1\}//p' "$0"; exit 0;;
esac

tests=""
for t in $(all_tests); do
	if [ $# -eq 0 ]; then
		tests="$tests $t"
		continue
	fi
	for pat in "$@"; do
		case "$t" in $pat) tests="$tests $t"; break;; esac
	done
done

# a name that matches nothing is a mistake, not an empty run
for pat in "$@"; do
	found=0
	for t in $(all_tests); do
		case "$t" in $pat) found=1; break;; esac
	done
	if [ $found -eq 0 ]; then
		echo "run_tests.sh: no test matches '$pat' (run_tests.sh -l lists them)" >&2
		exit 2
	fi
done

if [ $list -eq 1 ]; then
	for t in $tests; do echo "$t"; done
	exit 0
fi

set -- $tests
echo "KTAP version 1"
echo "1..$#"
[ $# -gt 0 ] || exit 0

# udevd applies udev/60-llmdev.rules (group, mode, links) a moment after a
# card's node appears (insmod, a rescan): let it finish before each test
settle() {
	[ -S /run/udev/control ] && udevadm settle --timeout=30 2>/dev/null
	return 0
}

rcfile="${TMPDIR:-/tmp}/llmdev-run-tests.$$"
i=0
failed=0
skipped=0
for t in "$@"; do
	i=$((i + 1))
	settle
	start=$(date +%s)
	# the binary's own output, indented; its exit status via a file, since
	# busybox sh has no PIPESTATUS
	( cd "$dir" && "./$t" 2>&1; echo $? >"$rcfile" ) |
		while IFS= read -r line || [ -n "$line" ]; do
			printf '    %s\n' "$line"
		done
	rc=$(cat "$rcfile" 2>/dev/null || echo 1)
	end=$(date +%s)
	echo "# $t: exit $rc in $((end - start)) s"
	case "$rc" in
	0) echo "ok $i $t";;
	4) echo "ok $i $t # SKIP"; skipped=$((skipped + 1));;
	*) echo "not ok $i $t"; failed=$((failed + 1));;
	esac
done
rm -f "$rcfile"
# a trailing diagnostic, so the last result line is never the last output
echo "# llmdev selftests: $((i - failed - skipped)) ok, $skipped skipped, $failed failed"
[ $failed -eq 0 ]
