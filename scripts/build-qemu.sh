#!/usr/bin/env bash
# Build qemu-system-x86_64 from Debian's qemu 7.2 source package with the
# llmdev card model (qemu/) added as hw/misc/llmdev/.
#
# The configured build tree is cached outside the repository, keyed by the
# qemu version and the configure line; the model is copied in and rebuilt
# incrementally only when its sources change. Every model file must then
# compile with -Werror -Wextra and pass QEMU's scripts/checkpatch.pl. The
# fixes to QEMU itself in qemu/patches/ are applied to the tree first. Also
# builds the host test of the model's arithmetic into
# build/host-tests/llmdev_reduce_test (run by scripts/check.sh). Prints the
# binary's path.
#
# A cached tree hooked the way this script used to do it (one file,
# hw/misc/llmdev.c, listed in hw/misc/meson.build, its trace events in
# hw/misc/trace-events) is rehooked: the old file, line and events go.
set -euo pipefail
. "$(dirname "$0")/common.sh"

src=$("$LLMDEV_TOP/scripts/fetch-qemu-src.sh")
model=(llmdev.h core.c dma.c links.c coll.c reduce.c route.c trace.h
	trace-events meson.build)
model_files=("${model[@]/#/$LLMDEV_TOP/qemu/}")
test_src="$LLMDEV_TOP/qemu/tests/test-reduce.c"
# Fixes to QEMU itself, applied to the tree in order (qemu/patches/README).
patches=()
for p in "$LLMDEV_TOP"/qemu/patches/*.patch; do
	[ -e "$p" ] && patches+=("$p")
done
inputs=("${model_files[@]}" "$LLMDEV_TOP/driver/llmdev_regs.h" "$test_src"
	"$LLMDEV_TOP/scripts/build-qemu.sh" "${patches[@]}")
# The configured tree is keyed by the configure line: changing it reconfigures.
conf=(--target-list=x86_64-softmmu --without-default-features --disable-docs
	--disable-install-blobs --disable-werror --enable-fdt=system
	--enable-trace-backends=log --disable-user --disable-tools)
bkey=$(printf '%s\n' "${conf[@]}" | sha256sum | cut -c1-8)
build="$src/../build-$bkey"
bin="$build/qemu-system-x86_64"
mkey=$(hash_files "${inputs[@]}")
host_test="$LLMDEV_TOP/build/host-tests/llmdev_reduce_test"

if [ -x "$bin" ] && [ "$(cat "$build/.model-key" 2>/dev/null)" = "$mkey" ] &&
	[ -x "$host_test" ] && [ "$(cat "$host_test.key" 2>/dev/null)" = "$mkey" ]; then
	echo "$bin"
	exit 0
fi

# Copy a file in; only files whose content changed get a new mtime.
install_if_changed() {
	cmp -s "$1" "$2" || cp "$1" "$2"
}

# Edit a tree file through a temporary copy, so an unchanged file keeps its
# mtime (and meson does not reconfigure for nothing).
edit_tree_file() { # FILE SED-OR-COMMAND...
	local f=$1 new
	shift
	new=$(mktemp)
	"$@" <"$f" >"$new"
	install_if_changed "$new" "$f"
	rm -f "$new"
}

# Hooks into the tree, each made idempotently: Kconfig, the hw/misc meson
# subdir, the trace-event directory; edk2 blobs are not unpacked (the dfsg
# tarball does not ship them).
if ! grep -q '^config LLMDEV_CARD' "$src/hw/misc/Kconfig"; then
	cat >>"$src/hw/misc/Kconfig" <<'KC'

config LLMDEV_CARD
    bool
    default y if TEST_DEVICES
    depends on PCI && MSI_NONBROKEN
KC
fi
# hw/misc/meson.build: the old one-file line out, subdir('llmdev') last
misc_meson() {
	sed -e "/files('llmdev\.c')/d" -e "/^subdir('llmdev')$/d"
	echo "subdir('llmdev')"
}
edit_tree_file "$src/hw/misc/meson.build" misc_meson
edit_tree_file "$src/meson.build" \
	sed -e "/^    'hw\/misc\/llmdev',$/d" -e "s/^    'hw\/misc',$/&\n    'hw\/misc\/llmdev',/" \
	-e 's/^    unpack_edk2_blobs = bzip2.found()/    unpack_edk2_blobs = false/'
grep -q "^    'hw/misc/llmdev',$" "$src/meson.build" ||
	die "cannot add hw/misc/llmdev to the trace-event directories of $src/meson.build"
# the old single-file model and its trace events
rm -f "$src/hw/misc/llmdev.c" "$src/hw/misc/llmdev_regs.h"
edit_tree_file "$src/hw/misc/trace-events" sed '/^# llmdev-begin$/,/^# llmdev-end$/d'

# QEMU's own fixes, a stack: the tree keeps a copy of each patch it has
# applied (.llmdev-patches/). From the first applied one that is gone from
# qemu/patches/ or has changed, the applied ones are taken out again, last
# first; then the current ones from there on go in.
applied="$src/.llmdev-patches"
mkdir -p "$applied"
olds=()
for a in "$applied"/*.patch; do
	[ -e "$a" ] && olds+=("$a")
done
same=0
while [ $same -lt ${#olds[@]} ] && [ $same -lt ${#patches[@]} ] &&
	[ "$(basename "${olds[same]}")" = "$(basename "${patches[same]}")" ] &&
	cmp -s "${olds[same]}" "${patches[same]}"; do
	same=$((same + 1))
done
for ((i = ${#olds[@]} - 1; i >= same; i--)); do
	(cd "$src" && patch -p1 -R -s -f --no-backup-if-mismatch <"${olds[i]}") ||
		die "cannot take $(basename "${olds[i]}") out of $src again (remove $src to unpack it afresh)"
	rm -f "${olds[i]}"
done
for ((i = same; i < ${#patches[@]}; i++)); do
	(cd "$src" && patch -p1 -s -f --no-backup-if-mismatch <"${patches[i]}") ||
		die "cannot apply ${patches[i]#"$LLMDEV_TOP"/} to $src"
	cp "${patches[i]}" "$applied/"
done

# The model's files; anything else in the directory is from an older model.
dir="$src/hw/misc/llmdev"
mkdir -p "$dir"
for f in "$dir"/*; do
	[ -e "$f" ] || continue
	case " ${model[*]} llmdev_regs.h " in
	*" ${f##*/} "*) ;;
	*) rm -f "$f" ;;
	esac
done
for f in "${model[@]}"; do
	install_if_changed "$LLMDEV_TOP/qemu/$f" "$dir/$f"
done
install_if_changed "$LLMDEV_TOP/driver/llmdev_regs.h" "$dir/llmdev_regs.h"

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

# Every file of the model must build with -Werror -Wextra: recompile each
# alone with it. Prints the flags of one of them for the host test.
flags=$(python3 - "$build" <<'PY'
import json, shlex, subprocess, sys
build = sys.argv[1]
files = [e for e in json.load(open(build + "/compile_commands.json"))
         if "/hw/misc/llmdev/" in e["file"]]
if len(files) < 6:
    sys.exit("the llmdev model is not in compile_commands.json")
bad = 0
for e in files:
    cmd = shlex.split(e["command"])
    for flag in ("-MQ", "-MF"):
        while flag in cmd:
            i = cmd.index(flag)
            del cmd[i:i + 2]
    cmd = [c for c in cmd if c != "-MD"]
    out = cmd.index("-o")
    cmd[out:out + 2] = ["-o", "/dev/null"]
    flags = cmd
    cmd += ["-Werror", "-Wextra", "-Wno-unused-parameter", "-Wno-sign-compare",
            "-Wno-missing-field-initializers"]
    bad += subprocess.call(cmd, cwd=e["directory"]) != 0
if bad:
    sys.exit(1)
# the compiler and its options, without -c, the file and -o
keep, skip = [], False
for c in flags:
    if skip:
        skip = False
    elif c in ("-o", "-c"):
        skip = c == "-o"
    elif not c.endswith(".c"):
        keep.append(c)
print(shlex.join(keep))
PY
) || die "the -Werror -Wextra check of the llmdev model failed (see above)"

# QEMU's coding style, on every file of the model.
for f in "${model_files[@]}"; do
	case $f in */trace-events|*/meson.build) continue ;; esac
	out=$(cd "$src" && perl scripts/checkpatch.pl --no-tree --terse -f "$f" 2>&1) ||
		{ printf '%s\n' "$out" >&2; die "${f#"$LLMDEV_TOP"/} does not pass QEMU's checkpatch.pl"; }
	if grep -q 'WARNING\|ERROR' <<<"$out"; then
		printf '%s\n' "$out" >&2
		die "${f#"$LLMDEV_TOP"/}: QEMU's checkpatch.pl warns"
	fi
done

# The host test of reduce.c, with the model's compiler options.
mkdir -p "${host_test%/*}"
eval "cc_flags=($flags)"
(cd "$build" && "${cc_flags[@]}" -iquote "$dir" -o "$host_test" "$test_src" \
	$(pkg-config --libs glib-2.0) -lm) || die "cannot build the llmdev reduce host test"
echo "$mkey" >"$host_test.key"

echo "$mkey" >"$build/.model-key"
echo "$bin"
