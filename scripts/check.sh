#!/usr/bin/env bash
# Build everything and run every test (`make check`, .ci/run).
#
#   1. dependencies, QEMU with the card model, both guest kernels (Debian's
#      and the debug build), the in-VM selftests and tools;
#   2. host-side unit tests: every executable in build/host-tests/ (built by
#      whoever adds them), each printing KTAP; exit 0 = ok, 4 = skip;
#   3. the in-VM suites (/llmdev/selftests/run_tests.sh) on the Debian kernel
#      (every test), and those that run driver code (driver_*, ops_*, the
#      fuzzer under an unplug) on the debug kernel (KASAN, lockdep,
#      kmemleak, fault injection); 4 cards unless said otherwise;
#   4. system-reset smoke test: reset the VM from the guest (hostctl), then
#      check after the reboot that every card is back with the right ID;
#   5. kernels and packages: `make compat` (llmdev.ko with W=1 and sparse
#      against Debian 11, 12, 13 and unstable, one test per kernel), DKMS
#      (scripts/dkms-test.sh), the Debian packages (scripts/deb.sh with
#      lintian, then scripts/pkg-test.sh: installed in a chroot and used in
#      the VM), and the driver, links/collectives and llmctl suites on the
#      guest kernels of Debian 13 (trixie) and unstable (sid).
#
# Counting (scripts/vm.py parse_ktap): leaves of the KTAP output; a crashed
# test binary counts one failure; a VM run that fails (timeout, kernel
# WARNING/BUG/leak/..., no exit line) counts one failure, with the reason.
# A build step that fails counts one failure and skips what needs it.
# The last line is "N passed, N failed, N skipped"; exit 0 iff none failed.
#
# Logs: build/logs/check/ (one per VM run and build step), replaced on each
# run. CI=true: no colours (and nothing is interactive anyway).
# Environment: CHECK_TIMEOUT_DEBIAN, CHECK_TIMEOUT_DEBUG (seconds per VM
# run); CHECK_KERNELS (default "debian debug trixie sid"; for quick local
# runs only: a kernel left out is reported as skipped).
set -uo pipefail
. "$(dirname "$0")/common.sh"

BUILD=$LLMDEV_TOP/build
LOGS=$BUILD/logs/check
VM=(python3 "$LLMDEV_TOP/scripts/vm.py")
T_DEBIAN=${CHECK_TIMEOUT_DEBIAN:-900}
T_DEBUG=${CHECK_TIMEOUT_DEBUG:-3600}
# The whole run's budget in seconds (CI gives up at 90 minutes, summary
# or not): no VM suite runs past it, and one that would start after it is
# reported as skipped, so that a hang still ends in a summary. A cold run
# takes about 75 minutes, a warm one about 30.
BUDGET=${CHECK_BUDGET_S:-5100}
KERNELS=" ${CHECK_KERNELS:-debian debug trixie sid} "

if [ "${CI:-}" != true ] && [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	B=$'\e[1m' R=$'\e[31m' G=$'\e[32m' O=$'\e[0m'
else
	B= R= G= O=
fi

rm -rf "$LOGS"
mkdir -p "$LOGS"

PASSED=0 FAILED=0 SKIPPED=0
SUMMARY=()

section() { printf '\n%s==== %s ====%s\n' "$B" "$*" "$O"; }

# add NAME PASSED FAILED SKIPPED [NOTE]
add() {
	PASSED=$((PASSED + $2)) FAILED=$((FAILED + $3)) SKIPPED=$((SKIPPED + $4))
	local mark="${G}ok  ${O}"
	[ "$3" -eq 0 ] || mark="${R}FAIL${O}"
	SUMMARY+=("$(printf '  %s %-30s %5s %4d passed, %d failed, %d skipped%s' \
		"$mark" "$1" "${SUITE_S:+${SUITE_S}s}" "$2" "$3" "$4" "${5:+  ($5)}")")
}

# the wall time of the suite being counted, shown in the summary
SUITE_S=

# step NAME CMD...: run a build step with its output in a log; on failure
# print the log's tail, count one failure, return 1.
step() {
	local name=$1 log=$LOGS/build-$1.log t0=$SECONDS
	shift
	printf '%-34s' "$name"
	if "$@" >"$log" 2>&1; then
		echo "done ($((SECONDS - t0)) s)"
		return 0
	fi
	echo "${R}FAILED${O} ($((SECONDS - t0)) s; log: ${log#"$LLMDEV_TOP"/})"
	tail -n 25 "$log" | sed 's/^/    /'
	add "build: $name" 0 1 0 "see ${log#"$LLMDEV_TOP"/}"
	return 1
}

# vm_suite NAME KERNEL TIMEOUT CMD [VM.PY ARGS]: a guest command printing
# KTAP, in a VM with 4 cards (unless the extra arguments say otherwise)
vm_suite() {
	local name=$1 kernel=$2 timeout=$3 cmd=$4 counts=$LOGS/$1.counts rc p f s
	local t0=$SECONDS left=$((BUDGET - SECONDS))
	shift 4
	if [ "$left" -lt 120 ]; then
		section "$name: not run"
		add "$name" 0 0 1 "not run: the run's budget of $BUDGET s is spent"
		return
	fi
	[ "$timeout" -le $((left - 60)) ] || timeout=$((left - 60))
	section "$name: $kernel kernel ${*:-(4 cards)}: $cmd"
	"${VM[@]}" --kernel "$kernel" --cards 4 "$@" --timeout "$timeout" --quiet \
		--log "$LOGS/$name.log" --ktap --title "$name" --counts "$counts" \
		--cmd "$cmd" </dev/null
	rc=$?
	SUITE_S=$((SECONDS - t0))
	if read -r p f s <"$counts" 2>/dev/null; then
		add "$name" "$p" "$f" "$s" "$(reason "$rc")"
	else
		add "$name" 0 1 0 "runner failed (exit $rc)"
	fi
	SUITE_S=
	echo "log: ${LOGS#"$LLMDEV_TOP"/}/$name.log ($((SECONDS - t0)) s)"
}

reason() {
	case $1 in
	0) ;;
	3) echo "kernel reports" ;;
	124) echo "timeout" ;;
	125) echo "VM run failed" ;;
	130) echo "interrupted" ;;
	*) echo "exit $1" ;;
	esac
}

# ktap_suite NAME CMD...: a host command printing KTAP (compat.sh,
# dkms-test.sh, pkg-test.sh): its output is shown, and each top-level result
# is a row of the summary, named NAME: <its description up to a colon>;
# results missing from the plan (the command died) count as failures.
ktap_suite() {
	local name=$1 log=$LOGS/$1.log rc line desc note plan=0 n=0 t0=$SECONDS
	shift
	section "$name: $*"
	"$@" >"$log" 2>"$LOGS/$name.err" </dev/null
	rc=$?
	echo "($((SECONDS - t0)) s)"
	sed 's/^/  /' "$log"
	while IFS= read -r line; do
		case $line in
		1..*) plan=${line#1..} ;;
		"ok "* | "not ok "*)
			n=$((n + 1))
			desc=${line#not } desc=${desc#ok } desc=${desc#* }
			note=${desc#*: } note=${note%% # *}
			[ "$note" = "$desc" ] && note=
			desc=${desc%%: *} desc=${desc%% # *}
			case $line in
			"not ok "*) add "$name: $desc" 0 1 0 "$note" ;;
			*"# SKIP"*) add "$name: $desc" 0 0 1 "${line##*# SKIP }" ;;
			*) add "$name: $desc" 1 0 0 "$note" ;;
			esac ;;
		esac
	done <"$log"
	if [ "$n" -lt "$plan" ] || [ "$n" -eq 0 ]; then
		add "$name" 0 1 0 "$((plan - n)) result(s) missing, exit $rc; see ${LOGS#"$LLMDEV_TOP"/}/$name.err"
		tail -n 10 "$LOGS/$name.err" | sed 's/^/    /'
	fi
	echo "log: ${LOGS#"$LLMDEV_TOP"/}/$name.log"
}

# The guest side of the system-reset smoke test.
read -r -d '' RESET_CMD <<'EOF'
cards() { lspci -d 1234:4c4d | cut -d' ' -f1; }
if [ "$BOOT" = 1 ]; then
	echo "boot 1: $(cards | wc -l) card(s); resetting the system"
	hostctl hmp system_reset
	sleep 120
	echo "system_reset did not reset"; exit 1
fi
n=$(cards | wc -l)
echo "boot $BOOT: $n card(s), expected $CARDS"
[ "$n" -eq "$CARDS" ] || exit 1
for c in $(cards); do
	llmdev-regdump "$c" >/tmp/regdump || { echo "$c: llmdev-regdump failed"; exit 1; }
	grep -Eq '^ +id +0x4c4c4d44$' /tmp/regdump || { echo "$c: bad ID"; cat /tmp/regdump; exit 1; }
	echo "$c: ID ok"
done
EOF

reset_test() {
	local rc
	section "system reset: reboot from the guest, cards come back"
	"${VM[@]}" --kernel debian --cards 4 --timeout "$T_DEBIAN" \
		--log "$LOGS/system-reset.log" --cmd "$RESET_CMD" </dev/null
	rc=$?
	if [ "$rc" -eq 0 ]; then
		add "system reset" 1 0 0
	else
		add "system reset" 0 1 0 "$(reason "$rc")"
	fi
	echo "log: ${LOGS#"$LLMDEV_TOP"/}/system-reset.log"
}

# Host tests: each executable prints KTAP; wrap them like run_tests.sh does.
host_tests() {
	local dir=$BUILD/host-tests t n=0 i=0 rc out=$LOGS/host-tests.log
	[ -d "$dir" ] || return 0
	local tests=()
	for t in "$dir"/*; do
		[ -f "$t" ] && [ -x "$t" ] && tests+=("$t")
	done
	[ ${#tests[@]} -gt 0 ] || return 0
	section "host tests (build/host-tests)"
	{
		echo "KTAP version 1"
		echo "1..${#tests[@]}"
		for t in "${tests[@]}"; do
			i=$((i + 1))
			(cd "$dir" && timeout 600 "$t") 2>&1 | sed 's/^/    /'
			rc=${PIPESTATUS[0]}
			case $rc in
			0) echo "ok $i ${t##*/}" ;;
			4) echo "ok $i ${t##*/} # SKIP" ;;
			*) echo "not ok $i ${t##*/} # exit $rc" ;;
			esac
		done
	} >"$out"
	"${VM[@]}" --parse-ktap "$out" --title "host tests" --counts "$LOGS/host.counts"
	read -r p f s <"$LOGS/host.counts"
	add "host tests" "$p" "$f" "$s"
}

# The OpenMetrics expositions the llmctl tests printed into LOG, through
# real parsers (scripts/openmetrics-check.py: prometheus_client's).
openmetrics_check() {
	local out=$LOGS/openmetrics.log rc
	"$LLMDEV_TOP/scripts/openmetrics-check.py" "$1" >"$out" 2>&1
	rc=$?
	if [ "$rc" -eq 4 ]; then
		add "openmetrics" 0 0 1 "$(grep -m1 SKIP "$out")"
		return
	fi
	"${VM[@]}" --parse-ktap "$out" --title "openmetrics" --counts "$LOGS/om.counts"
	read -r p f s <"$LOGS/om.counts"
	add "openmetrics (llmctl stats)" "$p" "$f" "$s"
}

t_start=$SECONDS
section "build"
ok_deps=0 ok_qemu=0 ok_debian=0 ok_debug=0 ok_trixie=0 ok_sid=0 ok_tests=0 ok_deb=0
step deps "$LLMDEV_TOP/scripts/deps.sh" && ok_deps=1
if [ $ok_deps = 1 ]; then
	step qemu "$LLMDEV_TOP/scripts/build-qemu.sh" && ok_qemu=1
	step lib make -C "$LLMDEV_TOP" lib
	case $KERNELS in *" debian "*)
		step kernel-debian "$LLMDEV_TOP/scripts/kernel.sh" debian &&
			step module-debian "$LLMDEV_TOP/scripts/build-module.sh" debian &&
			ok_debian=1 ;;
	esac
	case $KERNELS in *" debug "*)
		step kernel-debug "$LLMDEV_TOP/scripts/kernel.sh" debug &&
			step module-debug "$LLMDEV_TOP/scripts/build-module.sh" debug &&
			ok_debug=1 ;;
	*) add "selftests-debug" 0 0 1 "CHECK_KERNELS leaves it out" ;;
	esac
	# Debian 13's and unstable's kernels, fetched with a private apt
	for k in trixie sid; do
		case $KERNELS in *" $k "*)
			step "kernel-$k" "$LLMDEV_TOP/scripts/kernel.sh" "$k" &&
				step "module-$k" "$LLMDEV_TOP/scripts/build-module.sh" "$k" &&
				eval "ok_$k=1" ;;
		*) add "selftests-$k" 0 0 1 "CHECK_KERNELS leaves it out" ;;
		esac
	done
	step selftests make -C "$LLMDEV_TOP" selftests && ok_tests=1
	# each suite's kernel stays the one built for above: no refresh of the
	# private package lists (hourly) mid-run may switch a suite to a newer
	# kernel that has no module built
	export LLMDEV_APT_MAX_AGE=1000000000
fi

host_tests

if [ $ok_deps = 1 ]; then
	ktap_suite compat "$LLMDEV_TOP/scripts/compat.sh"
	ktap_suite dkms "$LLMDEV_TOP/scripts/dkms-test.sh"
	section "Debian packages (scripts/deb.sh)"
	if step deb "$LLMDEV_TOP/scripts/deb.sh"; then
		ok_deb=1
		add "deb: build, lintian" 1 0 0 "$(grep -c '^W: ' "$BUILD/deb/lintian.txt") lintian warning(s)"
		grep -E '^(W|I): ' "$BUILD/deb/lintian.txt" | sed 's/^/  /'
	fi
fi

# The hardware tests reach the cards through sysfs and need them without a
# driver; the driver tests need llmdev.ko loaded: one VM boot each.
HW_CMD="/llmdev/selftests/run_tests.sh 'llmdev_*'"
DRV_CMD="insmod /llmdev/modules/llmdev.ko && /llmdev/selftests/run_tests.sh 'driver_*'"
# (one run_tests.sh per VM run: the KTAP parser reads one document)
BIG_HW_CMD="/llmdev/selftests/run_tests.sh llmdev_enumerate llmdev_aperture llmdev_scrub llmdev_dma"
BIG_DRV_CMD="insmod /llmdev/modules/llmdev.ko && /llmdev/selftests/run_tests.sh driver_hbm driver_lib"
# three ranks need a ring of three cards: the default cabling of a 3-card VM
COLL3_CMD="insmod /llmdev/modules/llmdev.ko && /llmdev/selftests/run_tests.sh driver_coll"
# every DMA through an IOMMU (intel-iommu, iommu=strict)
# (what maps host memory for the card: plain and registered buffers,
# batches, the library, resets; collectives move HBM to HBM only)
IOMMU_CMD="insmod /llmdev/modules/llmdev.ko && LLMDEV_RESET_ROUNDS=10 /llmdev/selftests/run_tests.sh driver_dma driver_batch driver_hbm driver_lib driver_reset"
# the random-ioctl fuzzer while the last card is hot-unplugged (it leaves
# the VM a card short, so it has a boot of its own)
FUZZ_UNPLUG_CMD="insmod /llmdev/modules/llmdev.ko && LLMDEV_FUZZ_UNPLUG=1 /llmdev/selftests/run_tests.sh driver_fuzz"
# the random-ioctl fuzzer on two cards, where QEMU 7.2 without
# qemu/patches/0001 ended in an assertion in every run (a card reset on one
# vCPU while the other read or wrote a card register)
FUZZ2_CMD="insmod /llmdev/modules/llmdev.ko && /llmdev/selftests/run_tests.sh driver_fuzz"
# the debug kernel is ~10x slower: fewer reset rounds there, and AllReduce
# up to 1 Mi + 3 elements (the Debian, trixie and 3-card runs go to 16 Mi);
# and the KV pool's swaps (thousands of blocks a batch, with a fork, a close
# and a reset while they are in flight) under KASAN, lockdep and kmemleak
# (kv_unplug, which removes a card, runs on Debian's kernel)
DRV_DEBUG_CMD="insmod /llmdev/modules/llmdev.ko && LLMDEV_RESET_ROUNDS=20 LLMDEV_COLL_MAX_COUNT=1048579 /llmdev/selftests/run_tests.sh 'driver_*' kv_pool"
# the fallback to one shared MSI vector, for what interrupts drive
MSI_CMD="insmod /llmdev/modules/llmdev.ko msix=0 && /llmdev/selftests/run_tests.sh driver_dma driver_fault"
# and to the legacy INTx line (pci=nomsi): level-triggered, so a handler
# that leaves the card's line asserted gets "irq N: nobody cared"
INTX_CMD="insmod /llmdev/modules/llmdev.ko msix=0 && /llmdev/selftests/run_tests.sh driver_dma"
# all DMA through bounce buffers (swiotlb=force), as in a confidential
# guest: mapped in segments of at most 256 KiB, registered buffers too
SWIOTLB_CMD="insmod /llmdev/modules/llmdev.ko && /llmdev/selftests/run_tests.sh driver_batch"
# the KV pool of libllmdev (disk tier on ext2 on a loop device; kv_unplug
# removes the last card, last)
KV_CMD="insmod /llmdev/modules/llmdev.ko && /llmdev/selftests/run_tests.sh 'kv_*'"
# llmctl loads and unloads the driver itself; the no-cards cases need a VM
# without cards (the others skip there, with the reason)
LLMCTL_CMD="/llmdev/selftests/run_tests.sh 'llmctl*'"
# what operators' tools see: hwmon/sensors, perf, devlink, fdinfo, and
# those tools across a reset and an unplug (ops_unplug removes a card)
OPS_CMD="insmod /llmdev/modules/llmdev.ko && /llmdev/selftests/run_tests.sh 'ops_*'"
if [ $ok_qemu = 1 ] && [ $ok_tests = 1 ]; then
	if [ $ok_debian = 1 ]; then
		vm_suite "hw-debian" debian "$T_DEBIAN" "$HW_CMD"
		vm_suite "driver-debian" debian "$T_DEBIAN" "$DRV_CMD"
		vm_suite "driver-debian-msi" debian "$T_DEBIAN" "$MSI_CMD"
		vm_suite "driver-debian-intx" debian "$T_DEBIAN" "$INTX_CMD" --cards 2 --append pci=nomsi
		vm_suite "driver-debian-swiotlb" debian "$T_DEBIAN" "$SWIOTLB_CMD" --cards 2 --append swiotlb=force
		vm_suite "driver-iommu-debian" debian "$T_DEBIAN" "$IOMMU_CMD" --iommu
		vm_suite "coll3-debian" debian "$T_DEBIAN" "$COLL3_CMD" --cards 3
		vm_suite "llmctl-debian" debian "$T_DEBIAN" "$LLMCTL_CMD"
		openmetrics_check "$LOGS/llmctl-debian.log"
		vm_suite "kv-debian" debian "$T_DEBIAN" "$KV_CMD"
		vm_suite "llmctl-nocards-debian" debian "$T_DEBIAN" "$LLMCTL_CMD" --cards 0
		vm_suite "ops-debian" debian "$T_DEBIAN" "$OPS_CMD"
		# the largest HBM the tests use: 4 GiB cards, through the aperture,
		# the scrub engine, the allocator and DMA
		vm_suite "hw-4g-debian" debian "$T_DEBIAN" "$BIG_HW_CMD" --cards 2 --hbm-size 4G
		vm_suite "driver-4g-debian" debian "$T_DEBIAN" "$BIG_DRV_CMD" --cards 2 --hbm-size 4G
		vm_suite "fuzz-2cards-debian" debian "$T_DEBIAN" "$FUZZ2_CMD" --cards 2
	fi
	if [ $ok_debug = 1 ]; then
		# what runs driver code: the hardware tests (the model through
		# sysfs, no driver), the 3-card collectives and llmctl (the
		# driver's calls, run by driver_* here) gain nothing from KASAN
		# and lockdep that their Debian runs and driver_* do not give
		vm_suite "driver-debug" debug "$T_DEBUG" "$DRV_DEBUG_CMD"
		vm_suite "fuzz-unplug-debug" debug "$T_DEBUG" "$FUZZ_UNPLUG_CMD"
		vm_suite "ops-debug" debug "$T_DEBUG" "$OPS_CMD"
	fi
	# the newer kernels: the driver suite (links, collectives and netlink
	# included) and llmctl in one boot; on sid without driver_coll, which
	# the other kernels run (time)
	# (llmctl in a boot of its own, as on Debian's kernel: run after the
	# driver tests in one boot, llmctl doctor found a check failing)
	SID_CMD="insmod /llmdev/modules/llmdev.ko && /llmdev/selftests/run_tests.sh \$(/llmdev/selftests/run_tests.sh -l 'driver_*' | grep -vx driver_coll)"
	if [ $ok_trixie = 1 ]; then
		vm_suite "driver-trixie" trixie "$T_DEBIAN" "$DRV_CMD"
		vm_suite "llmctl-trixie" trixie "$T_DEBIAN" "$LLMCTL_CMD"
	fi
	if [ $ok_sid = 1 ]; then
		vm_suite "driver-sid" sid "$T_DEBIAN" "$SID_CMD"
		vm_suite "llmctl-sid" sid "$T_DEBIAN" "$LLMCTL_CMD"
	fi
	[ $ok_debian = 1 ] && [ $ok_deb = 1 ] && ktap_suite packages "$LLMDEV_TOP/scripts/pkg-test.sh"
	[ $ok_debian = 1 ] && reset_test
fi

section "summary ($((SECONDS - t_start)) s; logs in ${LOGS#"$LLMDEV_TOP"/})"
printf '%s\n' "${SUMMARY[@]}"
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped" | tee "$LOGS/summary"
[ "$FAILED" -eq 0 ]
