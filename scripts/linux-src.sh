#!/usr/bin/env bash
# Unpack Debian's linux-source-6.1 into the cache (once) and print its path.
# Used for the debug kernel and for the kselftest headers.
set -euo pipefail
. "$(dirname "$0")/common.sh"

tarball=$(ls /usr/src/linux-source-6.1.tar.xz 2>/dev/null) ||
	die "linux-source-6.1 is not installed (run scripts/deps.sh)"
ver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
dst="$LLMDEV_CACHE/linux-src/${ver//[:~+]/_}"
if [ ! -f "$dst/.unpacked" ]; then
	log "unpacking linux-source-6.1 $ver"
	rm -rf "$dst"
	mkdir -p "$dst"
	tar -C "$dst" --strip-components=1 -xJf "$tarball"
	touch "$dst/.unpacked"
fi
echo "$dst"
