#!/usr/bin/env bash
# Fetch and unpack Debian's qemu source package into the cache (once).
# Prints the path of the unpacked tree.
#
# The version is that of the installed qemu-system-data (the firmware the
# VM uses comes from the same source package), so a warm cache needs no apt
# call at all; apt is asked only when that version is not unpacked yet.
set -euo pipefail
. "$(dirname "$0")/common.sh"

ver=$(dpkg-query -W -f='${Version}' qemu-system-data 2>/dev/null || true)
srcroot="$LLMDEV_CACHE/qemu-src/${ver//[:~+]/_}"
if [ -n "$ver" ] && [ -f "$srcroot/.unpacked" ]; then
	echo "$srcroot/tree"
	exit 0
fi

ensure_deb_src qemu
[ -n "$ver" ] || ver=$(apt-cache showsrc qemu | sed -n 's/^Version: //p' | sort -V | tail -n 1)
[ -n "$ver" ] || die "cannot find the qemu source package"
srcroot="$LLMDEV_CACHE/qemu-src/${ver//[:~+]/_}"
if [ ! -f "$srcroot/.unpacked" ]; then
	rm -rf "$srcroot"
	mkdir -p "$srcroot"
	log "fetching qemu $ver source"
	(cd "$srcroot" && apt-get source -qq --download-only "qemu=$ver" >/dev/null) ||
		die "apt-get source qemu=$ver failed"
	(cd "$srcroot" && dpkg-source -x --skip-debianization ./*.dsc tree >/dev/null)
	touch "$srcroot/.unpacked"
fi
echo "$srcroot/tree"
