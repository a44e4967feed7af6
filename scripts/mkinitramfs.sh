#!/usr/bin/env bash
# Build the initramfs of the test VM.
#
#   scripts/mkinitramfs.sh base KVER MODDIR
#       Build (or reuse) the base image for kernel KVER, whose modules are in
#       MODDIR (= lib/modules/KVER with modules.dep, from scripts/kernel.sh),
#       and print its path: build/initramfs/base-KVER-<key>.cpio.gz, where
#       <key> hashes every input (this script, the guest /init, hostctl,
#       busybox, lspci and its libraries, pci.ids, the boot modules, and all
#       of build/bin, build/selftests, build/modules-KVER/*.ko). Older images of
#       the same kernel are removed.
#   scripts/mkinitramfs.sh run DIR OUT
#       Pack DIR (the per-run files: llmdev/vm.conf, llmdev/cmd) into the
#       uncompressed cpio OUT. scripts/vm.py appends it to the base image;
#       Linux unpacks concatenated cpio archives in order.
#
# Guest layout (see selftests/vm/init):
#   /bin,/sbin,/usr/bin,/usr/sbin  busybox applets; real lspci in /usr/bin;
#                        the operators' tools the tests run: sensors
#                        (lm-sensors, with /etc/sensors3.conf), perf
#                        (linux-perf) and devlink (iproute2), at their
#                        Debian paths
#   /llmdev/selftests/   = build/selftests/   (tests, run_tests.sh)
#   /llmdev/bin/         = build/bin/*, hostctl (on PATH)
#   /llmdev/modules/     = build/modules-KVER/*.ko (top level of that dir
#                          only; subdirectories may hold the module build
#                          tree): out-of-tree modules (the driver) built
#                          for exactly this kernel
#   /lib/modules/KVER/   the kernel modules the VM needs to boot
#                        (virtio_pci, virtio_blk; loop and ext4, with the crc32c
#                        it asks the crypto API for, for the tests that
#                        need a block device and a file system; when not
#                        built in), listed
#                        in load order in /llmdev/boot-modules; compressed
#                        ones (.ko.xz, .ko.zst, .ko.gz) are unpacked
#   /bin/udevadm, /lib/systemd/systemd-udevd and /lib/udev/rules.d/
#                        60-llmdev.rules: udevd applies the rule llmdev-dkms
#                        ships (group llmdev, 0660, /dev/llmdev/by-*)
#   /etc/passwd, /etc/group  root; nobody (65534) in the group llmdev;
#                        outsider (65533), not in it
#   shared libraries of every dynamic binary above, copied via ldd
#
# Files are root-owned (we run as root; no fakeroot needed).
set -euo pipefail
. "$(dirname "$0")/common.sh"

BUILD=$LLMDEV_TOP/build
OUTDIR=$BUILD/initramfs
HOSTCTL=$BUILD/bin/hostctl
BOOT_MODULES=(virtio_pci virtio_blk loop crc32c_generic ext4)
# host programs copied into the guest, with their shared libraries
EXTRA_BINS=(/usr/bin/sensors /usr/bin/perf /usr/sbin/devlink)
EXTRA_FILES=(/etc/sensors3.conf)
# libraries llmctl opens with dlopen() (tools/llmctl-dl.h): ldd cannot see them
DLOPEN_LIBS=(libkmod.so.2 libpci.so.3)

usage() {
	echo "usage: ${0##*/} base KVER MODDIR | run DIR OUT" >&2
	exit 1
}

pack() { # DIR OUT: newc cpio of DIR, root-owned, sorted (reproducible)
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) >"$2"
}

# hostctl is part of the image; (re)build it when its source changed.
build_hostctl() {
	local src=$LLMDEV_TOP/selftests/vm/hostctl.c
	if [ ! -x "$HOSTCTL" ] || [ "$src" -nt "$HOSTCTL" ]; then
		mkdir -p "$BUILD/bin"
		${CC:-gcc} -static -Wall -Wextra -Werror -O2 -o "$HOSTCTL.tmp" "$src"
		mv "$HOSTCTL.tmp" "$HOSTCTL"
	fi
}

# module_deps MODDIR NAME: relative paths of NAME's .ko and its dependencies,
# dependencies first; nothing if NAME is built in.
module_deps() {
	local dep=$1/modules.dep name=$2 line path d
	line=$(grep -E "/${name//_/[-_]}\.ko(\.[a-z]+)?:" "$dep" || true)
	[ -n "$line" ] || return 0
	path=${line%%:*}
	for d in ${line#*:}; do
		# each listed dependency's own dependencies are listed too, so
		# loading them in reverse order satisfies everything
		printf '%s\n' "$d"
	done | tac
	printf '%s\n' "$path"
}

# dyn_libs FILE...: the shared libraries (and loader) the dynamic ones need
dyn_libs() {
	local f
	for f in "$@"; do
		file_is_dynamic "$f" || continue
		ldd "$f" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}'
	done | sort -u
}

# dlopen_libs: DLOPEN_LIBS where the loader finds them, and what they need
dlopen_libs() {
	local l p
	for l in "${DLOPEN_LIBS[@]}"; do
		p=$(ldconfig -p | awk -v l="$l" '$1 == l && /x86-64/ { print $NF; exit }')
		[ -n "$p" ] || die "$l not found (run scripts/deps.sh)"
		printf '%s\n' "$p"
		ldd "$p" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}'
	done
}

file_is_dynamic() {
	[ -f "$1" ] && [ -x "$1" ] || return 1
	# ELF with a PT_INTERP; scripts and static binaries are not
	head -c 4 "$1" | grep -q 'ELF' || return 1
	LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'
}

cmd_base() {
	local kver=$1 moddir=$2 busybox lspci pciids init key old udevadm rules
	local -a mods payload libs
	[ -f "$moddir/modules.dep" ] || die "$moddir/modules.dep missing"
	busybox=$(command -v busybox) || die "busybox-static is not installed (run scripts/deps.sh)"
	busybox=$(readlink -f "$busybox")
	file_is_dynamic "$busybox" && die "$busybox is not static: install busybox-static"
	lspci=$(command -v lspci) || die "pciutils is not installed (run scripts/deps.sh)"
	pciids=/usr/share/misc/pci.ids
	[ -f "$pciids" ] || die "$pciids missing (pci.ids package)"
	init=$LLMDEV_TOP/selftests/vm/init
	for a in "${EXTRA_BINS[@]}" "${EXTRA_FILES[@]}"; do
		[ -e "$a" ] || die "$a missing (run scripts/deps.sh)"
	done
	udevadm=$(command -v udevadm) || die "udev is not installed (run scripts/deps.sh)"
	udevadm=$(readlink -f "$udevadm")
	rules=$LLMDEV_TOP/udev/60-llmdev.rules

	mkdir -p "$OUTDIR"
	exec 8>"$OUTDIR/.lock"
	flock 8
	build_hostctl

	mapfile -t mods < <(for m in "${BOOT_MODULES[@]}"; do module_deps "$moddir" "$m"; done |
		awk '!seen[$0]++')
	mapfile -t payload < <( (
		for d in "$BUILD/bin" "$BUILD/selftests"; do
			[ -d "$d" ] && find "$d" \( -type f -o -type l \) -print
		done
		[ -d "$BUILD/modules-$kver" ] &&
			find "$BUILD/modules-$kver" -maxdepth 1 -name '*.ko' -type f -print
		true) | LC_ALL=C sort)
	mapfile -t libs < <( (dyn_libs "$lspci" "$udevadm" "${EXTRA_BINS[@]}" "${payload[@]}"
		dlopen_libs) | sort -u)

	key=$( {
		echo "$kver"
		printf '%s\n' "${mods[@]}"
		sha256sum "$0" "$init" "$busybox" "$lspci" "$pciids" "$udevadm" "$rules" \
			"${EXTRA_BINS[@]}" "${EXTRA_FILES[@]}" \
			"${libs[@]/#/}" "${mods[@]/#/$moddir/}" "${payload[@]}" 2>/dev/null |
			sed "s|$BUILD/||"
	} | sha256sum | cut -c1-16)
	out=$OUTDIR/base-$kver-$key.cpio.gz
	if [ -f "$out" ]; then
		echo "$out"
		return 0
	fi

	log "building initramfs for $kver"
	STAGE=$(mktemp -d "$OUTDIR/stage.XXXXXX")
	trap 'rm -rf "$STAGE"' EXIT
	local r=$STAGE
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,mnt} \
		"$r"/llmdev/{bin,selftests,modules} "$r/usr/share/misc" "$r/lib/modules/$kver"
	chmod 1777 "$r/tmp"
	# busybox and a link for every applet, at its usual place
	cp "$busybox" "$r/bin/busybox"
	local a
	for a in $("$busybox" --list-full); do
		[ "$a" = linuxrc ] || [ -e "$r/$a" ] || ln -s /bin/busybox "$r/$a"
	done
	install -m 0755 "$init" "$r/init"
	# real lspci (replaces busybox's applet if it had one)
	rm -f "$r/usr/bin/lspci" "$r/bin/lspci"
	cp "$lspci" "$r/usr/bin/lspci"
	cp "$pciids" "$r/usr/share/misc/pci.ids"
	for a in "${EXTRA_BINS[@]}" "${EXTRA_FILES[@]}"; do
		mkdir -p "$r$(dirname "$a")"
		rm -f "$r$a"	# a busybox applet's link, if any
		cp -L "$a" "$r$a"
	done
	# udevd and the llmdev rule
	rm -f "$r/bin/udevadm"
	cp "$udevadm" "$r/bin/udevadm"
	mkdir -p "$r/lib/systemd" "$r/lib/udev/rules.d" "$r/etc/udev"
	ln -s /bin/udevadm "$r/lib/systemd/systemd-udevd"
	install -m 0644 "$rules" "$r/lib/udev/rules.d/60-llmdev.rules"
	for a in "${libs[@]}"; do
		mkdir -p "$r$(dirname "$a")"
		cp -L "$a" "$r$a"
	done
	# tools, tests, our modules
	[ -d "$BUILD/bin" ] && cp -a "$BUILD/bin/." "$r/llmdev/bin/"
	[ -d "$BUILD/selftests" ] && cp -a "$BUILD/selftests/." "$r/llmdev/selftests/"
	for a in "${payload[@]}"; do
		case $a in "$BUILD/modules-$kver/"*.ko) cp "$a" "$r/llmdev/modules/" ;; esac
	done
	# boot modules, in load order; compressed ones (trixie's are .ko.xz)
	# decompressed, for busybox's insmod
	: >"$r/llmdev/boot-modules"
	local ko
	for a in "${mods[@]}"; do
		ko=${a%.xz} ko=${ko%.zst} ko=${ko%.gz}
		mkdir -p "$r/lib/modules/$kver/$(dirname "$a")"
		case $a in
		*.xz) xz -dc "$moddir/$a" >"$r/lib/modules/$kver/$ko" ;;
		*.zst) zstd -q -dc "$moddir/$a" >"$r/lib/modules/$kver/$ko" ;;
		*.gz) gzip -dc "$moddir/$a" >"$r/lib/modules/$kver/$ko" ;;
		*) cp "$moddir/$a" "$r/lib/modules/$kver/$ko" ;;
		esac
		echo "/lib/modules/$kver/$ko" >>"$r/llmdev/boot-modules"
	done
	cat >"$r/etc/profile" <<'EOF'
export PATH=/llmdev/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LLMCTL_MODULE=/llmdev/modules/llmdev.ko
PS1='llmdev-vm:\w# '
[ -f /llmdev/vm.conf ] && { set -a; . /llmdev/vm.conf; set +a; }
EOF
	# nobody is the tests' unprivileged user, in the group llmdev, which the
	# udev rule gives the cards (990: a gid a system group might get);
	# outsider (65533, as selftests/lib's LLMDEV_OTHER_UID) is not in it
	printf '%s\n' "root:x:0:0:root:/root:/bin/sh" \
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false" \
		"outsider:x:65533:65533:not in llmdev:/nonexistent:/bin/false" >"$r/etc/passwd"
	printf '%s\n' "root:x:0:" "llmdev:x:990:nobody" "outsider:x:65533:" \
		"nogroup:x:65534:" >"$r/etc/group"

	pack "$r" "$out.tmp.cpio"
	gzip -n -6 <"$out.tmp.cpio" >"$out.tmp"
	rm -f "$out.tmp.cpio"
	mv "$out.tmp" "$out"
	for old in "$OUTDIR"/base-"$kver"-*.cpio.gz; do
		[ "$old" = "$out" ] || rm -f "$old"
	done
	log "initramfs: $out ($(du -h "$out" | cut -f1))"
	echo "$out"
}

cmd_run() {
	[ -d "$1" ] || die "$1 is not a directory"
	pack "$1" "$2"
}

[ $# -ge 1 ] || usage
case $1 in
base) [ $# -eq 3 ] || usage; cmd_base "$2" "$3" ;;
run) [ $# -eq 3 ] || usage; cmd_run "$2" "$3" ;;
*) usage ;;
esac
