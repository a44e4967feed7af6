#!/usr/bin/env bash
# `make deb`: build the Debian packages llmdev-dkms, libllmdev1,
# libllmdev-dev and llmctl (debian/, debhelper) from the tree as it is, and
# check them with lintian.
#
# The tree's files (git's tracked and untracked-but-not-ignored ones) are
# copied to build/deb/src/llmdev-<version>/ and built there
# (dpkg-buildpackage -us -uc: the native source and the binaries); the
# .debs end up in build/deb/. lintian's verdict is in build/deb/lintian.txt;
# errors fail the build, warnings are printed.
set -euo pipefail
. "$(dirname "$0")/common.sh"
# debian/rules keeps the scripts' cache in the source tree unless
# LLMDEV_CACHE names one: here, ours (the host tests' linux-source is
# unpacked there once, not in every build)
export LLMDEV_CACHE

OUT=$LLMDEV_TOP/build/deb
ver=$(dpkg-parsechangelog -l "$LLMDEV_TOP/debian/changelog" -S Version)
src=$OUT/src/llmdev-$ver
rm -rf "$OUT"
mkdir -p "$src"
(cd "$LLMDEV_TOP" && git ls-files -z --cached --others --exclude-standard |
	rsync -a --from0 --files-from=- ./ "$src/")
log "building llmdev $ver (log: ${OUT#"$LLMDEV_TOP"/}/build.log)"
if ! (cd "$src" && dpkg-buildpackage -us -uc -j"$(nproc)") >"$OUT/build.log" 2>&1; then
	tail -n 30 "$OUT/build.log" >&2
	die "dpkg-buildpackage failed (log: $OUT/build.log)"
fi
cp "$OUT"/src/*.deb "$OUT/"
changes=$(ls "$OUT"/src/llmdev_"$ver"_*.changes)
# --fail-on error: warnings are reported, not fatal
if ! lintian --fail-on error --info --display-info "$changes" >"$OUT/lintian.txt" 2>&1; then
	cat "$OUT/lintian.txt" >&2
	die "lintian found errors (build/deb/lintian.txt)"
fi
for p in "$OUT"/*.deb; do
	echo "$p"
done
n=$(grep -c '^[EWIP]: ' "$OUT/lintian.txt" || true)
log "lintian: $(grep -c '^E: ' "$OUT/lintian.txt" || true) error(s), $(grep -c '^W: ' "$OUT/lintian.txt" || true) warning(s), $(grep -c '^I: ' "$OUT/lintian.txt" || true) info(s) (build/deb/lintian.txt)"
grep -E '^(E|W): ' "$OUT/lintian.txt" >&2 || true
