#!/usr/bin/env bash
# Build qemu-system-x86_64 from Debian's qemu 7.2 source package with the
# llmdev card model (qemu/) added as hw/misc/llmdev.c.
#
# The configured build tree is cached outside the repository, keyed by the
# qemu version and this script; the model is copied in and rebuilt
# incrementally only when its sources change. Prints the binary's path.
set -euo pipefail
. "$(dirname "$0")/common.sh"

src=$("$LLMDEV_TOP/scripts/fetch-qemu-src.sh")
model_files=("$LLMDEV_TOP"/qemu/llmdev.c "$LLMDEV_TOP"/qemu/llmdev-trace-events \
	"$LLMDEV_TOP"/driver/llmdev_regs.h)
# The configured tree is keyed by the configure line: changing it reconfigures.
conf=(--target-list=x86_64-softmmu --without-default-features --disable-docs
	--disable-install-blobs --disable-werror --enable-fdt=system
	--enable-trace-backends=log --disable-user --disable-tools)
bkey=$(printf '%s\n' "${conf[@]}" | sha256sum | cut -c1-8)
build="$src/../build-$bkey"
bin="$build/qemu-system-x86_64"
mkey=$(hash_files "${model_files[@]}")

if [ -x "$bin" ] && [ "$(cat "$build/.model-key" 2>/dev/null)" = "$mkey" ]; then
	echo "$bin"
	exit 0
fi

# One-time edits of the tree: hook the model into Kconfig and meson, and
# turn off unpacking of the edk2 blobs, which the dfsg tarball does not ship.
if ! grep -q LLMDEV_CARD "$src/hw/misc/Kconfig"; then
	cat >>"$src/hw/misc/Kconfig" <<'KC'

config LLMDEV_CARD
    bool
    default y if TEST_DEVICES
    depends on PCI && MSI_NONBROKEN
KC
	echo "softmmu_ss.add(when: 'CONFIG_LLMDEV_CARD', if_true: files('llmdev.c'))" \
		>>"$src/hw/misc/meson.build"
	sed -i 's/^    unpack_edk2_blobs = bzip2.found()/    unpack_edk2_blobs = false/' \
		"$src/meson.build"
fi

# Copy the model in; only files whose content changed get a new mtime.
install_if_changed() {
	cmp -s "$1" "$2" || cp "$1" "$2"
}
install_if_changed "$LLMDEV_TOP/qemu/llmdev.c" "$src/hw/misc/llmdev.c"
install_if_changed "$LLMDEV_TOP/driver/llmdev_regs.h" "$src/hw/misc/llmdev_regs.h"
# Trace events: our block lives between markers at the end of hw/misc/trace-events.
te="$src/hw/misc/trace-events"
new=$(mktemp)
sed '/^# llmdev-begin$/,/^# llmdev-end$/d' "$te" >"$new"
{ echo "# llmdev-begin"; cat "$LLMDEV_TOP/qemu/llmdev-trace-events"; echo "# llmdev-end"; } >>"$new"
install_if_changed "$new" "$te"
rm -f "$new"

if [ ! -f "$build/build.ninja" ]; then
	log "configuring qemu in $build"
	rm -rf "$build"
	mkdir -p "$build"
	(cd "$build" && "$src/configure" "${conf[@]}" >configure.log 2>&1) ||
		{ tail -n 30 "$build/configure.log" >&2; die "qemu configure failed"; }
fi

log "building qemu-system-x86_64 (first build takes several minutes)"
ninja -C "$build" qemu-system-x86_64 >"$build/ninja.log" 2>&1 ||
	{ grep -E 'error|Error' -A3 "$build/ninja.log" | head -n 60 >&2; die "qemu build failed"; }

# The model itself must build with -Werror: recompile it alone with it.
python3 - "$build" <<'PY' || die "the llmdev model does not build with -Werror"
import json, shlex, subprocess, sys
build = sys.argv[1]
for e in json.load(open(build + "/compile_commands.json")):
    if e["file"].endswith("hw/misc/llmdev.c"):
        cmd = shlex.split(e["command"])
        for flag in ("-MQ", "-MF"):
            while flag in cmd:
                i = cmd.index(flag)
                del cmd[i:i + 2]
        cmd = [c for c in cmd if c != "-MD"]
        out = cmd.index("-o")
        cmd[out:out + 2] = ["-o", "/dev/null"]
        sys.exit(subprocess.call(cmd + ["-Werror", "-Wextra", "-Wno-unused-parameter",
                                        "-Wno-sign-compare", "-Wno-missing-field-initializers"],
                                 cwd=e["directory"]))
sys.exit("llmdev.c not in compile_commands.json")
PY
echo "$mkey" >"$build/.model-key"
echo "$bin"
