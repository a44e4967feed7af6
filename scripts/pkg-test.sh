#!/usr/bin/env bash
# The Debian packages of `make deb`, installed and used (KTAP on stdout):
#
#   chroot  a Debian 12 chroot (debootstrap minbase, with dkms and the
#           headers of the guest kernel; cached as a tarball): dpkg -i of
#           llmdev-dkms, libllmdev1, libllmdev-dev and llmctl. llmdev-dkms's
#           postinst must create the group llmdev and build and install
#           llmdev.ko with DKMS for that kernel; a program built with
#           `pkg-config llmdev` against libllmdev-dev runs; llmctl runs.
#   VM      the installed files over the guest's image (the Debian kernel,
#           4 cards): /usr/bin/llmctl, libllmdev.so.1, the DKMS-built
#           llmdev.ko (with modules.dep) and the package's udev rule. The
#           installed llmctl loads the driver by name, a member of llmdev
#           (nobody, via su) lists the cards and loads a model with
#           --verify; a user outside the group cannot open a card.
#
#   scripts/pkg-test.sh [DEB_DIR]      (default build/deb, from scripts/deb.sh)
#
# Runs as root (debootstrap, chroot). The chroot's mounts live in a private
# mount namespace (unshare -m): nothing stays mounted. Logs in
# build/pkgtest/. Exit 0 iff every test passed.
set -uo pipefail
. "$(dirname "$0")/common.sh"

DEBS=${1:-$LLMDEV_TOP/build/deb}
OUT=$LLMDEV_TOP/build/pkgtest
R=$OUT/root
MIRROR=${LLMDEV_APT_MIRROR:-http://deb.debian.org/debian}
SECURITY=${LLMDEV_APT_SECURITY:-http://deb.debian.org/debian-security}
# what the chroot has before our packages: their dependencies and DKMS's
BASE_PKGS=(dkms adduser libnl-3-200 libnl-genl-3-200 libpci3 libkmod2 libjson-c5 pkgconf libc6-dev)
BASE_VERSION=1	# bump when the chroot's recipe changes

N=0 FAILED=0
result() { # OK NAME [WHY]
	N=$((N + 1))
	if [ "$1" = 1 ]; then
		echo "ok $N $2"
	else
		echo "not ok $N $2${3:+: $3}"
		FAILED=$((FAILED + 1))
	fi
}

in_chroot() { # CMD...: run in the chroot, /proc and /dev mounted privately
	unshare -m --propagation private sh -c '
		r=$1; shift
		mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" &&
		exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"' \
		sh "$R" "$@"
}

# base_tarball KVER: the cached chroot with BASE_PKGS and KVER's headers
base_tarball() {
	local kver=$1 key tar tmp
	key=$(printf '%s\n' "$BASE_VERSION" "$kver" "${BASE_PKGS[@]}" "$MIRROR" |
		sha256sum | cut -c1-16)
	tar=$LLMDEV_CACHE/chroot/bookworm-$kver-$key.tar.zst
	if [ ! -f "$tar" ]; then
		mkdir -p "$LLMDEV_CACHE/chroot"
		exec 6>"$LLMDEV_CACHE/chroot/.lock"
		flock 6
		if [ ! -f "$tar" ]; then
			log "making the Debian 12 chroot (debootstrap; log: ${OUT#"$LLMDEV_TOP"/}/chroot.log)"
			tmp=$OUT/base
			rm -rf "$tmp"
			debootstrap --variant=minbase bookworm "$tmp" "$MIRROR" \
				>>"$OUT/chroot.log" 2>&1 || { log "debootstrap failed"; return 1; }
			cat >"$tmp/etc/apt/sources.list" <<-EOF
			deb $MIRROR bookworm main
			deb $MIRROR bookworm-updates main
			deb $SECURITY bookworm-security main
			EOF
			printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
			chmod 755 "$tmp/usr/sbin/policy-rc.d"
			R=$tmp in_chroot sh -c "apt-get update && apt-get install -y --no-install-recommends ${BASE_PKGS[*]} linux-headers-$kver && apt-get clean" \
				>>"$OUT/chroot.log" 2>&1 || { log "installing into the chroot failed"; return 1; }
			tar -C "$tmp" -cf - . | zstd -q -T0 -o "$tar.tmp" && mv "$tar.tmp" "$tar"
			rm -rf "$tmp"
		fi
		exec 6>&-
	fi
	echo "$tar"
}

rm -rf "$OUT"
mkdir -p "$OUT"
echo "KTAP version 1"
echo "1..2"
[ "$(id -u)" = 0 ] || { echo "ok 1 chroot # SKIP needs root"; echo "ok 2 VM # SKIP needs root"; exit 0; }
for p in llmdev-dkms libllmdev1 libllmdev-dev llmctl; do
	ls "$DEBS"/"$p"_*.deb >/dev/null 2>&1 || {
		echo "# no $p package in $DEBS (run scripts/deb.sh)"
		echo "not ok 1 chroot: packages missing"; echo "not ok 2 VM: packages missing"
		exit 1
	}
done
eval "$("$LLMDEV_TOP/scripts/kernel.sh" debian)"

# ---- 1: the chroot ----------------------------------------------------------
t0=$SECONDS
why=
log=$OUT/install.log
if ! tar=$(base_tarball "$KVER"); then
	why="no chroot (see ${OUT#"$LLMDEV_TOP"/}/chroot.log)"
	tail -n 10 "$OUT/chroot.log" | sed 's/^/# /'
else
	mkdir -p "$R"
	zstd -q -dc "$tar" | tar -C "$R" -xf -
	mkdir -p "$R/tmp/debs"
	cp "$DEBS"/{llmdev-dkms,libllmdev1,libllmdev-dev,llmctl}_*.deb "$R/tmp/debs/"
	# a program of a user of libllmdev-dev (both uapi headers included)
	cat >"$R/tmp/count.c" <<-'EOF'
	#include <stdio.h>
	#include <llmdev.h>
	#include <llmdev-netlink.h>
	int main(void)
	{
		int n = llmdev_count();

		printf("llmdev_count: %d (netlink family %s)\n", n, LLMDEV_GENL_NAME);
		return n < 0;
	}
	EOF
	if ! in_chroot sh -c 'dpkg -i /tmp/debs/*.deb' >"$log" 2>&1; then
		why="dpkg -i failed"
	fi
	{
		echo "== dkms status"; in_chroot dkms status
		echo "== getent group llmdev"; in_chroot getent group llmdev
	} >>"$log" 2>&1
	ko=$(find "$R/lib/modules/$KVER/updates/dkms" -name 'llmdev.ko*' 2>/dev/null | head -n 1)
	if [ -z "$why" ] && [ -z "$ko" ]; then
		why="llmdev-dkms installed no llmdev.ko for $KVER"
	elif [ -z "$why" ] && [ "$(modinfo -F vermagic "$ko" | cut -d' ' -f1)" != "$KVER" ]; then
		why="the DKMS-built module's vermagic is not $KVER"
	elif [ -z "$why" ] && ! in_chroot dkms status -m llmdev -k "$KVER" 2>/dev/null | grep -q installed; then
		why="dkms status does not say installed"
	elif [ -z "$why" ] && ! in_chroot getent group llmdev >/dev/null; then
		why="no group llmdev"
	elif [ -z "$why" ] && [ ! -f "$R/lib/udev/rules.d/60-llmdev.rules" ]; then
		why="no /lib/udev/rules.d/60-llmdev.rules"
	elif [ -z "$why" ] && ! in_chroot sh -c 'cd /tmp && gcc -Wall -Werror -o count count.c $(pkg-config --cflags --libs llmdev) && ./count' >>"$log" 2>&1; then
		why="a program built with pkg-config llmdev failed"
	elif [ -z "$why" ] && ! in_chroot llmctl --help >>"$log" 2>&1; then
		why="llmctl --help failed"
	elif [ -z "$why" ] && ! in_chroot ldd /usr/bin/llmctl 2>&1 | grep -qE 'libllmdev.so.1 => (/usr)?/lib/x86_64-linux-gnu/libllmdev.so.1'; then
		why="llmctl does not use the packaged libllmdev.so.1"
	fi
	grep -E 'Building for|Installing to|llmdev_count|^llmdev' "$log" | sed 's/^/# /'
fi
if [ -z "$why" ]; then
	result 1 "chroot: dpkg -i of the 4 packages: DKMS built llmdev.ko for $KVER, group llmdev, pkg-config llmdev, llmctl ($((SECONDS - t0)) s)"
else
	tail -n 15 "$log" 2>/dev/null | sed 's/^/# /'
	result 0 "chroot: the packages installed and used" "$why"
fi

# ---- 2: the installed files in the VM ---------------------------------------
if [ -n "$why" ]; then
	echo "ok 2 VM # SKIP the chroot test failed"
	N=2
	exit 1
fi
ov=$OUT/overlay
mkdir -p "$ov/usr/bin" "$ov/usr/lib/x86_64-linux-gnu" "$ov/lib/udev/rules.d" \
	"$ov/lib/modules/$KVER/updates/dkms"
cp -a "$R/usr/bin/llmctl" "$ov/usr/bin/"
cp -a "$R"/usr/lib/x86_64-linux-gnu/libllmdev.so.1* "$ov/usr/lib/x86_64-linux-gnu/"
cp -a "$R/lib/udev/rules.d/60-llmdev.rules" "$ov/lib/udev/rules.d/"
cp -a "$ko" "$ov/lib/modules/$KVER/updates/dkms/"
depmod -b "$ov" "$KVER" 2>/dev/null

# the guest's side: KTAP, one line per step
read -r -d '' GUEST <<'EOF'
unset LLMCTL_MODULE	# by name, through modules.dep, as on a host
n=0 fail=0
t() {
	n=$((n + 1)); name=$1; shift
	"$@" >/tmp/out 2>&1; rc=$?
	sed 's/^/    # /' /tmp/out
	if [ $rc -eq 0 ]; then echo "    ok $n $name"; else echo "    not ok $n $name # exit $rc"; fail=1; fi
}
# nobody is in the group llmdev (the guest's /etc/group); outsider is not
member() { su -s /bin/sh nobody -c "$*"; }
echo "KTAP version 1"; echo "1..1"; echo "    1..8"
t "llmctl uses the packaged libllmdev.so.1" sh -c \
	'LD_TRACE_LOADED_OBJECTS=1 /usr/bin/llmctl | grep "libllmdev.so.1 => /usr/lib/x86_64-linux-gnu/libllmdev.so.1"'
t "llmctl driver load: the DKMS-built module, by name" /usr/bin/llmctl driver load
udevadm settle
t "nodes root:llmdev 0660 (the package's rule)" sh -c \
	'ls -l /dev/llmdev[0-9]*; [ -z "$(find /dev -maxdepth 1 -name "llmdev[0-9]*" ! -perm 0660)" ] && [ -z "$(find /dev -maxdepth 1 -name "llmdev[0-9]*" ! -group llmdev)" ]'
t "by-serial and by-path links" sh -c \
	'ls -l /dev/llmdev/by-serial /dev/llmdev/by-path; [ $(ls /dev/llmdev/by-serial | wc -l) -eq $CARDS ] && [ $(ls /dev/llmdev/by-path | wc -l) -eq $CARDS ]'
t "llmctl list as a member of llmdev" member 'id; /usr/bin/llmctl list'
t "llmctl -j list: every card" sh -c \
	'su -s /bin/sh nobody -c "/usr/bin/llmctl -j list" >/tmp/list.json && cat /tmp/list.json && [ $(grep -o "\"device_node\"" /tmp/list.json | wc -l) -eq $CARDS ]'
t "llmctl load --verify as a member of llmdev" sh -c \
	'gguf-gen -o /tmp/m.gguf --layers 4 --embd 256 --heads 4 --ff 512 --vocab 1024 --type q8_0 && chmod 644 /tmp/m.gguf && su -s /bin/sh nobody -c "/usr/bin/llmctl load /tmp/m.gguf --tp 2 --pp 2 --verify </dev/null"'
t "a user outside llmdev cannot open a card" sh -c \
	'out=$(su -s /bin/sh outsider -c "/usr/bin/llmctl info 0" 2>&1); echo "$out"; case $out in *"ermission denied"*) ;; *) exit 1 ;; esac'
if [ $fail -eq 0 ]; then echo "ok 1 installed packages"; else echo "not ok 1 installed packages"; fi
exit $fail
EOF
t0=$SECONDS
python3 "$LLMDEV_TOP/scripts/vm.py" --kernel debian --cards 4 --timeout 600 --quiet \
	--overlay "$ov" --log "$OUT/vm.log" --ktap --counts "$OUT/vm.counts" \
	--cmd "$GUEST" </dev/null >"$OUT/vm.summary" 2>&1
rc=$?
grep -E '^    (not )?ok|^    # (llmdev|uid|Loaded|[0-9])' "$OUT/vm.log" | head -n 40 | sed 's/^    /# /'
read -r p f s <"$OUT/vm.counts" 2>/dev/null || { p=0 f=1; }
if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ] && [ "$p" -gt 0 ]; then
	result 1 "VM: installed llmctl, libllmdev1, DKMS-built llmdev.ko and udev rule: $p steps passed ($((SECONDS - t0)) s)"
else
	tail -n 20 "$OUT/vm.summary" | sed 's/^/# /'
	result 0 "VM: installed packages" "$f of $((p + f)) steps failed, vm.py exit $rc (log: ${OUT#"$LLMDEV_TOP"/}/vm.log)"
fi
[ $FAILED -eq 0 ]
