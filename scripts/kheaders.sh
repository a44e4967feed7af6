#!/usr/bin/env bash
# Provide a module build tree (KDIR) for the newest amd64 kernel of a Debian
# suite, and print shell assignments for it on stdout:
#   KVER=      kernel release (ABI name), e.g. 6.12.118+deb13-amd64
#   KVERSION=  Debian package version, e.g. 6.12.118-1
#   KDIR=      make -C $KDIR M=... builds modules for that kernel
#   KPREP=     how KDIR was made: "headers" (the linux-headers packages as
#              they are) or "source" (see below)
#   KKEY=      changes whenever KDIR is made anew
# Usage: eval "$(scripts/kheaders.sh bullseye|bookworm|trixie|sid)"
#
# The packages come from a private apt configuration (scripts/suite-apt.sh):
# downloaded and extracted into the cache, never installed. The headers'
# Makefile includes its -common part by absolute path; the extracted copy
# points at the extracted one.
#
# The kbuild host tools of a newer suite (fixdep, modpost, objtool) may need
# a newer glibc than this machine's. Then KDIR is Debian's
# linux-source-<version> of the same package version, configured with the
# headers package's .config (olddefconfig: options the local gcc cannot
# have are dropped; the differences are in $KDIR/config.diff), prepared
# with modules_prepare under the package's kernel release, and given the
# package's Module.symvers: modules built there carry the same vermagic and
# symbol CRCs, so they load into the packaged kernel.
#
# Cached in $LLMDEV_CACHE/kheaders/<suite>/<kver>_<version>/; a newer
# version replaces the older one once it is ready. Logs go to stderr.
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$LLMDEV_TOP/scripts/suite-apt.sh"

[ $# -eq 1 ] || { echo "usage: ${0##*/} bullseye|bookworm|trixie|sid" >&2; exit 2; }
suite=$1
suite_sources "$suite" >/dev/null

sanitize() { printf '%s' "${1//[:~+]/_}"; }

# tools_run ROOT: the host tools a module build runs (fixdep, modpost,
# genksyms, recordmcount, objtool) run here
tools_run() {
	local f bad=0
	while IFS= read -r f; do
		case ${f##*/} in
		fixdep | modpost* | genksyms | recordmcount | objtool*) ;;
		*) continue ;;
		esac
		head -c 4 "$f" | grep -q ELF || continue
		if LC_ALL=C ldd "$f" 2>&1 | grep -q 'not found'; then
			log "$suite: ${f#"$1"/} cannot run here: $(LC_ALL=C ldd "$f" 2>&1 | grep -m1 'not found' | sed 's/^[[:space:]]*//')"
			bad=1
			break
		fi
	done < <(find "$1"/usr/lib/linux-kbuild-* -type f -perm -u+x)
	return $bad
}

# prepare_source TOP KVER VERSION: linux-source-<series> prepared as KDIR
prepare_source() {
	local top=$1 kver=$2 ver=$3 series hdr src deb t0
	series=$(echo "$ver" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/')
	hdr=$top/root/usr/src/linux-headers-$kver
	src=$top/src
	log "$suite: fetching linux-source-$series $ver"
	suite_download "$suite" "$top/debs" "linux-source-$series=$ver" ||
		die "$suite: could not download linux-source-$series=$ver"
	deb=$(ls "$top"/debs/linux-source-"$series"_*.deb)
	t0=$SECONDS
	mkdir -p "$src"
	dpkg-deb --fsys-tarfile "$deb" |
		tar -xOf - "./usr/src/linux-source-$series.tar.xz" |
		tar -C "$src" --strip-components=1 -xJf -
	rm -f "$deb"
	log "$suite: unpacked in $((SECONDS - t0)) s; configuring and preparing (log: $top/prepare.log)"
	t0=$SECONDS
	cp "$hdr/.config" "$src/.config"
	# KERNELRELEASE as Debian sets it (its .kernelvariables): vermagic and
	# the module directory name match the packaged kernel
	if ! { make -C "$src" KERNELRELEASE="$kver" olddefconfig &&
		make -C "$src" KERNELRELEASE="$kver" -j"$(nproc)" modules_prepare; } \
		>"$top/prepare.log" 2>&1; then
		tail -n 30 "$top/prepare.log" >&2
		die "$suite: modules_prepare of linux-source-$series failed (log: $top/prepare.log)"
	fi
	[ "$(cat "$src/include/config/kernel.release")" = "$kver" ] ||
		die "$suite: prepared tree says $(cat "$src/include/config/kernel.release"), want $kver"
	cp "$hdr/Module.symvers" "$src/Module.symvers"
	# the headers' vmlinux carries the kernel's BTF: the base of modules' BTF
	[ -f "$hdr/vmlinux" ] && cp "$hdr/vmlinux" "$src/vmlinux"
	diff <(grep -E '^(CONFIG_|# CONFIG_)' "$hdr/.config" | sort) \
		<(grep -E '^(CONFIG_|# CONFIG_)' "$src/.config" | sort) |
		grep -E '^[<>]' >"$src/config.diff" || true
	log "$suite: prepared in $((SECONDS - t0)) s; $(grep -c '^<' "$src/config.diff") config line(s) differ from the package's (see $src/config.diff)"
	# Options that only describe the toolchain may differ; others change
	# what modules see (struct layouts: e.g. BTF needs pahole, which
	# struct module's size depends on) and are worth knowing about.
	sed -E 's/^[<>] (# )?(CONFIG_[A-Z0-9_]+).*/\2/' "$src/config.diff" | sort -u |
		grep -vE '^CONFIG_(CC_|GCC_|AS_|LD_|PAHOLE_|RUST|BINDGEN|CLANG_|TOOLCHAIN_)' \
		>"$src/config.diff.notable" || true
	if [ -s "$src/config.diff.notable" ]; then
		log "$suite: options other than the toolchain's that differ from the package's config: $(tr '\n' ' ' <"$src/config.diff.notable")"
	fi
}

fetch() {
	local ver hdr kver top tmp p pkgs=() d prep key
	suite_update "$suite" || die "$suite: cannot read the package lists (no network?)"
	ver=$(suite_candidate "$suite" linux-headers-amd64)
	[ -n "$ver" ] || die "$suite: no linux-headers-amd64 in the package lists"
	hdr=$(suite_depends "$suite" "linux-headers-amd64=$ver" | grep -E '^linux-headers-.*-amd64$' | head -n 1)
	[ -n "$hdr" ] || die "$suite: linux-headers-amd64=$ver depends on no linux-headers-*-amd64"
	kver=${hdr#linux-headers-}
	top=$LLMDEV_CACHE/kheaders/$suite/${kver}_$(sanitize "$ver")
	# a prepared tree depends on the local toolchain too (olddefconfig)
	key=$( {
		echo "$PREP_VERSION"
		gcc --version | head -n 1
		ld --version | head -n 1
		pahole --version 2>/dev/null || true
	} | sha256sum | cut -c1-16)
	if [ ! -f "$top/.done" ] || [ "$(cat "$top/.key" 2>/dev/null)" != "$key" ]; then
		log "$suite: fetching the headers of $kver ($ver)"
		# built in place (a prepared tree is not moved), complete once .done exists
		tmp=$top
		rm -rf "$tmp"
		pkgs=("$hdr=$ver")
		for p in $(suite_depends "$suite" "$hdr=$ver"); do
			case $p in linux-headers-*-common | linux-headers-*-common-* | linux-kbuild-*)
				pkgs+=("$p=$ver") ;;
			esac
		done
		suite_download "$suite" "$tmp/debs" "${pkgs[@]}" ||
			die "$suite: could not download ${pkgs[*]}"
		for d in "$tmp"/debs/*.deb; do
			dpkg-deb -x "$d" "$tmp/root"
		done
		rm -f "$tmp"/debs/*.deb
		sed -i -E "s|^include /usr/src/|include $tmp/root/usr/src/|" \
			"$tmp/root/usr/src/linux-headers-$kver/Makefile"
		if tools_run "$tmp/root"; then
			prep=headers
		else
			prepare_source "$tmp" "$kver" "$ver"
			prep=source
		fi
		rm -rf "$tmp/debs"
		echo "$prep" >"$top/prep"
		echo "$key" >"$top/.key"
		touch "$top/.done"
		for d in "$LLMDEV_CACHE/kheaders/$suite"/*; do
			[ "$d" = "$top" ] || rm -rf "$d"
		done
	fi
	prep=$(cat "$top/prep")
	case $prep in
	headers) d=$top/root/usr/src/linux-headers-$kver ;;
	source) d=$top/src ;;
	esac
	[ -f "$d/Makefile" ] || die "missing $d/Makefile (cache damaged? remove $top)"
	printf 'KVER=%q\nKVERSION=%q\nKDIR=%q\nKPREP=%q\nKKEY=%q\n' "$kver" "$ver" "$d" "$prep" \
		"$key-$(stat -c %Y "$top/.done")"
}

# Bump when what fetch() makes changes: every cached tree is made anew.
PREP_VERSION=1

suite_lock "$suite"
fetch
