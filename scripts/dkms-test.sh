#!/usr/bin/env bash
# DKMS, for real: `dkms add`, `build` and `install` of this tree (dkms.conf,
# the source llmdev-dkms ships) against a kernel that is not the running
# one, then the same with a deliberately broken copy, which must fail loudly.
#
#   scripts/dkms-test.sh [SUITE]      (default trixie: its newest kernel)
#
# The build tree is scripts/kheaders.sh's. DKMS keeps its state in private
# trees (--dkmstree, --sourcetree, --installtree under build/dkms/), so
# /var/lib/dkms and /lib/modules are not touched; depmod runs on the private
# install tree. The built module must carry the kernel's vermagic.
# Output: KTAP, two results; logs in build/dkms/. Exit 0 iff both pass.
set -uo pipefail
. "$(dirname "$0")/common.sh"

suite=${1:-trixie}
OUT=$LLMDEV_TOP/build/dkms
rm -rf "$OUT"
mkdir -p "$OUT"
command -v dkms >/dev/null || { echo "dkms-test.sh: dkms is not installed (run scripts/deps.sh)" >&2; exit 2; }

echo "KTAP version 1"
echo "1..2"
if ! kv=$("$LLMDEV_TOP/scripts/kheaders.sh" "$suite" 2>"$OUT/kheaders.log"); then
	tail -n 5 "$OUT/kheaders.log" | sed 's/^/# /'
	echo "ok 1 dkms install # SKIP no $suite build tree"
	echo "ok 2 dkms build of a broken tree fails # SKIP no $suite build tree"
	exit 0
fi
eval "$kv"
echo "# kernel $KVER ($suite $KVERSION), running: $(uname -r)"

# dkms_run NAME ARGS...: dkms with the private trees of case NAME
dkms_run() {
	local d=$OUT/$1
	shift
	dkms "$@" --dkmstree "$d/dkms" --sourcetree "$d/source" \
		--installtree "$d/root/lib/modules"
}

# setup NAME: private trees and the staged source of case NAME; prints
# the version
setup() {
	local d=$OUT/$1 ver
	mkdir -p "$d/dkms" "$d/source" "$d/root/lib/modules/$KVER"
	ver=$("$LLMDEV_TOP/scripts/dkms-src.sh" "$d/stage/llmdev") || return 1
	mv "$d/stage/llmdev" "$d/stage/llmdev-$ver"
	echo "$ver"
}

fails=0

# 1: add, build, install; the module is where it belongs, for $KVER
t0=$SECONDS
ok=1 why=
if ! ver=$(setup good); then
	ok=0 why="staging the source failed"
fi
log=$OUT/good.log
if [ $ok = 1 ]; then
	{
		dkms_run good add "$OUT/good/stage/llmdev-$ver" &&
		dkms_run good build -m llmdev -v "$ver" -k "$KVER" --kernelsourcedir "$KDIR" &&
		dkms_run good install --no-depmod -m llmdev -v "$ver" -k "$KVER" \
			--kernelsourcedir "$KDIR"
	} >"$log" 2>&1 || { ok=0 why="dkms failed (exit $?)"; }
fi
if [ $ok = 1 ]; then
	ko=$(find "$OUT/good/root/lib/modules/$KVER" -name 'llmdev.ko*' | head -n 1)
	if [ -z "$ko" ]; then
		ok=0 why="dkms install put no llmdev.ko under the install tree"
	elif ! depmod -b "$OUT/good/root" "$KVER" 2>>"$log"; then
		ok=0 why="depmod of the install tree failed"
	else
		vm=$(modinfo -F vermagic "$ko" | cut -d' ' -f1)
		[ "$vm" = "$KVER" ] || { ok=0 why="vermagic $vm, want $KVER"; }
		grep -q 'llmdev.ko' "$OUT/good/root/lib/modules/$KVER/modules.dep" ||
			{ ok=0 why="llmdev.ko is not in modules.dep"; }
		st=$(dkms_run good status -m llmdev -v "$ver" -k "$KVER" 2>/dev/null)
		case $st in *installed*) ;; *) ok=0 why="dkms status says: $st" ;; esac
	fi
fi
if [ $ok = 1 ]; then
	echo "# installed ${ko#"$OUT"/good/root}: vermagic $vm; $st"
	echo "ok 1 dkms add/build/install llmdev $ver for $KVER ($((SECONDS - t0)) s)"
else
	grep -vE 'readelf: Warning' "$log" | tail -n 15 | sed 's/^/# /'
	echo "# log: ${log#"$LLMDEV_TOP"/}"
	echo "not ok 1 dkms add/build/install llmdev for $KVER: $why"
	fails=$((fails + 1))
fi

# 2: a tree that does not build: dkms build must fail, and say why
t0=$SECONDS
ok=1 why=
log=$OUT/broken.log
if ! ver=$(setup broken); then
	ok=0 why="staging the source failed"
else
	echo '#error "llmdev: deliberately broken by scripts/dkms-test.sh"' \
		>>"$OUT/broken/stage/llmdev-$ver/driver/llmdev_pci.c"
	{
		dkms_run broken add "$OUT/broken/stage/llmdev-$ver" &&
		dkms_run broken build -m llmdev -v "$ver" -k "$KVER" --kernelsourcedir "$KDIR"
	} >"$log" 2>&1
	rc=$?
	mk=$(find "$OUT/broken/dkms" -name make.log | head -n 1)
	if [ $rc -eq 0 ]; then
		ok=0 why="dkms build succeeded"
	elif ! grep -q 'Error!' "$log"; then
		ok=0 why="dkms failed (exit $rc) without an error message"
	elif [ -z "$mk" ] || ! grep -q 'deliberately broken' "$mk"; then
		ok=0 why="dkms failed (exit $rc), but its make.log does not show the compiler's error"
	elif [ -n "$(find "$OUT/broken/root" -name 'llmdev.ko*')" ]; then
		ok=0 why="a module was installed anyway"
	fi
fi
if [ $ok = 1 ]; then
	grep -m1 'Error!' "$log" | sed 's/^/# dkms: /'
	grep -m1 'deliberately broken' "$mk" | sed 's/^/# make.log: /'
	echo "ok 2 dkms build of a broken tree fails (exit $rc, $((SECONDS - t0)) s)"
else
	tail -n 15 "$log" | sed 's/^/# /'
	echo "not ok 2 dkms build of a broken tree fails: $why"
	fails=$((fails + 1))
fi
[ $fails -eq 0 ]
