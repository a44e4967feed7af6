#!/usr/bin/env bash
# `make compat`: build llmdev.ko with W=1 and sparse against the newest
# kernel of each Debian suite and say, per kernel, clean / warnings / errors.
#
#   scripts/compat.sh [SUITE...]     (default: bullseye bookworm trixie sid)
#
# The build trees come from scripts/kheaders.sh (the suite's linux-headers
# packages through a private apt configuration, or its linux-source prepared
# with the package's .config where the packaged kbuild tools cannot run
# here). Each build is a fresh copy of Kbuild, driver/ and uapi/ in
# build/compat/<suite>/, with its full log beside it.
#
# Output (stdout) is KTAP, one test per kernel, for scripts/check.sh:
#   ok 2 bookworm 6.1.0-57-amd64: clean
#   not ok 4 sid 7.2.13+deb14-amd64: 2 errors, 1 warning
#   # driver/llmdev_pci.c:174:52: error: 'PCI_IRQ_LEGACY' undeclared ...
# then a table of every kernel. A kernel whose build tree cannot be had
# (no network and nothing cached) is a SKIP with the reason. Exit status:
# 0 when every kernel built cleanly (or was skipped), 1 otherwise.
#
# A result is reused while nothing it depends on changed (the sources, the
# kernel package version, this script, gcc and sparse): then a run takes
# seconds.
set -uo pipefail
. "$(dirname "$0")/common.sh"

SUITES=("$@")
[ ${#SUITES[@]} -gt 0 ] || SUITES=(bullseye bookworm trixie sid)
OUT=$LLMDEV_TOP/build/compat
MAX_DIAG=${COMPAT_MAX_DIAG:-25}	# diagnostic lines shown per kernel
self=$LLMDEV_TOP/scripts/compat.sh

mkdir -p "$OUT"
command -v sparse >/dev/null ||
	log "sparse is not installed: building without it (run scripts/deps.sh)"
tools_id=$( { gcc --version | head -n 1; sparse --version 2>/dev/null; } | tr '\n' ' ')
src_files=("$LLMDEV_TOP/Kbuild" "$self")
mapfile -t -O 2 src_files < <(find "$LLMDEV_TOP/driver" "$LLMDEV_TOP/uapi" -type f | LC_ALL=C sort)

# diagnostics LOG: the compiler's, sparse's and modpost's complaints
diagnostics() {
	grep -E '(warning|error|WARNING|ERROR)(:| \[)|undefined!' "$1" |
		grep -vE '^make(\[[0-9]+\])?: \*\*\* ' || true
}

# build SUITE N: one KTAP result line (plus comments) for SUITE
build() {
	local suite=$1 n=$2 d=$OUT/$1 kv rc key t0 cc=() want nerr nwarn res detail checker
	local KVER= KVERSION= KDIR= KPREP= KKEY=
	mkdir -p "$d"
	if ! kv=$("$LLMDEV_TOP/scripts/kheaders.sh" "$suite" 2>"$d/kheaders.log"); then
		sed 's/^/# /' "$d/kheaders.log" | tail -n 8
		echo "ok $n $suite # SKIP no build tree: $(grep -m1 'error:' "$d/kheaders.log" | sed 's/^[^:]*: error: //')"
		ROWS+=("$(printf '%-9s %-24s %-13s %-8s %s' "$suite" '-' '-' '-' 'skipped (no build tree)')")
		return 0
	fi
	eval "$kv"
	# Debian's headers name their compiler (gcc-10 for bullseye); without
	# it, the default gcc builds (kbuild warns of a different compiler only
	# where one is named in the command line and differs)
	if [ "$KPREP" = headers ] && [ -f "$KDIR/.kernelvariables" ]; then
		want=$(sed -n -E 's/^CC = .*\)(gcc-[0-9]+)$/\1/p' "$KDIR/.kernelvariables")
		[ -n "$want" ] && ! command -v "$want" >/dev/null && cc=(CC=gcc)
	fi
	read -r -a checker <<<"$(checker_args "$KDIR" 2>>"$d/kheaders.log")"
	key=$( {
		printf '%s\n' "$KVER" "$KVERSION" "$KPREP" "$KDIR" "$KKEY" "$tools_id" \
			"${cc[*]}" "${checker[*]}"
		hash_files "${src_files[@]}"
	} | sha256sum | cut -c1-16)
	if [ -f "$d/result" ] && [ "$(cat "$d/key" 2>/dev/null)" = "$key" ]; then
		res=$(cat "$d/result")
		echo "# $suite: unchanged since the last build ($(date -r "$d/result" '+%F %R')), result reused"
	else
		rm -rf "$d/src" "$d/result" "$d/key"
		mkdir -p "$d/src"
		cp -a "$LLMDEV_TOP/Kbuild" "$LLMDEV_TOP/driver" "$LLMDEV_TOP/uapi" "$d/src/"
		find "$d/src" \( -name '*.o' -o -name '*.ko' -o -name '.*.cmd' -o -name '*.mod*' \) -delete
		t0=$SECONDS
		make -k -C "$KDIR" M="$d/src" W=1 "${checker[@]}" "${cc[@]}" -j"$(nproc)" modules \
			>"$d/build.log" 2>&1
		rc=$?
		diagnostics "$d/build.log" >"$d/diagnostics"
		nerr=$(grep -cE '(error|ERROR)(:| \[)|undefined!' "$d/diagnostics")
		nwarn=$(($(grep -c . "$d/diagnostics") - nerr))
		if [ "$rc" -ne 0 ] && [ "$nerr" -eq 0 ]; then
			nerr=1	# failed without saying why: the log's tail tells
			tail -n 5 "$d/build.log" >>"$d/diagnostics"
		fi
		res="$nerr $nwarn $((SECONDS - t0)) ${cc[*]:-}"
		echo "$res" >"$d/result"
		echo "$key" >"$d/key"
	fi
	read -r nerr nwarn secs _ <<<"$res"
	detail="$KVERSION, $( [ "$KPREP" = source ] && echo 'linux-source prepared' || echo 'headers'), ${secs} s${cc:+, gcc $(gcc -dumpversion) for ${want:-?}}"
	case "${checker[*]}" in
	*CHECK=*) detail+=", sid's sparse $(basename "$(dirname "${checker[1]#CHECK=}")")" ;;
	C=1) ;;
	*) detail+=", without sparse" ;;
	esac
	if [ "$nerr" -eq 0 ] && [ "$nwarn" -eq 0 ]; then
		echo "ok $n $suite $KVER: clean ($detail)"
		ROWS+=("$(printf '%-9s %-24s %-13s %-8s %s' "$suite" "$KVER" "$KVERSION" "$KPREP" clean)")
		return 0
	fi
	echo "not ok $n $suite $KVER: $nerr error(s), $nwarn warning(s) ($detail)"
	sed -e "s|$d/src/||g" -e 's/^/# /' "$d/diagnostics" | head -n "$MAX_DIAG"
	[ "$(wc -l <"$d/diagnostics")" -le "$MAX_DIAG" ] ||
		echo "# ... $(($(wc -l <"$d/diagnostics") - MAX_DIAG)) more"
	echo "# full log: ${d#"$LLMDEV_TOP"/}/build.log"
	ROWS+=("$(printf '%-9s %-24s %-13s %-8s %s' "$suite" "$KVER" "$KVERSION" "$KPREP" \
		"$nerr error(s), $nwarn warning(s)")")
	FAILED=1
}

ROWS=()
FAILED=0
echo "KTAP version 1"
echo "1..${#SUITES[@]}"
i=0
for s in "${SUITES[@]}"; do
	i=$((i + 1))
	build "$s" "$i"
done
echo "#"
echo "# $(printf '%-9s %-24s %-13s %-8s %s' suite kernel package tree result)"
printf '# %s\n' "${ROWS[@]}"
exit $FAILED
