# llmdev: top-level targets. `make help` lists them.
#
# Every target that needs packages runs scripts/deps.sh first (a no-op when
# everything is installed; installs with apt as root otherwise). Caches of
# QEMU and the kernels live in ~/.cache/llmdev (keyed by their inputs),
# build outputs in build/.

SHELL         := /bin/bash
.DEFAULT_GOAL := help
TOP           := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD         := $(TOP)/build

KERNEL   ?= debian
CARDS    ?= 4
HBM_SIZE ?= 256M
CMD      ?=
FILE     ?=
TIMEOUT  ?=
# the guest command goes through the environment: no quoting trouble
export CMD

VM      := python3 $(TOP)/scripts/vm.py
VM_ARGS  = --kernel $(KERNEL) --cards $(CARDS) --hbm-size $(HBM_SIZE) \
	   $(if $(FILE),--file '$(FILE)') $(if $(TIMEOUT),--timeout $(TIMEOUT)) \
	   --log $(BUILD)/logs/vm-last.log

.PHONY: help deps qemu kernel module lib tools selftests hostctl initramfs vm demo bench-load \
	bench check compat deb clean modules_install install uninstall fuzz

help:
	@echo 'llmdev: PCIe driver stack for emulated FPGA LLM-inference cards'
	@echo
	@echo '  make demo         boot a VM with 4 cards: llmctl list, plan, load, route a model'
	@echo '  make check        build everything and run every test; ends with'
	@echo '                    "N passed, N failed, N skipped" (exit 0 iff none failed)'
	@echo '  make compat       build llmdev.ko (W=1, sparse) against the newest kernel of'
	@echo '                    Debian 11, 12, 13 and unstable: clean/warnings/errors each'
	@echo '      SUITES="..."  only these (bullseye bookworm trixie sid)'
	@echo '  make deb          Debian packages llmdev-dkms, libllmdev1, libllmdev-dev,'
	@echo '                    llmctl into build/deb/, checked with lintian'
	@echo '  make vm           interactive shell in a VM (Ctrl-A x kills it)'
	@echo "  make vm CMD='...' run one command in the VM; prints its output, fails"
	@echo '                    if it fails (make says "Error <status>"; for the exact'
	@echo '                    status use scripts/vm.py --cmd ... directly)'
	@echo '      CARDS=n       number of cards (default 4)'
	@echo '      KERNEL=debian|debug|trixie|sid  guest kernel (default debian, Debian'
	@echo "                    12's; debug = KASAN, lockdep, kmemleak: slower; trixie,"
	@echo "                    sid = Debian 13's and unstable's newest)"
	@echo '      HBM_SIZE=256M HBM per card'
	@echo '      FILE=path     attach a file read-only as the guest disk /dev/vda'
	@echo '      TIMEOUT=s     kill the VM after s seconds (default 600 with CMD)'
	@echo
	@echo '  make bench        the benchmark (docs/bench.md): null ioctl, the model'"'"'s copy'
	@echo '                    ceiling, DMA, AllReduce (links paced at BENCH_LINK_GBPS,'
	@echo '                    default 8, and unpaced), llmctl load beside an O_DIRECT'
	@echo '                    read; build/bench/results.json and the targets of issue 10'
	@echo '  make bench-load   llmctl load of a 795 MB model on 4 cards beside an O_DIRECT'
	@echo '                    read and cat of the file (BENCH_LOAD_RUNS rounds, medians)'
	@echo '  make fuzz         the long fuzz runs: the random-ioctl and netlink fuzzers'
	@echo '                    (FUZZ_SECONDS each, default 2400), the fault-injection'
	@echo '                    sweeps and the fuzzer under a hot-unplug, on the debug'
	@echo '                    kernel; then the GGUF reader fuzzer (GGUF_FUZZ_SECONDS)'
	@echo
	@echo '  make deps         install the Debian packages needed (root)'
	@echo '  make qemu         build QEMU with the card model'
	@echo '  make kernel       fetch/build the guest kernel (KERNEL=debian|debug|trixie|sid)'
	@echo '  make module       build llmdev.ko for the guest kernel (KERNEL=...)'
	@echo '  make lib          build libllmdev (shared, static, pkg-config) into build/lib'
	@echo '  make tools        build the userspace tools into build/bin'
	@echo '  make selftests    build the in-VM tests and tools into build/'
	@echo '  make modules_install  build and install llmdev.ko for the running kernel'
	@echo '                    (KDIR=/lib/modules/$$(uname -r)/build)'
	@echo '  make install      install libllmdev: library, headers, llmdev.pc, man3 pages'
	@echo '                    (DESTDIR=, PREFIX=/usr/local, LIBDIR=$$PREFIX/lib;'
	@echo '                    ldconfig when DESTDIR is empty and run as root)'
	@echo '  make uninstall    remove what make install installed (the same variables)'
	@echo '  make initramfs    build the guest initramfs for KERNEL'
	@echo '  make clean        remove build/ (the caches in ~/.cache/llmdev stay)'
	@echo
	@echo 'More: README.md; scripts/vm.py --help.'

deps:
	@$(TOP)/scripts/deps.sh

qemu: deps
	@$(TOP)/scripts/build-qemu.sh >/dev/null

kernel: deps
	@$(TOP)/scripts/kernel.sh $(KERNEL) >/dev/null

module: deps
	@$(TOP)/scripts/build-module.sh $(KERNEL) >/dev/null

lib: deps
	@$(MAKE) -s --no-print-directory -C $(TOP)/lib O=$(BUILD)

tools: lib
	@$(MAKE) -s --no-print-directory -C $(TOP)/tools O=$(BUILD)

selftests: deps tools
	@ksft=$$($(TOP)/scripts/linux-src.sh)/tools/testing/selftests && \
	$(MAKE) -s --no-print-directory -C $(TOP)/selftests O=$(BUILD) KSFT_INC=$$ksft && \
	$(MAKE) -s --no-print-directory -C $(TOP)/selftests/driver O=$(BUILD) KSFT_INC=$$ksft && \
	$(MAKE) -s --no-print-directory -C $(TOP)/selftests/kv O=$(BUILD) KSFT_INC=$$ksft

# Out-of-tree install on a real host (DKMS users: see dkms.conf).
KDIR ?= /lib/modules/$(shell uname -r)/build
modules_install:
	$(MAKE) -C $(KDIR) M=$(TOP) modules
	$(MAKE) -C $(KDIR) M=$(TOP) INSTALL_MOD_DIR=extra modules_install

install:
	$(MAKE) -C $(TOP)/lib O=$(BUILD) install

uninstall:
	$(MAKE) -C $(TOP)/lib O=$(BUILD) uninstall

hostctl: deps
	@mkdir -p $(BUILD)/bin
	gcc -static -Wall -Wextra -Werror -O2 -o $(BUILD)/bin/hostctl $(TOP)/selftests/vm/hostctl.c

initramfs: kernel selftests
	@eval "$$($(TOP)/scripts/kernel.sh $(KERNEL))" && \
	$(TOP)/scripts/mkinitramfs.sh base "$$KVER" "$$MODDIR"

vm: qemu kernel module selftests
	@$(VM) $(VM_ARGS) $(if $(CMD),--cmd "$$CMD")

# What `make demo` shows, in the guest (busybox sh): the cards, the driver
# and its links, then a generated llama-shaped model planned over 4 cards
# as tp 2 x pp 2, loaded (verified), routed, and one AllReduce. The cards
# are cabled as a ring 0-1-2-3-0; without --cards llmctl picks the order
# 0,1,3,2, which puts each pipeline step (0->3, 1->2) on a direct link.
define DEMO_CMD
step() { echo; echo "== $$*"; "$$@" || { echo "demo: '$$*' failed (exit $$?)"; exit 2; }; }
M=/tmp/demo.gguf
step llmctl list
step llmctl driver load
step llmctl driver status
step llmctl list
step llmctl link show
step gguf-gen -o $$M --layers 8 --embd 512 --heads 8 --ff 1408 --vocab 8192 --type q8_0
L="--tp 2 --pp 2"
step llmctl shard plan $$M $$L
step llmctl load $$M $$L --verify
step llmctl shard apply $$M $$L
step llmctl shard show
step llmdev-bench --only allreduce -r 4 -S 4M -t 0.5
step llmctl stats llmdev0
step llmctl link show llmdev0
step llmctl info llmdev3
endef
export DEMO_CMD

demo: qemu kernel module selftests
	@$(VM) --kernel $(KERNEL) --cards 4 --hbm-size $(HBM_SIZE) \
		--log $(BUILD)/logs/demo.log --cmd "$$DEMO_CMD"

# The benchmark (docs/bench.md): llmdev-bench in two VM runs of 4 cards
# with 1 GiB of HBM each, on the Debian kernel (never the debug one): the
# clock and a null ioctl, the card model's copy ceiling, DMA, AllReduce
# with the links unpaced, and `llmctl load` of a generated 795 MB model
# (q8_0, 12 layers, embd 2048, vocab 32000) on 4 cards as tp 2 x pp 2
# beside an O_DIRECT read of the same file (the guest's /dev/vda); then
# AllReduce with the links paced at BENCH_LINK_GBPS. Writes
# build/bench/results.json (llmdev.bench/1), prints the figures and the
# targets of issue 10. BENCH_ARGS: extra llmdev-bench options.
BENCH_MODEL     := $(BUILD)/bench/llama-795M-q8_0.gguf
BENCH_LINK_GBPS ?= 8
BENCH_ARGS      ?=

# `llmctl load` throughput for a generated 795 MB model (q8_0, 12 layers,
# embd 2048, vocab 32000) on 4 cards of 1 GiB as tp 2 x pp 2, beside an
# O_DIRECT sequential read of the same file (the ceiling: busybox dd with
# iflag=direct, 8 MiB reads) and `cat` of it (buffered reads), in the same
# VM; the file is the guest's /dev/vda and the page cache is dropped before
# each read. BENCH_LOAD_RUNS rounds (default 3), each timing all three
# (wall time of the command, busybox time, 10 ms resolution), then their
# medians; after each timed load the same load runs untimed with --verify
# (the regions it made read back and compared with the file; the target
# fails if they differ), then the regions are unloaded.
BENCH_LOAD_RUNS ?= 3
define BENCH_LOAD_CMD
insmod /llmdev/modules/llmdev.ko && sleep 0.2 || exit 2
size=$$(blockdev --getsize64 /dev/vda)
rm -f /tmp/bl.*
# t NAME CMD...: CMD with a cold page cache; its times, and the wall time kept in /tmp/bl.NAME
t() {
	n=$$1; shift
	sync; echo 3 >/proc/sys/vm/drop_caches
	time -f '%e %U %S' -o /tmp/bl.t "$$@" || { echo "bench-load: '$$*' failed"; exit 2; }
	read -r e u s </tmp/bl.t
	echo "real $$e s  user $$u s  sys $$s s"
	echo "$$e" >>/tmp/bl.$$n
}
i=1
while [ $$i -le $(BENCH_LOAD_RUNS) ]; do
	echo "== round $$i of $(BENCH_LOAD_RUNS)"
	echo "== time dd if=/dev/vda of=/dev/null bs=8M iflag=direct"
	t direct dd if=/dev/vda of=/dev/null bs=8M iflag=direct 2>/dev/null
	echo "== time cat /dev/vda >/dev/null"
	t cat sh -c 'cat /dev/vda >/dev/null'
	echo "== llmctl load /dev/vda --tp 2 --pp 2 -v"
	t load sh -c 'llmctl load /dev/vda --tp 2 --pp 2 -v </dev/null >/tmp/bl.out 2>&1' ||
		{ cat /tmp/bl.out; exit 2; }
	tail -n 8 /tmp/bl.out
	echo "== llmctl load /dev/vda --tp 2 --pp 2 -v --verify (untimed)"
	llmctl load /dev/vda --tp 2 --pp 2 -v --verify </dev/null >/tmp/bl.out 2>&1 ||
		{ cat /tmp/bl.out; echo "bench-load: round $$i: the cards do not hold the model"; exit 2; }
	tail -n 1 /tmp/bl.out
	llmctl unload /dev/vda >/dev/null || exit 2
	i=$$((i + 1))
done
med() { sort -n /tmp/bl.$$1 | awk '{ v[NR] = $$1 } END { print v[int((NR + 1) / 2)] }'; }
d=$$(med direct) c=$$(med cat) l=$$(med load)
echo "== median of $(BENCH_LOAD_RUNS) rounds, $$size bytes"
awk -v b=$$size -v d=$$d -v c=$$c -v l=$$l 'BEGIN {
	printf "O_DIRECT read (dd bs=8M iflag=direct)  %6.2f s  %7.1f MB/s\n", d, b / d / 1e6
	printf "cat (buffered read)                    %6.2f s  %7.1f MB/s  %.2fx O_DIRECT\n", c, b / c / 1e6, d / c
	printf "llmctl load --tp 2 --pp 2              %6.2f s  %7.1f MB/s  %.2fx O_DIRECT\n", l, b / l / 1e6, d / l
}'
endef
export BENCH_LOAD_CMD

$(BENCH_MODEL): | tools
	@mkdir -p $(dir $@)
	$(BUILD)/bin/gguf-gen -o $@.tmp --layers 12 --embd 2048 --heads 16 --ff 5632 \
		--vocab 32000 --type q8_0 --seed 7 && mv $@.tmp $@

ifneq ($(filter bench,$(MAKECMDGOALS)),)
ifneq ($(KERNEL),debian)
$(error make bench runs on the Debian kernel only, not KERNEL=$(KERNEL))
endif
endif
bench: qemu kernel module selftests $(BENCH_MODEL)
	@python3 $(TOP)/scripts/bench.py --kernel debian --model $(BENCH_MODEL) \
		--link-gbps $(BENCH_LINK_GBPS) $(if $(BENCH_ARGS),--bench-args '$(BENCH_ARGS)')

bench-load: qemu kernel module selftests $(BENCH_MODEL)
	@$(VM) --kernel $(KERNEL) --cards 4 --hbm-size 1G --file $(BENCH_MODEL) \
		--log $(BUILD)/logs/bench-load.log --cmd "$$BENCH_LOAD_CMD"

check:
	@$(TOP)/scripts/check.sh

SUITES ?=
compat: deps
	@$(TOP)/scripts/compat.sh $(SUITES)

deb: deps
	@$(TOP)/scripts/deb.sh

clean:
	rm -rf $(BUILD)

# Long fuzz runs, outside make check (which runs a 20 s slice of each).
# The counts of calls and messages are in build/logs/fuzz-*.log.
FUZZ_SECONDS      ?= 2400
GGUF_FUZZ_SECONDS ?= 600
fuzz: qemu selftests
	@$(TOP)/scripts/kernel.sh debug >/dev/null && $(TOP)/scripts/build-module.sh debug >/dev/null
	$(VM) --kernel debug --cards 4 --timeout $$(( $(FUZZ_SECONDS) * 3 + 1800 )) --ktap \
		--log $(BUILD)/logs/fuzz-debug.log \
		--cmd "insmod /llmdev/modules/llmdev.ko && LLMDEV_SWEEP_PROBE=1 LLMDEV_FUZZ_SECONDS=$(FUZZ_SECONDS) /llmdev/selftests/run_tests.sh driver_fuzz"
	$(VM) --kernel debug --cards 4 --timeout $$(( $(FUZZ_SECONDS) * 2 + 1800 )) --ktap \
		--log $(BUILD)/logs/fuzz-unplug-debug.log \
		--cmd "insmod /llmdev/modules/llmdev.ko && LLMDEV_FUZZ_UNPLUG=1 LLMDEV_FUZZ_SECONDS=$$(( $(FUZZ_SECONDS) / 4 )) /llmdev/selftests/run_tests.sh driver_fuzz"
	$(MAKE) -s --no-print-directory -C $(TOP)/tools O=$(BUILD) fuzz
	GGUF_FUZZ_SECONDS=$(GGUF_FUZZ_SECONDS) $(BUILD)/host-tests/gguf_fuzz_smoke
