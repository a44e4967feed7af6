#!/usr/bin/env bash
# Build llmdev.ko for a guest kernel: scripts/build-module.sh debian|debug|trixie|sid
# Each kernel gets its own copy of the sources under build/modules-$KVER, so
# builds for two kernels never share object files. Prints the .ko's path.
# W=1 and sparse (C=1 when sparse is installed) must stay silent: any
# warning fails the build.
set -euo pipefail
. "$(dirname "$0")/common.sh"

flavour=${1:?usage: build-module.sh debian|debug|trixie|sid}
eval "$("$LLMDEV_TOP/scripts/kernel.sh" "$flavour")"
out="$LLMDEV_TOP/build/modules-$KVER"
mkdir -p "$out"
rsync -a --delete --exclude='*.o' --exclude='.*.cmd' --exclude='*.ko' \
	--exclude='*.mod*' --exclude=modules.order --exclude=Module.symvers \
	"$LLMDEV_TOP/Kbuild" "$LLMDEV_TOP/driver" "$LLMDEV_TOP/uapi" "$out/src/"
read -r -a checker <<<"$(checker_args "$KDIR")"
log "building llmdev.ko for $KVER"
make -s -C "$KDIR" M="$out/src" W=1 "${checker[@]}" -j"$(nproc)" modules \
	>"$out/build.log" 2>&1 || { cat "$out/build.log" >&2; die "module build failed for $KVER"; }
if grep -E 'warning|error' "$out/build.log" >&2; then
	die "module build for $KVER printed warnings (see above)"
fi
rm -f "$out"/*.ko
cp "$out"/src/*.ko "$out/"	# llmdev.ko, and llmdev_kunit.ko on KUnit kernels
echo "$out/llmdev.ko"
