#!/usr/bin/env bash
# Fetch and unpack Debian's qemu source package into the cache (once).
# Prints the path of the unpacked tree.
set -euo pipefail
. "$(dirname "$0")/common.sh"

ensure_deb_src qemu
ver=$(apt-cache showsrc qemu | sed -n 's/^Version: //p' | sort -V | tail -n 1)
[ -n "$ver" ] || die "cannot find the qemu source package"
srcroot="$LLMDEV_CACHE/qemu-src/${ver//[:~+]/_}"
if [ ! -f "$srcroot/.unpacked" ]; then
	rm -rf "$srcroot"
	mkdir -p "$srcroot"
	log "fetching qemu $ver source"
	(cd "$srcroot" && apt-get source -qq --download-only "qemu=$ver" >/dev/null)
	(cd "$srcroot" && dpkg-source -x --skip-debianization ./*.dsc tree >/dev/null)
	touch "$srcroot/.unpacked"
fi
echo "$srcroot/tree"
