#!/usr/bin/env bash
# Copy the DKMS source of llmdev.ko into DEST (what llmdev-dkms installs as
# /usr/src/llmdev-<version>/, and what scripts/dkms-test.sh adds): dkms.conf,
# Kbuild, driver/ and uapi/ sources, no build products. Prints the version
# (dkms.conf's PACKAGE_VERSION).
#   scripts/dkms-src.sh DEST
set -euo pipefail
. "$(dirname "$0")/common.sh"

dest=${1:?usage: dkms-src.sh DEST}
mkdir -p "$dest/driver" "$dest/uapi"
install -m 0644 "$LLMDEV_TOP/dkms.conf" "$LLMDEV_TOP/Kbuild" "$dest/"
install -m 0644 "$LLMDEV_TOP"/driver/*.[ch] "$dest/driver/"
install -m 0644 "$LLMDEV_TOP"/uapi/*.h "$dest/uapi/"
sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$LLMDEV_TOP/dkms.conf"
