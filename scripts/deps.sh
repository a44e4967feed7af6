#!/usr/bin/env bash
# Install, idempotently, every Debian package the build and the tests need.
# Safe to run on a brand-new Debian 12 machine and again on a warm one.
set -euo pipefail

PKGS=(
	# toolchain and QEMU build
	build-essential pkg-config ninja-build meson python3 python3-venv
	libglib2.0-dev libpixman-1-dev libfdt-dev zlib1g-dev flex bison
	dpkg-dev xz-utils git patch
	# firmware for the emulated machine (used through -L)
	qemu-system-data seabios
	# guest kernels, module build, debug kernel build
	linux-headers-amd64 linux-source-6.1 bc libelf-dev libssl-dev
	cpio kmod rsync
	# guest userspace; llmctl and the netlink tests; json-c for llmctl's
	# JSON and the tests that parse it
	busybox-static pciutils
	# operators' tools the VM tests run: sensors (hwmon), perf (the PMU),
	# devlink (iproute2)
	lm-sensors linux-perf iproute2
	# the OpenMetrics parsers that check llmctl stats --format openmetrics
	python3-prometheus-client
	# udevd in the guest applies udev/60-llmdev.rules
	udev
	libnl-3-dev libnl-genl-3-dev libpci-dev libkmod-dev libjson-c-dev
	# kernel static checks
	sparse
	# pahole: the uapi structs' layout; kernel trees prepared from
	# linux-source (scripts/kheaders.sh) keep their BTF options, as the
	# packaged kernels have them
	dwarves
	# DKMS proven (scripts/dkms-test.sh)
	dkms
	# Debian packages (scripts/deb.sh, scripts/pkg-test.sh)
	debhelper dh-dkms lintian debootstrap zstd
	# fuzzing the GGUF reader (tools/fuzz_gguf.c): clang only recommends
	# the runtime with libFuzzer and the sanitizers
	clang libclang-rt-14-dev
	# scripts/vm.py prints QEMU's threads when a run times out
	gdb
)

have_all=1
missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] || have_all=0

if [ "$have_all" = 1 ]; then
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages: ${missing[*]}; run as root (or install them)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "deps: installing ${missing[*]}"
# an earlier install that was killed half way leaves dpkg's journal, and
# every apt-get install refuses until it is finished
dpkg --configure -a >/dev/null
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
