#!/usr/bin/env bash
# Provide a guest kernel and print, on stdout, shell assignments for it:
#   KVER=    kernel release (what `uname -r` says in the guest)
#   KIMAGE=  bootable bzImage
#   KDIR=    build dir for out-of-tree modules (make -C $KDIR M=...)
#   MODDIR=  lib/modules/$KVER holding the kernel's modules (with modules.dep)
# Usage: eval "$(scripts/kernel.sh debian|debug|trixie|sid)"
#
#   debian  Debian 12's own kernel matching the installed linux-headers-amd64,
#           unpacked (not installed) from the linux-image package.
#   debug   linux-source-6.1 built with scripts/debug-kernel.config
#           (KASAN, lockdep, kmemleak, fault injection, ...).
#   trixie, sid
#           the newest kernel of Debian 13 (6.12) or unstable, unpacked from
#           its linux-image package fetched with a private apt configuration
#           (scripts/suite-apt.sh); KDIR is the build tree scripts/kheaders.sh
#           provides for exactly that package version.
#
# Everything is cached under $LLMDEV_CACHE/kernel, keyed by the inputs;
# all logging goes to stderr.
set -euo pipefail
. "$(dirname "$0")/common.sh"

self="$LLMDEV_TOP/scripts/kernel.sh"

usage() { echo "usage: ${0##*/} debian|debug|trixie|sid" >&2; exit 2; }

emit() { # KVER KIMAGE KDIR MODDIR
	local f
	for f in "$2" "$3/Makefile" "$4/modules.dep"; do
		[ -e "$f" ] || die "missing $f (cache damaged? remove it and rerun)"
	done
	printf 'KVER=%q\nKIMAGE=%q\nKDIR=%q\nMODDIR=%q\n' "$@"
}

# Serialise concurrent runs for the same flavour.
lock() {
	mkdir -p "$LLMDEV_CACHE/kernel"
	exec 9>"$LLMDEV_CACHE/kernel/.lock-$1"
	flock 9
}

sanitize() { printf '%s' "${1//[:~+]/_}"; }

apt_download() { # PKG=VER, into the current directory
	local apt=(apt-get -q -o APT::Sandbox::User=root download "$1")
	"${apt[@]}" >&2 && return 0
	log "apt-get download $1 failed; updating package lists and retrying"
	apt-get -q update >&2 || true
	"${apt[@]}" >&2
}

kernel_debian() {
	local kver ver dir tmp pkg deb
	kver=$(debian_kver)
	# Pin the image to the exact version of the installed headers, so that
	# symbol CRCs and vermagic of modules built against KDIR match.
	ver=$(dpkg-query -W -f='${Version}' "linux-headers-$kver" 2>/dev/null) ||
		die "linux-headers-$kver is not installed"
	dir="$LLMDEV_CACHE/kernel/debian/${kver}_$(sanitize "$ver")"
	lock debian
	if [ ! -f "$dir/.done" ]; then
		log "fetching Debian kernel $kver ($ver)"
		tmp="$dir.tmp"
		rm -rf "$tmp"
		mkdir -p "$tmp/deb"
		# The signed package carries vmlinuz and the modules; the -unsigned
		# variant has the same content unsigned.  Try signed first.
		for pkg in "linux-image-$kver" "linux-image-$kver-unsigned"; do
			rm -rf "$tmp/deb"/* "$tmp/root"
			(cd "$tmp/deb" && apt_download "$pkg=$ver") || continue
			deb=$(ls "$tmp/deb"/*.deb)
			dpkg-deb -x "$deb" "$tmp/root"
			[ -f "$tmp/root/boot/vmlinuz-$kver" ] &&
				[ -d "$tmp/root/lib/modules/$kver" ] && break
			log "$pkg has no vmlinuz/modules"
		done
		[ -f "$tmp/root/boot/vmlinuz-$kver" ] ||
			die "could not get vmlinuz-$kver from the Debian archive"
		# modules.dep is generated at install time (postinst), not shipped.
		depmod -b "$tmp/root" -F "$tmp/root/boot/System.map-$kver" "$kver"
		rm -rf "$tmp/deb"
		rm -rf "$dir"
		mv "$tmp" "$dir"
		touch "$dir/.done"
	fi
	emit "$kver" "$dir/root/boot/vmlinuz-$kver" "/usr/src/linux-headers-$kver" \
		"$dir/root/lib/modules/$kver"
}

# The image of another suite's kernel, pinned to the version of the build
# tree kheaders.sh has (so that modules built there load).
kernel_suite() {
	local suite=$1 kv dir tmp pkg deb mods part parts map f
	local KVER KVERSION KDIR KPREP KKEY
	kv=$("$LLMDEV_TOP/scripts/kheaders.sh" "$suite") || die "$suite: no build tree (scripts/kheaders.sh $suite)"
	eval "$kv"
	. "$LLMDEV_TOP/scripts/suite-apt.sh"
	dir="$LLMDEV_CACHE/kernel/$suite/${KVER}_$(sanitize "$KVERSION")"
	lock "$suite"
	if [ ! -f "$dir/.done" ]; then
		suite_lock "$suite"
		log "fetching Debian $suite kernel $KVER ($KVERSION)"
		tmp="$dir.tmp"
		rm -rf "$tmp"
		for pkg in "linux-image-$KVER" "linux-image-$KVER-unsigned"; do
			rm -rf "$tmp"
			suite_download "$suite" "$tmp/deb" "$pkg=$KVERSION" || continue
			# since 7.x the image package is a metapackage of linux-base-,
			# linux-binary- and linux-modules-<kver>, which put vmlinuz and
			# System.map into /usr/lib/modules/<kver>/
			parts=()
			for part in $(suite_depends "$suite" "$pkg=$KVERSION"); do
				case $part in linux-base-"$KVER" | linux-binary-"$KVER" | linux-modules-"$KVER")
					parts+=("$part=$KVERSION") ;;
				esac
			done
			if [ ${#parts[@]} -gt 0 ]; then
				suite_download "$suite" "$tmp/deb" "${parts[@]}" || continue
			fi
			for deb in "$tmp"/deb/*.deb; do
				dpkg-deb -x "$deb" "$tmp/root"
			done
			for f in vmlinuz System.map; do
				[ -f "$tmp/root/usr/lib/modules/$KVER/$f" ] &&
					mkdir -p "$tmp/root/boot" &&
					ln -sf "../usr/lib/modules/$KVER/$f" "$tmp/root/boot/$f-$KVER"
			done
			[ -f "$tmp/root/boot/vmlinuz-$KVER" ] && break
			log "$pkg has no vmlinuz"
		done
		[ -f "$tmp/root/boot/vmlinuz-$KVER" ] ||
			die "could not get vmlinuz-$KVER from the $suite archive"
		# merged /usr: newer packages ship /usr/lib/modules
		mods=$tmp/root/lib/modules/$KVER
		if [ ! -d "$mods" ] && [ -d "$tmp/root/usr/lib/modules/$KVER" ]; then
			[ -e "$tmp/root/lib" ] || ln -s usr/lib "$tmp/root/lib"
		fi
		[ -d "$mods" ] || die "the $suite image package has no modules for $KVER"
		map=()
		[ -f "$tmp/root/boot/System.map-$KVER" ] && map=(-F "$tmp/root/boot/System.map-$KVER")
		depmod -b "$tmp/root" "${map[@]}" "$KVER"
		rm -rf "$tmp/deb"
		rm -rf "$dir"
		mv "$tmp" "$dir"
		touch "$dir/.done"
		for tmp in "$LLMDEV_CACHE/kernel/$suite"/*; do
			[ "$tmp" = "$dir" ] || rm -rf "$tmp"
		done
	fi
	emit "$KVER" "$dir/root/boot/vmlinuz-$KVER" "$KDIR" "$dir/root/lib/modules/$KVER"
}

# verify_config CONFIG FRAGMENT: every option in FRAGMENT has its value in CONFIG
verify_config() {
	local cfg=$1 frag=$2 line opt want got bad=()
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*) opt=${line%%=*} want=$line ;;
		"# CONFIG_"*" is not set") opt=${line#\# } want= ; opt=${opt%% *} ;;
		*) continue ;;
		esac
		got=$(grep -E "^$opt=" "$cfg" || true)
		[ "$got" = "$want" ] || bad+=("$opt: wanted '${want:-not set}', got '${got:-not set}'")
	done <"$frag"
	if [ ${#bad[@]} -gt 0 ]; then
		printf '%s: error: config option not as requested: %s\n' "${0##*/}" "${bad[@]}" >&2
		return 1
	fi
}

kernel_debug() {
	local src srcver frag key top b m kver mk t0 secs
	src=$("$LLMDEV_TOP/scripts/linux-src.sh")
	srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
	frag="$LLMDEV_TOP/scripts/debug-kernel.config"
	# keyed by what builds it, not by the rest of this script (the other
	# kernels' code): a change there costs no 20-minute rebuild
	key="$(sanitize "$srcver")-$( {
		hash_files "$frag"
		declare -f kernel_debug verify_config
	} | sha256sum | cut -c1-16)"
	top="$LLMDEV_CACHE/kernel/debug/$key"
	b="$top/build" m="$top/staging"
	# LOCALVERSION= on the command line: no "+" suffix from setlocalversion.
	mk=(make -C "$src" O="$b" LOCALVERSION=)
	lock debug
	if [ ! -f "$top/.done" ]; then
		if [ ! -f "$top/.configured" ]; then
			log "configuring debug kernel in $b"
			rm -rf "$top"
			mkdir -p "$b"
			"${mk[@]}" x86_64_defconfig >&2
			"${mk[@]}" kvm_guest.config >&2
			# merge_config.sh puts temp files in the cwd: keep it out of $src.
			(cd "$b" && "$src/scripts/kconfig/merge_config.sh" -m -O "$b" \
				"$b/.config" "$frag") >&2
			"${mk[@]}" olddefconfig >&2
			verify_config "$b/.config" "$frag" ||
				die "debug kernel config does not match $frag (see above)"
			touch "$top/.configured"
		fi
		log "building debug kernel (log: $top/build.log)"
		t0=$SECONDS
		if ! "${mk[@]}" -j"$(nproc)" bzImage modules >"$top/build.log" 2>&1; then
			tail -n 40 "$top/build.log" >&2
			die "debug kernel build failed (full log: $top/build.log)"
		fi
		secs=$((SECONDS - t0))
		log "debug kernel built in ${secs}s"
		echo "$secs" >"$top/build-seconds"
		rm -rf "$m"
		"${mk[@]}" INSTALL_MOD_PATH="$m" modules_install >>"$top/build.log" 2>&1 ||
			die "modules_install failed (log: $top/build.log)"
		touch "$top/.done"
	fi
	kver=$(cat "$b/include/config/kernel.release")
	emit "$kver" "$b/arch/x86/boot/bzImage" "$b" "$m/lib/modules/$kver"
}

[ $# -eq 1 ] || usage
case $1 in
debian) kernel_debian ;;
debug) kernel_debug ;;
trixie | sid) kernel_suite "$1" ;;
*) usage ;;
esac
