#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Boot the llmdev test VM (QEMU, TCG) with emulated cards and run a command.

The guest is a busybox initramfs (scripts/mkinitramfs.sh, /init from
selftests/vm/init). The command runs as root with its output on the serial
console; the guest then prints "LLMDEV-EXIT <rc>" and powers off. Without
--cmd, the console is connected to the terminal (interactive shell; Ctrl-A x
kills the VM).

Guest layout: /llmdev/selftests (tests), /llmdev/bin (tools, hostctl; on
PATH), /llmdev/modules (driver modules for this kernel), /llmdev/vm.conf
(CARDS=, HBM_SIZE=, KERNEL=, KVER=, CABLES=, LINK_GBPS=,
BOOT=).

Exit status:
  the guest command's exit status (from the LLMDEV-EXIT line), except
  3    the kernel reported a problem (WARNING, BUG, Oops, KASAN, lockdep,
       kmemleak leak, Call Trace, panic, hung task, soft lockup); the reports
       are printed at the end
  124  timeout
  125  the run failed otherwise (QEMU failed or exited without the exit
       line, too many reboots, the boot stalled)
  130  interrupted

A guest kernel that fails while booting, before the command starts (a
kernel report with nothing of llmdev in the boot, or no console output for
120 s), boots once more; the first attempt stays in the log and on stderr.

hostctl: the guest's second serial port (/dev/ttyS1) is relayed by this
runner to QEMU's QMP socket (see selftests/vm/hostctl.c): a guest can run
`hostctl hmp 'device_del llmdev3'`, `hostctl qmp '{...}'`, `hostctl
boot-count`. A reset (e.g. `hostctl hmp system_reset`) reboots the guest,
which re-runs the command with BOOT=2 in vm.conf; more than 3 boots stop
the VM.
"""
import argparse
import glob
import io
import json
import os
import re
import resource
import selectors
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import types

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_BOOTS = 3
# Seconds without console output, before /init starts the command, after
# which the guest kernel is taken to have stopped while booting (a healthy
# boot prints within a few seconds, the debug kernel's too).
BOOT_STALL_S = 120
SENTINEL = re.compile(r'LLMDEV-EXIT (\d+)\s*$')
HMP_ERROR = re.compile(r'(Error: |unknown command: )')
BOOT_MARKER = re.compile(r'^LLMDEV-BOOT \d+\s*$')   # /init: the command starts

RC_KERNEL_REPORT = 3
RC_TIMEOUT = 124
RC_FAILED = 125
RC_INTERRUPTED = 130

# --------------------------------------------------------------------------
# Kernel problem reports in the console

# A kernel log line on the console carries a printk timestamp (printk.time=1
# is on the command line); requiring it keeps user-space output that merely
# mentions "BUG:" from counting. kmemleak's report is read from debugfs by
# the guest /init, so its lines have no timestamp.
_KMSG = r'\[\s*\d+\.\d+\]\s.*?'
REPORT_PATTERNS = [
    ('panic', _KMSG + r'Kernel panic - not syncing'),
    ('lockdep', _KMSG + r'(possible circular locking|inconsistent lock state|'
     r'possible recursive locking|bad unlock balance|suspicious RCU usage|'
     r'held lock freed|lock held when returning to user space|'
     r'possible irq lock inversion|Invalid wait context)'),
    ('kasan', _KMSG + r'(BUG: KASAN|KASAN:)'),
    ('ubsan', _KMSG + r'UBSAN:'),
    ('sleep-in-atomic', _KMSG + r'BUG: (sleeping function|scheduling while atomic)'),
    ('soft-lockup', _KMSG + r'(soft lockup|hard LOCKUP|BUG: workqueue lockup)'),
    ('hung-task', _KMSG + r'INFO: task \S+ blocked for more than'),
    ('rcu-stall', _KMSG + r'rcu: INFO: \S+ detected( expedited)? stalls'),
    ('bug', _KMSG + r'(BUG: |kernel BUG at )'),
    ('oops', _KMSG + r'(Oops: |general protection fault|invalid opcode: )'),
    ('warning', _KMSG + r'WARNING: (CPU: \d+ PID: \d+|at )'),
    ('kmemleak', r'(kmemleak: \d+ new suspected memory leaks|unreferenced object 0x[0-9a-f]+)'),
    ('call-trace', _KMSG + r'Call Trace:'),
]
_REPORT_RES = [(c, re.compile(p)) for c, p in REPORT_PATTERNS]
# A test that injects allocation failures on purpose (fail-nth) says so on
# the kernel log; between the markers, the warnings the kernel prints for a
# failed allocation (and their call traces) are the expected effect, not a
# report. Anything else still is.
_INJECT_MARK = re.compile(r'llmdev-selftest: fault injection (on|off)')
_INJECTED_FAILURE = re.compile(_KMSG + r'(page allocation failure|vmalloc error):')
_REPORT_END = re.compile(r'---\[ end (trace|Kernel panic)|^\s*$')
REPORT_CONTEXT = 40  # lines kept after a report's first line


def classify_report(line):
    """The report category of a console line, or None."""
    for cat, rx in _REPORT_RES:
        if rx.search(line):
            return cat
    return None


class ReportScanner:
    """Collects kernel reports from console lines, fed one at a time.

    Lines that match within an open report (its context window, until an
    "---[ end trace" line) add their category to it instead of opening a new
    one: a WARNING and its "Call Trace:" are one report.
    """

    def __init__(self, ignore=()):
        self.reports = []      # dicts: categories, lines
        self.hits = {}         # category -> number of matching lines
        self.ignore = [re.compile(x) for x in ignore]
        self._open = None
        self._injecting = False    # between fault-injection markers
        self._swallow = False      # the next trace is an injected failure's
        self.injected = 0          # injected failures seen

    def feed(self, line):
        m = _INJECT_MARK.search(line)
        if m:
            self._injecting = m.group(1) == 'on'
            self._swallow = False
        if self._injecting and _INJECTED_FAILURE.search(line):
            self._swallow = True
            self.injected += 1
            return None
        cat = classify_report(line)
        if cat and any(rx.search(line) for rx in self.ignore):
            cat = None
        if cat == 'call-trace' and self._swallow and self._open is None:
            # the trace of an injected failure: collect it, do not report it
            self._swallow = False
            self._open = {'categories': [cat], 'lines': [line], 'ignored': True}
            return None
        rep = self._open
        if rep is not None and rep.get('ignored') and cat and cat != 'call-trace':
            # a real report in the middle of an injected failure's trace
            self._open = rep = None
        if rep is not None:
            rep['lines'].append(line)
            if cat and cat not in rep['categories']:
                rep['categories'].append(cat)
            if cat and not rep.get('ignored'):
                self.hits[cat] = self.hits.get(cat, 0) + 1
            if SENTINEL.search(line) or BOOT_MARKER.search(line):
                rep['lines'].pop()     # runner protocol, not part of the report
                self._open = None
            elif len(rep['lines']) > REPORT_CONTEXT or (
                    len(rep['lines']) > 1 and _REPORT_END.search(line)):
                self._open = None
            return cat
        if cat:
            self.hits[cat] = self.hits.get(cat, 0) + 1
            self._open = {'categories': [cat], 'lines': [line]}
            self.reports.append(self._open)
        return cat

    def summary(self):
        return ', '.join('%s x%d' % (c, n) for c, n in self.hits.items())


_OUR_CODE = re.compile(r'llmdev')


def failed_booting(lines, ignore=()):
    """The guest kernel failed while it booted, before /init started the
    command, and not in anything of ours: the summary of its reports, or
    None. Ours would be llmdev.ko (named in an oops's "Modules linked in:"
    and in its call trace) or anything the command runs; none has run yet.
    Any line of the boot that names llmdev is taken for ours. Such a
    failure is the emulator's or the distribution kernel's: under
    TCG the kernel's boot-time patching of its own text (int3 breakpoints
    in text_poke_bp) very rarely traps, as an "Oops: int3" in code that
    was being patched."""
    sc = ReportScanner(ignore)
    for line in lines:
        if BOOT_MARKER.search(line):
            break
        if _OUR_CODE.search(line):
            return None
        sc.feed(line)
    return sc.summary() if sc.reports else None


# --------------------------------------------------------------------------
# KTAP

_KTAP_HDR = re.compile(r'^(KTAP|TAP) version \d+')
_KTAP_PLAN = re.compile(r'^1\.\.(\d+)')
_KTAP_TOP = re.compile(r'^(not )?ok (\d+)\b ?(.*)$')
_KTAP_LEAF = re.compile(r'^    (not )?ok (\d+)\b ?(.*)$')


def _ktap_status(notok, rest):
    """'pass', 'fail' or 'skip' for a result line."""
    _, _, directive = rest.partition('#')
    d = directive.strip().upper()
    if d.startswith('SKIP'):
        return 'skip'
    if d.startswith('XFAIL'):
        return 'pass'
    return 'fail' if notok else 'pass'


def _ktap_name(rest):
    return rest.partition(' #')[0].strip() or '?'


def parse_ktap(lines):
    """Sum up the KTAP printed by selftests/run_tests.sh.

    Expected shape: a top-level "KTAP version 1", "1..N" and one
    "ok N name" / "not ok N name" per test binary, each preceded by that
    binary's own TAP indented by 4 spaces. Counting rules:
      - leaves are the indented result lines "    (not )?ok N ..."; a leaf
        with "# SKIP" is skipped, "not ok" failed, "ok" passed;
      - a top-level "not ok" without a failing leaf counts one failure
        (the binary crashed or failed outside a test);
      - a top-level result without leaves counts as one pass/fail/skip;
      - fewer top-level results than the plan: each missing one fails.
    Parsing starts at the last top-level version line (an earlier boot's
    output is ignored). Returns a dict: passed, failed, skipped, tests
    (list of dicts name/status/passed/failed/skipped/failures), problems.
    """
    lines = [l.rstrip('\r\n') for l in lines]
    start = 0
    for i, l in enumerate(lines):
        if _KTAP_HDR.match(l):
            start = i
    res = {'passed': 0, 'failed': 0, 'skipped': 0, 'tests': [], 'problems': []}
    plan = None
    leaves = []
    seen_any = False

    def add(kind, n=1):
        res[{'pass': 'passed', 'fail': 'failed', 'skip': 'skipped'}[kind]] += n

    for l in lines[start:]:
        m = _KTAP_LEAF.match(l)
        if m:
            leaves.append((_ktap_status(m.group(1), m.group(3)), _ktap_name(m.group(3))))
            continue
        m = _KTAP_TOP.match(l)
        if m:
            seen_any = True
            top = _ktap_status(m.group(1), m.group(3))
            t = {'name': _ktap_name(m.group(3)), 'status': top,
                 'passed': 0, 'failed': 0, 'skipped': 0, 'failures': []}
            for st, name in leaves:
                t[{'pass': 'passed', 'fail': 'failed', 'skip': 'skipped'}[st]] += 1
                add(st)
                if st == 'fail':
                    t['failures'].append(name)
            if not leaves:
                t[{'pass': 'passed', 'fail': 'failed', 'skip': 'skipped'}[top]] += 1
                add(top)
            elif top == 'fail' and not t['failures']:
                t['failed'] += 1
                t['failures'].append('(exited with an error outside any test)')
                add('fail')
            res['tests'].append(t)
            leaves = []
            continue
        m = _KTAP_PLAN.match(l)
        if m and plan is None:
            plan = int(m.group(1))
            seen_any = True
    if leaves:  # output of a binary that never got its result line
        t = {'name': '(unfinished)', 'status': 'fail', 'passed': 0, 'failed': 0,
             'skipped': 0, 'failures': []}
        for st, name in leaves:
            t[{'pass': 'passed', 'fail': 'failed', 'skip': 'skipped'}[st]] += 1
            add(st)
            if st == 'fail':
                t['failures'].append(name)
        res['tests'].append(t)
    if not seen_any:
        res['problems'].append('no KTAP output')
        add('fail')
    elif plan is not None and len(res['tests']) < plan:
        missing = plan - len([t for t in res['tests'] if t['name'] != '(unfinished)'])
        if missing > 0:
            res['problems'].append('%d of %d test results missing (crash or timeout)'
                                   % (missing, plan))
            add('fail', missing)
    return res


def colours(stream=sys.stdout):
    if os.environ.get('CI') == 'true' or os.environ.get('NO_COLOR') or not stream.isatty():
        return {'red': '', 'green': '', 'yellow': '', 'bold': '', 'off': ''}
    return {'red': '\033[31m', 'green': '\033[32m', 'yellow': '\033[33m',
            'bold': '\033[1m', 'off': '\033[0m'}


def format_ktap(res, title=None):
    """Human-readable summary of parse_ktap()'s result, ending with the
    'N passed, N failed, N skipped' line."""
    c = colours()
    out = []
    if title:
        out.append('%s== %s ==%s' % (c['bold'], title, c['off']))
    for t in res['tests']:
        if t['failed']:
            word = c['red'] + 'FAIL' + c['off']
        elif t['passed']:
            word = c['green'] + 'PASS' + c['off']
        else:
            word = c['yellow'] + 'SKIP' + c['off']
        out.append('  %s %-28s %3d passed, %d failed, %d skipped'
                   % (word, t['name'], t['passed'], t['failed'], t['skipped']))
        for f in t['failures']:
            out.append('         failed: %s' % f)
    for p in res['problems']:
        out.append('  %sFAIL%s %s' % (c['red'], c['off'], p))
    out.append('%d passed, %d failed, %d skipped' % (res['passed'], res['failed'], res['skipped']))
    return '\n'.join(out)


# --------------------------------------------------------------------------
# hostctl line protocol (see selftests/vm/hostctl.c)

def hc_escape(s):
    return s.replace('\\', '\\\\').replace('\n', '\\n').replace('\r', '\\r')


def hc_unescape(s):
    return re.sub(r'\\(.)', lambda m: {'n': '\n', 'r': '\r'}.get(m.group(1), m.group(1)), s)


# --------------------------------------------------------------------------
# The runner

def parse_size(s):
    m = re.fullmatch(r'(\d+)([KMGT]?)i?B?', s.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError('bad size %r (e.g. 256M, 1G)' % s)
    return int(m.group(1)) << {'': 0, 'K': 10, 'M': 20, 'G': 30, 'T': 40}[m.group(2).upper()]


CABLE_RE = re.compile(r'(\d+)\.([0-3])-(\d+)\.([0-3])')


def parse_cables(spec, cards):
    """'0.0-1.1,1.0-2.1' -> [(0, 0, 1, 1), (1, 0, 2, 1)]; raises ValueError."""
    cables, used = [], set()
    for item in spec.split(','):
        item = item.strip()
        m = CABLE_RE.fullmatch(item)
        if not m:
            raise ValueError('bad cable %r (CARD.PORT-CARD.PORT, ports 0-3)' % item)
        a, pa, b, pb = (int(x) for x in m.groups())
        for card in (a, b):
            if card >= cards:
                raise ValueError('cable %s: no card %d (%d cards)' % (item, card, cards))
        if a == b:
            raise ValueError('cable %s: a cable must lead to another card' % item)
        for end in ((a, pa), (b, pb)):
            if end in used:
                raise ValueError('cable %s: card %d port %d already has a cable' % (item, *end))
            used.add(end)
        cables.append((a, pa, b, pb))
    return cables


def cable_props(spec, cards):
    """{card: {port: 'llmdevB.Q'}}: each cable is given on its first end."""
    props = {}
    for a, pa, b, pb in parse_cables(spec, cards):
        props.setdefault(a, {})[pa] = 'llmdev%d.%d' % (b, pb)
    return props


def shell_vars(text):
    """KEY=value lines as printed by scripts/kernel.sh (printf %q)."""
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition('=')
        if sep and re.fullmatch(r'[A-Z_]+', k):
            out[k] = ' '.join(shlex.split(v)) if v else ''
    return out


def allow_core():
    """In QEMU's child: a crash dumps core (crash_report() reads it), as
    large as the hard limit allows."""
    _, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def run_script(*argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        sys.exit('vm: %s failed (exit %d)' % (' '.join(argv), p.returncode))
    return p.stdout


class Run:
    def __init__(self, args, attempt=1):
        self.args = args
        self.attempt = attempt     # 2: booting again (failed_booting(), a stall)
        self.interactive = args.cmd is None
        self.boots = 0             # boots registered by /init
        self.started = False       # the first boot's command has started
        self.last_console = None   # when console output last came
        self.boot_stalled = False  # no output for BOOT_STALL_S before it
        self.resets = 0
        self.guest_rc = None
        self.failure = None        # reason the run failed at the runner level
        self.timed_out = False
        self.scanner = ReportScanner(args.ignore_report or ())
        self.console_lines = []
        self._partial = b''
        self.qemu = None
        self.qemu_eof = False
        self.tmp = None
        self.log = None
        self.log_bol = True        # the log ends with a whole line
        self.sel = selectors.DefaultSelector()
        self.conns = {}            # name -> socket
        self.qmp_buf = b''
        self.qmp_ready = False
        self.qmp_out = []          # queued before the greeting
        self.qmp_pending = {}      # id -> callback(reply)
        self.qmp_seq = 0
        self.hc_buf = b''
        self.stop_at = None        # wall-clock deadline for a stop (grace)
        self.stop_reason = None
        self.tty_saved = None
        self.esc = False
        self.quit_requested = False
        # with --cmd, the console is echoed from the command's start on
        self.hide = not (self.interactive or args.show_boot)

    # ---- output
    def log_write(self, text, ours=True):
        """Append to the log. A line of ours (not the console's) starts a
        line of its own, even after console output that did not end one."""
        if not text:
            return
        if ours and not self.log_bol:
            text = '\n' + text
        self.log.write(text)
        self.log_bol = text.endswith('\n')

    def say(self, msg):
        line = 'vm: %s' % msg
        sys.stderr.write(line + ('\r\n' if self.tty_saved else '\n'))
        sys.stderr.flush()
        if self.log:
            self.log_write(line + '\n')
            self.log.flush()

    # ---- setup
    def prepare(self):
        a = self.args
        qemu = os.environ.get('QEMU') or run_script(os.path.join(TOP, 'scripts/build-qemu.sh')).strip()
        k = shell_vars(run_script(os.path.join(TOP, 'scripts/kernel.sh'), a.kernel))
        for key in ('KVER', 'KIMAGE', 'MODDIR'):
            if not k.get(key):
                sys.exit('vm: scripts/kernel.sh %s did not print %s' % (a.kernel, key))
        base = run_script(os.path.join(TOP, 'scripts/mkinitramfs.sh'), 'base',
                          k['KVER'], k['MODDIR']).strip()
        self.kver = k['KVER']
        self.tmp = tempfile.mkdtemp(prefix='llmdev-vm-')
        # per-run files
        stage = os.path.join(self.tmp, 'run')
        os.makedirs(os.path.join(stage, 'llmdev'))
        with open(os.path.join(stage, 'llmdev/vm.conf'), 'w') as f:
            f.write('CARDS=%d\nHBM_SIZE=%d\nKERNEL=%s\nKVER=%s\nCABLES=%s\nLINK_GBPS=%d\n'
                    % (a.cards, a.hbm_size, a.kernel, self.kver, a.cables or '',
                       a.link_gbps if a.link_gbps is not None else 100))
        if a.cmd is not None:
            with open(os.path.join(stage, 'llmdev/cmd'), 'w') as f:
                f.write(a.cmd + '\n')
        for d in a.overlay or ():
            # files over the base image (e.g. installed packages), this run only
            shutil.copytree(d, stage, symlinks=True, dirs_exist_ok=True)
        runcpio = os.path.join(self.tmp, 'run.cpio')
        run_script(os.path.join(TOP, 'scripts/mkinitramfs.sh'), 'run', stage, runcpio)
        initrd = os.path.join(self.tmp, 'initrd')
        with open(initrd, 'wb') as out:
            with open(base, 'rb') as f:
                shutil.copyfileobj(f, out)
            out.write(b'\0' * (-out.tell() % 4))   # next archive 4-byte aligned
            with open(runcpio, 'rb') as f:
                shutil.copyfileobj(f, out)

        # loglevel=5: KERN_WARNING and more severe reach the console (WARN(),
        # lockdep and hung-task reports are KERN_WARNING), routine boot
        # messages (NOTICE, INFO) do not.
        sercon = os.path.join(self.tmp, 'sercon-port')
        with open(sercon, 'wb') as f:
            f.write(b'\0\0')
        append = ['console=ttyS0,115200', 'loglevel=5', 'printk.time=1', 'panic=0',
                  'rdinit=/init', 'edd=off', 'mitigations=off', 'no_timer_check',
                  'trace_clock=global',
                  # the fault-injection tests map BAR 0 from sysfs while the
                  # driver holds it (Debian has CONFIG_IO_STRICT_DEVMEM)
                  'iomem=relaxed']
        if a.clocksource == 'tsc':
            # Under TCG the kernel's boot-time TSC sync check calls the vCPUs'
            # TSCs unsynchronized and falls back to the HPET, whose every
            # read is an MMIO exit under QEMU's global lock (about 1.2 us a
            # clock_gettime() against 71 ns with the TSC). Forced, the TSC
            # kept order across the vCPUs: 25 million clock_gettime() calls
            # from 2 CPUs serialized by a lock, none went backwards, and a
            # 2 s sleep measured 2.002 s. --clocksource hpet: the kernel's
            # own choice.
            append += ['clocksource=tsc', 'tsc=reliable']
        if a.iommu:
            # every DMA of the cards goes through the IOMMU, and every unmap
            # is flushed at once: a stale bus address faults
            append += ['intel_iommu=on', 'iommu=strict']
        if a.append:
            append.append(a.append)
        # The vCPU has no ERMS/FSRM: TCG runs rep movsb/stosb a byte per
        # iteration, and with those flags the guest's memcpy, memset and
        # copy_{to,from}_user use them for everything; without, rep movsq
        # and stosq, 8 bytes an iteration. Measured: a 1000-op DMA batch's
        # submit call (48 KB of ops copied in, 32 KB of descriptors zeroed)
        # 0.87-0.93 ms against 1.6-1.8 ms.
        cpu = 'max,la57=off,erms=off,fsrm=off'
        self.cmdline = [
            # guest RAM and HBM stay out of a core dump (crash_report())
            qemu, '-M', 'q35,dump-guest-core=off', '-accel', 'tcg', '-cpu', cpu, '-smp', str(a.smp),
            '-m', a.memory, '-nographic', '-nodefaults', '-no-user-config',
            '-L', '/usr/share/seabios', '-L', '/usr/share/qemu',
            # SeaBIOS: no output on the serial console
            '-fw_cfg', 'name=etc/sercon-port,file=%s' % sercon,
            '-kernel', k['KIMAGE'], '-initrd', initrd, '-append', ' '.join(append),
            '-chardev', 'socket,id=con,path=%s/console.sock' % self.tmp,
            '-serial', 'chardev:con',
            '-chardev', 'socket,id=hostctl,path=%s/hostctl.sock' % self.tmp,
            '-serial', 'chardev:hostctl',
            '-chardev', 'socket,id=qmp,path=%s/qmp.sock' % self.tmp,
            '-mon', 'chardev=qmp,mode=control',
        ]
        if a.iommu:
            # before the cards: they must sit behind it
            self.cmdline += ['-device', 'intel-iommu,intremap=off']
        peers = cable_props(a.cables, a.cards) if a.cables else {}
        for i in range(a.cards):
            dev = 'llmdev,bus=rp%d,id=llmdev%d,hbm-size=%d' % (i, i, a.hbm_size)
            if a.link_gbps is not None:
                dev += ',link-gbps=%d' % a.link_gbps
            for port, peer in sorted(peers.get(i, {}).items()):
                dev += ',peer%d=%s' % (port, peer)
            self.cmdline += ['-device', 'pcie-root-port,id=rp%d,chassis=%d,slot=0' % (i, i + 1),
                             '-device', dev]
        if a.file:
            self.cmdline += ['-drive', 'file=%s,format=raw,if=none,id=file0,readonly=on'
                             % os.path.abspath(a.file).replace(',', ',,'),
                             '-device', 'virtio-blk-pci,drive=file0']
        self.cmdline += a.qemu_arg or []

    # ---- QMP
    def qmp_send(self, msg, cb=None):
        self.qmp_seq += 1
        mid = 'vm%d' % self.qmp_seq
        msg = dict(msg)
        msg['id'] = mid
        if cb:
            self.qmp_pending[mid] = cb
        data = (json.dumps(msg) + '\n').encode()
        if self.qmp_ready:
            self.conns['qmp'].sendall(data)
        else:
            self.qmp_out.append(data)

    def qmp_input(self, data):
        self.qmp_buf += data
        while b'\n' in self.qmp_buf:
            raw, self.qmp_buf = self.qmp_buf.split(b'\n', 1)
            if not raw.strip():
                continue
            try:
                msg = json.loads(raw)
            except ValueError:
                self.say('bad QMP message: %r' % raw[:200])
                continue
            if 'QMP' in msg:
                self.qmp_ready = True
                self.conns['qmp'].sendall(b'{"execute":"qmp_capabilities"}\n')
                for d in self.qmp_out:
                    self.conns['qmp'].sendall(d)
                self.qmp_out = []
            elif 'event' in msg:
                self.qmp_event(msg)
            elif 'id' in msg:
                cb = self.qmp_pending.pop(msg['id'], None)
                if cb:
                    cb(msg)

    def qmp_event(self, msg):
        ev = msg['event']
        if ev == 'RESET':
            # SeaBIOS itself resets once more after a reset, so resets are
            # not boots: boots are counted when /init registers (see
            # hostctl_request 'boot'). This only stops reset loops.
            self.resets += 1
            self.hide = not (self.interactive or self.args.show_boot)   # until /init
            data = msg.get('data', {})
            if not data.get('guest'):
                self.say('system reset (%s)' % data.get('reason', 'host'))
            if self.resets > 4 * MAX_BOOTS:
                self.stop('reset loop (%d resets)' % self.resets, grace=0, failure=True)

    # ---- hostctl relay
    def hostctl_input(self, data):
        self.hc_buf += data
        while b'\n' in self.hc_buf:
            raw, self.hc_buf = self.hc_buf.split(b'\n', 1)
            line = raw.decode('utf-8', 'replace').rstrip('\r')
            parts = line.split(' ', 2)
            if len(parts) < 2:
                continue   # noise (e.g. from a reset mid-line)
            rid, verb = parts[0], parts[1]
            arg = hc_unescape(parts[2]) if len(parts) > 2 else ''
            self.hostctl_request(rid, verb, arg)

    def hostctl_reply(self, rid, ok, payload):
        line = '%s %s %s\n' % (rid, 'ok' if ok else 'err', hc_escape(payload))
        try:
            self.conns['hostctl'].sendall(line.encode())
        except OSError:
            pass

    def hostctl_request(self, rid, verb, arg):
        if verb == 'ping':
            self.hostctl_reply(rid, True, 'pong')
        elif verb == 'boot':           # /init of a new boot registers
            self.boots += 1
            self.hostctl_reply(rid, True, str(self.boots))
            if self.boots > 1:
                self.say('boot %d' % self.boots)
            if self.boots > MAX_BOOTS:
                self.stop('more than %d boots' % MAX_BOOTS, grace=0, failure=True)
        elif verb == 'boot-count':
            self.hostctl_reply(rid, True, str(max(self.boots, 1)))
        elif verb == 'hmp':
            def done(r, rid=rid):
                if 'error' in r:
                    self.hostctl_reply(rid, False, r['error'].get('desc', json.dumps(r['error'])))
                else:
                    out = r.get('return', '').replace('\r\n', '\n')
                    # HMP reports failures as text only
                    self.hostctl_reply(rid, not HMP_ERROR.match(out), out)
            self.qmp_send({'execute': 'human-monitor-command',
                           'arguments': {'command-line': arg}}, done)
        elif verb == 'qmp':
            try:
                msg = json.loads(arg)
                if not isinstance(msg, dict) or 'execute' not in msg:
                    raise ValueError('not a QMP command object (needs "execute")')
            except ValueError as e:
                self.hostctl_reply(rid, False, 'invalid QMP command: %s' % e)
                return
            user_id = msg.pop('id', None)

            def done(r, rid=rid, user_id=user_id):
                r.pop('id', None)
                if user_id is not None:
                    r['id'] = user_id
                self.hostctl_reply(rid, 'error' not in r, json.dumps(r))
            self.qmp_send(msg, done)
        else:
            self.hostctl_reply(rid, False, 'unknown request %r' % verb)

    # ---- console
    def console_input(self, data):
        self.last_console = time.monotonic()
        if self.log:
            self.log_write(data.replace(b'\r', b'').decode('utf-8', 'replace'),
                           ours=False)
        if self.interactive:
            os.write(sys.stdout.fileno(), data)
        self._partial += data
        *full, self._partial = self._partial.split(b'\n')
        for raw in full:
            self.console_line(raw.decode('utf-8', 'replace').replace('\r', ''))

    def console_line(self, line):
        self.console_lines.append(line)
        cat = self.scanner.feed(line)
        marker = BOOT_MARKER.search(line)
        if marker:
            self.hide = False
            self.started = True
        elif SENTINEL.search(line) or self.guest_rc is not None:
            pass   # the runner reports the status; after it, only power-off
        elif not (self.interactive or self.args.quiet or self.hide):
            sys.stdout.write(line + '\n')
            sys.stdout.flush()
        if cat == 'panic':
            self.stop('kernel panic', grace=3)
        m = SENTINEL.search(line)
        if m and self.guest_rc is None:
            self.guest_rc = int(m.group(1))
            self.stop(None, grace=15)   # let it power off

    def stop(self, reason, grace, failure=False):
        """Stop QEMU after grace seconds (unless it exits first)."""
        if failure and not self.failure:
            self.failure = reason
        when = time.monotonic() + grace
        if self.stop_at is None or when < self.stop_at:
            self.stop_at = when
            self.stop_reason = reason

    # ---- QEMU's own stdout/stderr (errors, warnings)
    _QEMU_NOISE = re.compile(r'fw_cfg item names should be prefixed|-fw_cfg|sercon-port')

    def qemu_output(self, data, final=False):
        self.qemu_buf = getattr(self, 'qemu_buf', '') + data.decode('utf-8', 'replace')
        *full, self.qemu_buf = self.qemu_buf.split('\n')
        if final and self.qemu_buf:
            full.append(self.qemu_buf)
            self.qemu_buf = ''
        for l in full:
            if l.strip() and not self._QEMU_NOISE.search(l):
                self.say('qemu: ' + l.rstrip())

    # ---- terminal
    def stdin_input(self):
        data = os.read(sys.stdin.fileno(), 1024)
        if not data:
            self.sel.unregister(sys.stdin)
            return
        if self.tty_saved is not None:
            out = bytearray()
            for b in data:
                if self.esc:
                    self.esc = False
                    if b in (ord('x'), ord('X')):
                        self.quit_requested = True
                        self.stop('killed from the terminal (Ctrl-A x)', grace=0)
                        return
                    out.append(b)
                elif b == 1:   # Ctrl-A
                    self.esc = True
                else:
                    out.append(b)
            data = bytes(out)
        if data and 'con' in self.conns:
            self.conns['con'].sendall(data)

    # ---- main loop
    def start(self):
        listeners = {}
        for name in ('con', 'hostctl', 'qmp'):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(os.path.join(self.tmp, {'con': 'console'}.get(name, name) + '.sock'))
            s.listen(1)
            listeners[name] = s
        if self.args.log:
            os.makedirs(os.path.dirname(os.path.abspath(self.args.log)), exist_ok=True)
            if self.attempt > 1:
                # the failed boot's console may have stopped mid-line
                try:
                    with open(self.args.log, 'rb') as f:
                        if f.seek(0, os.SEEK_END):
                            f.seek(-1, os.SEEK_END)
                            self.log_bol = f.read(1) == b'\n'
                except OSError:
                    pass
            self.log = open(self.args.log, 'w' if self.attempt == 1 else 'a',
                            encoding='utf-8', errors='replace')
            self.log_write('vm: %s\n' % ' '.join(shlex.quote(c) for c in self.cmdline))
        self.t0 = time.monotonic()
        self.t0_wall = time.time()
        self.qemu = subprocess.Popen(self.cmdline, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=allow_core)
        os.set_blocking(self.qemu.stdout.fileno(), False)
        self.sel.register(self.qemu.stdout, selectors.EVENT_READ, 'qemu-out')
        for name, s in listeners.items():
            self.sel.register(s, selectors.EVENT_READ, ('listen', name))
        if self.interactive and sys.stdin.isatty():
            import termios
            import tty
            self.tty_saved = termios.tcgetattr(sys.stdin.fileno())
            tty.setraw(sys.stdin.fileno())
            self.say('interactive console; Ctrl-A x kills the VM')
        if self.interactive:
            self.sel.register(sys.stdin, selectors.EVENT_READ, 'stdin')

    def loop(self):
        timeout = self.args.timeout
        qemu_done = False
        while True:
            now = time.monotonic()
            if timeout and now - self.t0 > timeout and not self.timed_out:
                self.timed_out = True
                self.say('timeout after %d s' % timeout)
                self.dump_qemu_threads()
                self.stop('timeout', grace=0)
            if not (self.started or self.interactive or self.stop_at is not None or
                    now - (self.last_console or self.t0) <= BOOT_STALL_S):
                self.boot_stalled = True
                self.say('no console output for %d s while the guest kernel booted'
                         % BOOT_STALL_S)
                self.dump_qemu_threads('when the boot stalled')
                self.stop('the guest kernel stopped while booting (no console output '
                          'for %d s before the command started)' % BOOT_STALL_S,
                          grace=0, failure=True)
            if self.stop_at is not None and now >= self.stop_at:
                break
            if qemu_done:
                break
            wait = 0.5
            if self.stop_at is not None:
                wait = max(0, min(wait, self.stop_at - now))
            for key, _ in self.sel.select(wait):
                tag = key.data
                if isinstance(tag, tuple):          # a listener: QEMU connects
                    conn, _ = key.fileobj.accept()
                    self.sel.unregister(key.fileobj)
                    key.fileobj.close()
                    self.conns[tag[1]] = conn
                    self.sel.register(conn, selectors.EVENT_READ, tag[1])
                    continue
                if tag == 'stdin':
                    self.stdin_input()
                    continue
                try:
                    data = key.fileobj.recv(65536) if tag != 'qemu-out' else \
                        os.read(key.fileobj.fileno(), 65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b''
                if not data:
                    self.sel.unregister(key.fileobj)
                    if tag == 'qemu-out':
                        self.qemu_output(b'', final=True)
                        qemu_done = self.qemu_eof = True
                    continue
                if tag == 'con':
                    self.console_input(data)
                elif tag == 'hostctl':
                    self.hostctl_input(data)
                elif tag == 'qmp':
                    self.qmp_input(data)
                elif tag == 'qemu-out':
                    self.qemu_output(data)
        # drain what the console still holds (QEMU may have exited)
        con = self.conns.get('con')
        if con:
            con.setblocking(False)
            try:
                while True:
                    d = con.recv(65536)
                    if not d:
                        break
                    self.console_input(d)
            except OSError:
                pass
        if self._partial:
            self.console_line(self._partial.decode('utf-8', 'replace').replace('\r', ''))
            self._partial = b''

    # frames that only say how a thread waits, not where
    _WAIT_FRAMES = re.compile(
        r'^(__|_?pthread_|lll_|futex|syscall$|qemu_(cond|mutex|sem|event)_|'
        r'qemu_poll_ns$|poll$|ppoll$|g_main_|start_thread$|clone3?$|'
        r'qemu_thread_start$|\?\?$)')

    def dump_qemu_threads(self, when='at the timeout'):
        """A run that timed out or stalled: where are QEMU's threads? Every
        backtrace goes to the log; the digest (threads grouped by their
        innermost frames of QEMU's own code) to stderr too, as a hang in the card
        model shows only there."""
        q = self.qemu
        if q is None or q.poll() is not None:
            return
        text = self.gdb_backtraces('QEMU threads %s' % when,
                                   ['-p', str(q.pid)], ['thread apply all bt'], 120)
        if text is None:
            return
        groups = {}
        for block in re.split(r'\n(?=Thread \d+ )', text):
            if not block.startswith('Thread '):
                continue
            funcs = re.findall(r'^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(', block, re.M)
            own = [f for f in funcs if not self._WAIT_FRAMES.search(f)][:4]
            if own:
                key = ' < '.join(own)
                groups[key] = groups.get(key, 0) + 1
        self.say('QEMU threads %s (innermost first; all in the log):' % when)
        for key, n in sorted(groups.items(), key=lambda kv: -kv[1]):
            self.say('  %3d x %s' % (n, key))

    def gdb_backtraces(self, title, target, cmds, timeout):
        """gdb's output for @cmds on @target (a live pid or a core), also
        written to the log under @title; None (and why, said) without."""
        gdb = shutil.which('gdb')
        if not gdb:
            self.say('no gdb: %s not shown' % title)
            return None
        argv = [gdb, '-batch', '-nx', '-ex', 'set pagination off']
        for c in cmds:
            argv += ['-ex', c]
        try:
            out = subprocess.run(argv + target, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 timeout=timeout).stdout
        except (OSError, subprocess.TimeoutExpired) as e:
            self.say('gdb failed (%s): %s' % (title, e))
            return None
        text = out.decode('utf-8', 'replace')
        if self.log:
            self.log_write('vm: %s:\n%s\n' % (title, text))
            self.log.flush()
        return text

    def find_core(self, pid):
        """(path, None) of the core file QEMU (@pid) left, or (None, why
        not). Only a core_pattern naming a file is followed; a pipe
        (systemd-coredump, apport) keeps the core to itself."""
        try:
            with open('/proc/sys/kernel/core_pattern') as f:
                pattern = f.read().strip()
            with open('/proc/sys/kernel/core_uses_pid') as f:
                uses_pid = f.read().strip() == '1'
        except OSError as e:
            return None, 'cannot read the core pattern: %s' % e
        if not pattern or pattern.startswith('|'):
            return None, 'kernel.core_pattern is %r, not a file' % pattern
        glob_pat = ''
        i = 0
        while i < len(pattern):
            c = pattern[i]
            if c == '%' and i + 1 < len(pattern):
                spec = pattern[i + 1]
                glob_pat += {'%': '%', 'p': str(pid), 'P': str(pid)}.get(spec, '*')
                i += 2
                continue
            glob_pat += glob.escape(c)
            i += 1
        if uses_pid and '%p' not in pattern:
            glob_pat += '.%d' % pid
        if not os.path.isabs(glob_pat):
            glob_pat = os.path.join(glob.escape(os.getcwd()), glob_pat)
        cores = []
        for path in glob.glob(glob_pat):
            try:
                st = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_mtime >= self.t0_wall - 1:
                cores.append((st.st_mtime, path))
        if not cores:
            return None, 'no core file matches %s' % glob_pat
        return max(cores)[1], None

    def crash_report(self):
        """QEMU died of a signal: where? The backtraces of its threads from
        the core it dumped go to the log, the crashed thread's own to
        stderr too; the core is then removed (it can be large)."""
        q = self.qemu
        if q is None or not self.qemu_eof:
            return      # still running (and about to be stopped)
        try:
            rc = q.wait(30)     # a process that closed its output exits
        except subprocess.TimeoutExpired:
            return
        if rc >= 0 or -rc not in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS,
                                  signal.SIGILL, signal.SIGFPE):
            return
        self.say('QEMU died of %s' % signal.Signals(-rc).name)
        core, why = self.find_core(q.pid)
        if not core:
            self.say('no backtrace: %s' % why)
            return
        try:
            text = self.gdb_backtraces('QEMU\'s threads in its core', [self.cmdline[0], core],
                                       ['bt', 'thread apply all bt'], 300)
        finally:
            try:
                os.unlink(core)
            except OSError:
                pass
        if text is None:
            return
        # the first 'bt' is the thread that took the signal
        # (gdb shows frame #0 once as it loads the core, then in the 'bt')
        frames = re.findall(r'^#\d+ .*$', text.split('\nThread ')[0], re.M)
        starts = [i for i, f in enumerate(frames) if f.startswith('#0 ')]
        frames = frames[starts[-1]:] if starts else frames
        self.say('the thread that crashed (all threads in the log):')
        for f in frames[:16]:
            self.say('  ' + f[:200])

    def kill_qemu(self):
        q = self.qemu
        if q is None or q.poll() is not None:
            return
        try:
            os.killpg(q.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            q.wait(3)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(q.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            q.wait()

    def cleanup(self):
        if self.tty_saved is not None:
            import termios
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self.tty_saved)
            self.tty_saved = None
            sys.stdout.write('\n')
        self.kill_qemu()
        for c in self.conns.values():
            c.close()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def result(self):
        """(rc, reason): the runner's exit status and, for runner-level
        failures, why."""
        if self.timed_out:
            return RC_TIMEOUT, 'timeout after %d s' % self.args.timeout
        if self.scanner.reports:
            return RC_KERNEL_REPORT, 'kernel reports: ' + self.scanner.summary()
        if self.failure:
            return RC_FAILED, self.failure
        if self.guest_rc is not None:
            return self.guest_rc, None
        if self.quit_requested:
            return 0, None
        rc = self.qemu.poll() if self.qemu else None
        return RC_FAILED, ('QEMU exited (status %s) without the LLMDEV-EXIT line' % rc
                           if self.stop_reason is None else self.stop_reason)

    def report(self):
        c = colours(sys.stderr)
        reps = self.scanner.reports
        if reps:
            bar = '=' * 72
            out = ['', c['red'] + bar, 'KERNEL REPORTS (%d): %s' % (len(reps), self.scanner.summary()),
                   bar + c['off']]
            for i, r in enumerate(reps, 1):
                out.append('%s--- report %d: %s%s' % (c['bold'], i, ', '.join(r['categories']), c['off']))
                out += ['    ' + l for l in r['lines']]
            out.append(c['red'] + bar + c['off'])
            sys.stderr.write('\n'.join(out) + '\n')
            if self.log:
                self.log_write('\n'.join(out) + '\n')


def run_vm(args, attempt=1):
    r = Run(args, attempt)
    rc = RC_FAILED
    try:
        r.prepare()
        r.start()
        r.loop()
        r.crash_report()
        rc, reason = r.result()
        elapsed = time.monotonic() - r.t0
        r.cleanup()
        r.report()
        booting = failed_booting(r.console_lines, args.ignore_report or ()) \
            if rc == RC_KERNEL_REPORT and not r.interactive else None
        # why to boot once more, if at all: a stall (unless a line of the
        # boot names llmdev: udev may have loaded it), or a boot failure with
        # no llmdev code in it (whose reports stay on stderr and in the log)
        again = None
        if attempt == 1 and r.boot_stalled and \
                not any(_OUR_CODE.search(l) for l in r.console_lines):
            again = ('the guest kernel stopped while booting (no console output '
                     'for %d s), before the command started' % BOOT_STALL_S)
        elif attempt == 1 and booting:
            again = ('the guest kernel failed while booting (%s), before the '
                     'command started and with no llmdev code in it' % booting)
        if again:
            r.say('%s: booting once more (%.1f s)' % (again, elapsed))
            if r.log:
                r.log.close()
                r.log = None
            return run_vm(args, attempt + 1)
        if r.quit_requested:
            r.say('VM killed from the terminal (%.1f s)' % elapsed)
        elif reason:
            r.say('FAILED: %s (%d boot(s), %.1f s)' % (reason, max(r.boots, 1), elapsed))
        else:
            r.say('guest exit status %d (%d boot(s), %.1f s)' % (rc, max(r.boots, 1), elapsed))
        if args.ktap or args.counts:
            res = parse_ktap(r.console_lines)
            if reason:
                if 'no KTAP output' in res['problems']:   # one failure, not two
                    res['problems'].remove('no KTAP output')
                    res['failed'] -= 1
                res['problems'].append('VM run failed: %s' % reason)
                res['failed'] += 1
            elif rc != 0 and res['failed'] == 0:
                res['problems'].append('guest command exited %d with no failed test' % rc)
                res['failed'] += 1
            if args.ktap:
                print(format_ktap(res, args.title))
            if args.counts:
                with open(args.counts, 'w') as f:
                    f.write('%d %d %d\n' % (res['passed'], res['failed'], res['skipped']))
    except KeyboardInterrupt:
        r.cleanup()
        r.say('interrupted')
        rc = RC_INTERRUPTED
    finally:
        r.cleanup()
        if r.log:
            r.log.close()
    return rc


# --------------------------------------------------------------------------
# Self-test of the parsers (no VM): scripts/vm.py --self-test

_FAKE_CONSOLE = r"""
[    0.000000] Linux version 6.1.0-56-amd64
Spectre V2 : WARNING: Unprivileged eBPF is enabled with eIBRS on
user says BUG: this is not a kernel line
KTAP version 1
1..4
    TAP version 13
    1..3
    ok 1 enum.finds_cards
    ok 2 enum.ids # SKIP no cards
    not ok 3 enum.bars
not ok 1 llmdev_enumerate
    TAP version 13
    1..2
    ok 1 regs.id
    ok 2 regs.version
ok 2 llmdev_registers
[   12.345678] ------------[ cut here ]------------
[   12.345679] WARNING: CPU: 1 PID: 77 at drivers/misc/llmdev.c:10 llmdev_probe+0x1/0x2 [llmdev]
[   12.345680] Modules linked in: llmdev
[   12.345690] Call Trace:
[   12.345691]  <TASK>
[   12.345699] ---[ end trace 0000000000000000 ]---
    1..1
not ok 3 llmdev_crashes
[   13.000000] BUG: KASAN: slab-out-of-bounds in llmdev_ioctl+0x10/0x20
unreferenced object 0xffff888003a1b000 (size 64):
LLMDEV-EXIT 1
"""


def self_test():
    lines = _FAKE_CONSOLE.strip('\n').split('\n')
    sc = ReportScanner()
    for l in lines:
        sc.feed(l)
    cats = [r['categories'] for r in sc.reports]
    assert cats == [['warning', 'call-trace'], ['kasan', 'kmemleak']] or \
        cats == [['warning', 'call-trace'], ['kasan'], ['kmemleak']], cats
    assert classify_report('[    1.0] Spectre V2 : WARNING: Unprivileged eBPF') is None
    assert classify_report('[    5.1] INFO: task kworker/0:1:12 blocked for more than 120 seconds.') == 'hung-task'
    assert classify_report('[    5.1] watchdog: BUG: soft lockup - CPU#0 stuck for 22s!') == 'soft-lockup'
    assert classify_report('[    5.1] WARNING: possible circular locking dependency detected') == 'lockdep'
    assert classify_report('[    5.1] BUG: sleeping function called from invalid context at x') == 'sleep-in-atomic'
    assert classify_report('[    5.1] Kernel panic - not syncing: Fatal exception') == 'panic'
    assert classify_report('[    5.1] kmemleak: 3 new suspected memory leaks (see /sys/kernel/debug/kmemleak)') == 'kmemleak'
    assert classify_report('[    5.1] Oops: 0002 [#1] PREEMPT SMP KASAN') == 'oops'
    res = parse_ktap(lines)
    # leaves: enum 1 pass 1 skip 1 fail; regs 2 pass; crashes: not ok without
    # failing leaf -> 1 fail; plan 4, 3 results -> 1 missing
    assert (res['passed'], res['failed'], res['skipped']) == (3, 3, 1), res
    assert any('missing' in p for p in res['problems']), res
    assert parse_ktap(['nothing here'])['failed'] == 1
    assert SENTINEL.search(lines[-1]).group(1) == '1'
    assert hc_unescape(hc_escape('a\\b\nc\r')) == 'a\\b\nc\r'
    assert cable_props('0.0-1.1,1.0-2.1', 3) == {0: {0: 'llmdev1.1'}, 1: {0: 'llmdev2.1'}}
    for bad in ('0.0-0.1', '0.4-1.1', '0.0-3.1', '0.0-1.1,2.0-1.1', 'x'):
        try:
            parse_cables(bad, 3)
            raise AssertionError('accepted cable spec %r' % bad)
        except ValueError:
            pass
    int3 = ['[    3.74] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI',
            '[    3.74] RIP: 0010:sched_clock_cpu+0x9/0x1d0',
            '[    3.75] Call Trace:', '[    3.75]  do_idle+0x269/0x2a0',
            '[    3.75] Modules linked in:', '[    3.75] ---[ end trace 0 ]---',
            '[    3.75] Kernel panic - not syncing: Fatal exception in interrupt']
    assert failed_booting(int3) == 'oops x1, call-trace x1, panic x1', failed_booting(int3)
    assert failed_booting(int3 + ['LLMDEV-BOOT 1']) is not None
    # after the command started, ours to answer for
    assert failed_booting(['LLMDEV-BOOT 1'] + int3) is None
    # llmdev.ko loaded (udev at boot): in the oops, or loaded before it
    ours = [l.replace('linked in:', 'linked in: llmdev(OE)') for l in int3]
    assert failed_booting(ours) is None
    assert failed_booting(['[ 2.0] Modules linked in: llmdev'] + int3) is None
    assert failed_booting(int3[:2] + ['[ 3.75]  llmdev_probe+0x1/0x2 [llmdev]'] + int3[2:]) is None
    assert failed_booting(['[ 1.0] boot ok', 'LLMDEV-BOOT 1']) is None
    # the log: a line of ours after console output cut mid-line
    fake = types.SimpleNamespace(log=io.StringIO(), log_bol=True)
    for text, ours in (('vm: start\n', True), ('LLMDEV-BOOT 1\nabc', False),
                       ('vm: timeout\n', True), ('', False), ('def\n', False),
                       ('vm: done\n', True)):
        Run.log_write(fake, text, ours)
    assert fake.log.getvalue() == 'vm: start\nLLMDEV-BOOT 1\nabc\nvm: timeout\ndef\nvm: done\n', \
        fake.log.getvalue()
    print(format_ktap(res, 'self-test'))
    print('vm.py self-test: ok')
    return 0


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Large inputs (e.g. a model file of several hundred MiB): --file PATH '
               'attaches PATH as a read-only raw virtio-blk disk; the guest reads it '
               'from /dev/vda (e.g. `dd if=/dev/vda`, or `llmctl load /dev/vda`); its '
               'size is `blockdev --getsize64 /dev/vda` (QEMU may round it up to 512 bytes).')
    ap.add_argument('--cards', type=int, default=4, help='number of llmdev cards (default 4)')
    ap.add_argument('--kernel', choices=('debian', 'debug', 'trixie', 'sid'), default='debian',
                    help="guest kernel: Debian 12's (default), the debug build "
                         "(KASAN, lockdep, kmemleak), Debian 13's (trixie) or "
                         "unstable's newest (sid)")
    ap.add_argument('--cmd', help='shell command to run in the guest (default: interactive shell)')
    ap.add_argument('--timeout', type=int, default=None,
                    help='seconds before the VM is killed (default 600 with --cmd, none without)')
    ap.add_argument('--hbm-size', type=parse_size, default=parse_size('256M'),
                    help='HBM per card, power of two, 16M..64G (default 256M)')
    ap.add_argument('--file', help='attach FILE as read-only raw virtio-blk disk /dev/vda')
    ap.add_argument('--overlay', action='append', metavar='DIR',
                    help='add the files under DIR to the guest\'s root for this run, over '
                         'those of the base image (repeatable; e.g. a package extracted '
                         'with dpkg-deb -x)')
    ap.add_argument('--cables', metavar='SPEC',
                    help='peer-link cabling, e.g. 0.0-1.1,1.0-2.1 (CARD.PORT-CARD.PORT, card '
                         'indexes of this VM, ports 0-3); sets the cards\' peerN properties. '
                         'Default: none set, the cards form a ring (card i port 0 to card i+1 '
                         'port 1)')
    ap.add_argument('--link-gbps', type=int, metavar='N',
                    help='line rate of every peer-link port in Gb/s, 1..1600 (default: the '
                         "card's default, 100)")
    ap.add_argument('--log', help='write the full console log to LOG')
    ap.add_argument('--quiet', action='store_true', help="don't echo the console")
    ap.add_argument('--show-boot', action='store_true',
                    help='with --cmd, echo the console from the start, not only from the '
                         "command's start (kernel reports are summed up at the end anyway)")
    ap.add_argument('--ktap', action='store_true',
                    help='after the run, sum up the KTAP in the console output')
    ap.add_argument('--title', help='heading of the --ktap summary')
    ap.add_argument('--counts', help='write "passed failed skipped" of the run to COUNTS '
                    '(a failed run counts one failure)')
    ap.add_argument('--smp', type=int, default=2, help=argparse.SUPPRESS)
    ap.add_argument('--memory', default='2G', help=argparse.SUPPRESS)
    ap.add_argument('--append', help='extra kernel command line')
    ap.add_argument('--clocksource', choices=('tsc', 'hpet'), default='tsc',
                    help="the guest's clocksource: tsc (default; forced with tsc=reliable, "
                    "which TCG's TSC needs) or hpet (the kernel's own choice under TCG)")
    ap.add_argument('--iommu', action='store_true',
                    help="put the cards behind QEMU's intel-iommu (guest: intel_iommu=on iommu=strict)")
    ap.add_argument('--qemu-arg', action='append', help='extra QEMU argument (repeatable)')
    ap.add_argument('--ignore-report', action='append', metavar='REGEX',
                    help='ignore kernel report lines matching REGEX (repeatable)')
    ap.add_argument('--parse-ktap', metavar='LOG',
                    help="don't boot: sum up the KTAP in LOG ('-' = stdin) and exit "
                         '0 iff nothing failed')
    ap.add_argument('--self-test', action='store_true', help='test the parsers and exit')
    args = ap.parse_args()

    if args.self_test:
        return self_test()
    if args.parse_ktap:
        f = sys.stdin if args.parse_ktap == '-' else open(args.parse_ktap, errors='replace')
        res = parse_ktap(f.read().splitlines())
        print(format_ktap(res, args.title))
        if args.counts:
            with open(args.counts, 'w') as f:
                f.write('%d %d %d\n' % (res['passed'], res['failed'], res['skipped']))
        return 1 if res['failed'] else 0
    if args.cards < 0 or args.cards > 30:
        ap.error('--cards must be 0..30')
    if args.file and not os.path.isfile(args.file):
        ap.error('--file %s: no such file' % args.file)
    for d in args.overlay or ():
        if not os.path.isdir(d):
            ap.error('--overlay %s: not a directory' % d)
    if args.cables:
        try:
            parse_cables(args.cables, args.cards)
        except ValueError as e:
            ap.error('--cables: %s' % e)
    if args.link_gbps is not None and not 1 <= args.link_gbps <= 1600:
        ap.error('--link-gbps must be 1..1600')
    if args.timeout is None and args.cmd is not None:
        args.timeout = 600

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    return run_vm(args)


if __name__ == '__main__':
    sys.exit(main())
