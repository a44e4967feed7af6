#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make bench`: run llmdev-bench in the VMs it needs, write
build/bench/results.json (schema llmdev.bench/1, docs/bench.md), print the
figures and the targets of issue 10.

Two VM runs, one after the other, 4 cards of 1 GiB each:

  unpaced  peer links at the model's highest rate (link-gbps=1600: the
           collective engine's pacing adds B * 8 / 1600 ns per tick, so the
           host's arithmetic bounds it); the file MODEL attached as /dev/vda.
           llmdev-bench: clock and null ioctl, the copy ceiling, DMA,
           AllReduce, then `llmctl load` of MODEL beside an O_DIRECT read.
  paced    peer links at --link-gbps (default 8 Gb/s, below what the host
           computes): AllReduce only, to measure the protocol.

The runs' JSON comes back over the console between marker lines. The
merged document has the conditions at the top level, each run's in
"runs", and "targets": each goal of issue 10 with the figure beside it
and PASS, MISS or SKIP (a report, not a test).

  scripts/bench.py --model FILE [--kernel debian] [--link-gbps 8] [--out PATH]
  scripts/bench.py --table results.json     print the table of a results file

Exit status: 0 both runs succeeded, saw the cards their VM was started
with, and every figure verified; 2 otherwise (the results file is written
anyway, with "status": "failed").
"""
import argparse
import datetime
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = 'llmdev.bench/1'
BEGIN = '@@LLMDEV-BENCH-JSON-BEGIN@@'
END = '@@LLMDEV-BENCH-JSON-END@@'
UNPACED_MODEL_GBPS = 1600    # the model's maximum (qemu/llmdev.c: link-gbps 1..1600)
HBM = '1G'
CARDS = 4                    # each VM's cards (vm.py --cards)
LOAD_CMD = 'llmctl load /dev/vda --tp 2 --pp 2'
# undoes it between the rounds; llmdev-bench then waits until every card's
# hbm_used is back where it was before the first load (and fails if it is
# not within its timeout), so an unload that freed nothing cannot pass
LOAD_BETWEEN = 'llmctl unload /dev/vda >/dev/null'
LOAD_ROUNDS = 3


# ---------------------------------------------------------------- the runs

def guest_cmd(bench_args):
    """insmod, llmdev-bench, then its JSON between markers; exit with its status."""
    return ('insmod /llmdev/modules/llmdev.ko && sleep 0.2 && '
            'llmdev-bench -o /tmp/bench.json %s; rc=$?; '
            'echo %s; cat /tmp/bench.json; echo; echo %s; exit $rc'
            % (bench_args, BEGIN, END))


def run_vm(name, vm_args, bench_args, log, timeout):
    """Boot, stream the console (without the JSON), return (rc, doc, seconds)."""
    cmd = [sys.executable, os.path.join(TOP, 'scripts/vm.py')] + vm_args + [
        '--timeout', str(timeout), '--log', log, '--cmd', guest_cmd(bench_args)]
    print('\n== bench run "%s": %s' % (name, ' '.join(shlex.quote(a) for a in vm_args)),
          flush=True)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, text=True, errors='replace')
    inside, text = False, []
    for line in p.stdout:
        s = line.rstrip('\n')
        if s.strip() == BEGIN:
            inside, text = True, []
            continue
        if s.strip() == END:
            inside = False
            continue
        if inside:
            text.append(s)
        else:
            print(s, flush=True)
    rc = p.wait()
    secs = time.monotonic() - t0
    doc = None
    if text:
        try:
            doc = json.loads('\n'.join(text))
        except ValueError as e:
            print('bench: run "%s": the JSON does not parse: %s' % (name, e), file=sys.stderr)
    if doc is None:
        print('bench: run "%s" gave no results (vm.py exit %d; log %s)'
              % (name, rc, os.path.relpath(log, TOP)), file=sys.stderr)
    elif doc.get('schema') != SCHEMA:
        print('bench: run "%s": schema %r, expected %r' % (name, doc.get('schema'), SCHEMA),
              file=sys.stderr)
        doc = None
    return rc, doc, secs


def vm_cards(vm_args):
    """The cards a VM run was started with: its last --cards, else vm.py's default 4."""
    n = 4
    for i, v in enumerate(vm_args):
        if v == '--cards' and i + 1 < len(vm_args):
            n = int(vm_args[i + 1])
        elif v.startswith('--cards='):
            n = int(v.split('=', 1)[1])
    return n


# ---------------------------------------------------------- the conditions

def git(*args):
    try:
        return subprocess.run(['git', '-C', TOP] + list(args), capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def qemu_model():
    """What identifies the card model: a hash of its sources, their last commit."""
    files = sorted(os.path.relpath(os.path.join(d, f), TOP)
                   for d, _, names in os.walk(os.path.join(TOP, 'qemu')) for f in names)
    files.append('driver/llmdev_regs.h')
    h = hashlib.sha256()
    for f in files:
        h.update(f.encode() + b'\n')
        with open(os.path.join(TOP, f), 'rb') as fh:
            h.update(fh.read())
    return {
        'sha256': h.hexdigest()[:16],
        'files': files,
        'commit': git('log', '-1', '--format=%H', '--', 'qemu/'),
        'dirty': bool(git('status', '--porcelain', '--', 'qemu/', 'driver/llmdev_regs.h')),
    }


def host_info():
    cpu = None
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return {'cpus': os.cpu_count(), 'cpu_model': cpu,
            'loadavg_start': list(os.getloadavg())}


# --------------------------------------------------------------- merging

RUN_KEYS = ('run', 'options', 'section_seconds', 'link_gbps', 'link_gbps_model', 'status',
            'errors', 'verification_failures', 'date')


def merge(runs, host, model_file):
    """One llmdev.bench/1 document from the runs' documents."""
    out = {'schema': SCHEMA}
    base = next((r['doc'] for r in runs if r['doc']), None) or {}
    # conditions common to the runs: from the first that has results
    for k in ('kernel', 'kernel_flavour', 'clocksource', 'cmdline', 'cpus', 'cards',
              'hbm_size', 'spec_version', 'irq_vectors', 'driver'):
        if k in base:
            out[k] = base[k]
    out['date'] = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    out['qemu_model'] = qemu_model()
    out['git'] = {'commit': git('rev-parse', 'HEAD'), 'branch': git('rev-parse', '--abbrev-ref', 'HEAD'),
                  'dirty': bool(git('status', '--porcelain', '--untracked-files=no'))}
    out['vm'] = {'accel': 'tcg', 'smp': 2, 'memory': '2G', 'hbm_size': HBM}
    out['host'] = host
    out['runs'] = []
    out['dma'], out['allreduce'] = [], []
    status, errors, failures = 'ok', 0, 0
    for r in runs:
        d = r['doc']
        desc = {'name': r['name'], 'vm_args': r['vm_args'], 'bench_args': r['bench_args'],
                'vm_exit': r['rc'], 'seconds': round(r['seconds'], 1)}
        if d:
            for k in RUN_KEYS:
                if k in d:
                    desc[k] = d[k]
            # every figure assumed the cards the VM was started with
            if d.get('cards') != r['cards']:
                desc['cards_error'] = 'llmdev-bench saw %s cards, the VM has %d' % (
                    d.get('cards'), r['cards'])
                print('bench: run "%s": %s' % (r['name'], desc['cards_error']),
                      file=sys.stderr)
                status = 'failed'
                errors += 1
            for k in ('null_ioctl', 'clock_gettime', 'ceiling', 'ceiling_gbps', 'load'):
                if k in d:
                    out[k] = d[k]
            out['dma'] += d.get('dma', [])
            out['allreduce'] += d.get('allreduce', [])
            errors += d.get('errors', 0)
            failures += d.get('verification_failures', 0)
            if d.get('status') != 'ok':
                status = 'failed'
        else:
            status = 'failed'
            errors += 1
        if r['rc'] != 0:
            status = 'failed'
        out['runs'].append(desc)
    if 'load' in out:
        out['load']['model'] = os.path.basename(model_file) if model_file else None
    out['status'] = status
    out['errors'] = errors
    out['verification_failures'] = failures
    out['targets'] = targets(out)
    return out


# --------------------------------------------------------------- targets

def measured(e):
    return e.get('status') == 'ok' and e.get('verified') is True


def dma_pick(doc, size, inflight, dirs=('h2c', 'c2h')):
    """Per direction: the registered batch if measured, else plain
    LLMDEV_DMA_SUBMIT (the 'mode' says which)."""
    out = {}
    for d in dirs:
        cand = [e for e in doc.get('dma', []) if e['size'] == size and e['dir'] == d
                and e['inflight'] == inflight and e.get('wait') == 'fence_wait']
        reg = [e for e in cand if e['registered'] and e['api'] == 'batch' and measured(e)]
        plain = [e for e in cand if not e['registered'] and e['api'] == 'submit' and measured(e)]
        if reg:
            out[d] = (reg[0], 'registered batch')
        elif plain:
            out[d] = (plain[0], 'plain LLMDEV_DMA_SUBMIT')
    return out


def skip_reason(doc, **match):
    for e in doc.get('dma', []):
        if all(e.get(k) == v for k, v in match.items()) and e.get('status') == 'skip':
            return e.get('reason')
    return None


def judge(value, goal, higher_better):
    if value is None:
        return 'SKIP'
    return 'PASS' if (value >= goal if higher_better else value <= goal) else 'MISS'


def dir_ceiling(doc, e):
    """The ceiling to set DMA figure e against: its direction's, measured
    beside it; else the section's of its direction; else the one of both
    directions beside it, or the section's (docs/bench.md)."""
    c = doc.get('ceiling') or {}
    return (e.get('dir_ceiling_gbps') or c.get('%s_gbps' % e['dir'])
            or e.get('ceiling_gbps') or doc.get('ceiling_gbps'))


def targets(doc):
    t = []
    null = (doc.get('null_ioctl') or {}).get('median_ns')

    # 1. the 4 KiB registered round trip against the null ioctl
    row = {'figure': '4 KiB h2c round trip, registered buffer, median / null ioctl median',
           'goal': '<= 5x', 'unit': 'x'}
    rt = [e for e in doc.get('dma', []) if e['size'] == 4096 and e['dir'] == 'h2c'
          and e['inflight'] == 1 and e['registered'] and measured(e)]
    rt.sort(key=lambda e: e.get('wait') != 'in_call')   # submit-and-wait first
    plain = [e for e in doc.get('dma', []) if e['size'] == 4096 and e['dir'] == 'h2c'
             and e['inflight'] == 1 and e['api'] == 'submit' and measured(e)]
    # against the null ioctl measured beside the figure when there is one
    # (docs/bench.md), else the null section's
    def base(e):
        return e.get('null_ioctl_ns') or null
    if rt and base(rt[0]):
        row['value'] = rt[0]['median_ns'] / base(rt[0])
        row['mode'] = 'batch, wait %s' % rt[0]['wait']
        if rt[0].get('null_ioctl_ns') and null:
            row['detail'] = '%d ns / %d ns beside it; / the null section\'s %d ns: %.1fx' % (
                rt[0]['median_ns'], rt[0]['null_ioctl_ns'], null, rt[0]['median_ns'] / null)
    else:
        row['value'] = None
        row['reason'] = skip_reason(doc, size=4096, dir='h2c', inflight=1, registered=True) \
            or 'no measured figure'
    if plain and base(plain[0]):
        row['reference'] = 'plain LLMDEV_DMA_SUBMIT + FENCE_WAIT: %.0fx' % (
            plain[0]['median_ns'] / base(plain[0]))
    row['result'] = judge(row['value'], 5, False)
    t.append(row)

    # 2. and 3. DMA against the model's copy ceiling
    sizes = sorted({e['size'] for e in doc.get('dma', [])})
    rows = [(s, 4, 80, '%s, 4 in flight' % human(s)) for s in sizes if s >= 1 << 20]
    rows.append((64 << 20, 1, 90, '64 MiB, 1 in flight'))
    for size, k, goal, label in rows:
        row = {'figure': '%s: min(h2c, c2h) median Gb/s / ceiling' % label,
               'goal': '>= %d %%' % goal, 'unit': '%'}
        pick = dma_pick(doc, size, k)
        # the ceiling measured beside the figure when there is one (docs/bench.md)
        ceil = {d: dir_ceiling(doc, pick[d][0]) for d in pick}
        if len(pick) == 2 and all(ceil.values()):
            vals = {d: pick[d][0]['gbps'] / ceil[d] * 100 for d in pick}
            row['value'] = min(vals.values())
            row['detail'] = 'h2c %.0f %% of %.0f, c2h %.0f %% of %.0f Gb/s' % (
                vals['h2c'], ceil['h2c'], vals['c2h'], ceil['c2h'])
            row['mode'] = ' / '.join(sorted({m for _, m in pick.values()}))
        else:
            row['value'] = None
            row['reason'] = 'no ceiling measured' if len(pick) == 2 else 'no measured figure'
        row['result'] = judge(row['value'], goal, True)
        t.append(row)

    # 4. AllReduce on paced links against the link rate
    for n in (2, 4):
        row = {'figure': 'AllReduce f32 sum 64 MiB, %d cards, paced links: busbw / link rate' % n,
               'goal': '>= 90 %', 'unit': '%'}
        e = [a for a in doc.get('allreduce', []) if a['ranks'] == n and a['size'] == 64 << 20
             and (a.get('link_gbps') or 0) > 0 and measured(a)]
        if e:
            row['value'] = e[0]['busbw_gbps'] / e[0]['link_gbps'] * 100
            row['detail'] = '%.3g of %d Gb/s' % (e[0]['busbw_gbps'], e[0]['link_gbps'])
        else:
            row['value'] = None
            row['reason'] = 'not measured'
        row['result'] = judge(row['value'], 90, True)
        t.append(row)

    # 5. AllReduce unpaced against single-card DMA
    row = {'figure': 'AllReduce 64 MiB, 2 cards, unpaced: busbw / 64 MiB DMA (faster direction)',
           'goal': '>= 90 %', 'unit': '%'}
    e = [a for a in doc.get('allreduce', []) if a['ranks'] == 2 and a['size'] == 64 << 20
         and a.get('link_gbps') == 0 and measured(a)]
    pick = dma_pick(doc, 64 << 20, 1)
    if e and pick:
        best = max(pick.values(), key=lambda p: p[0]['gbps'])
        row['value'] = e[0]['busbw_gbps'] / best[0]['gbps'] * 100
        row['detail'] = '%.3g vs %.3g Gb/s (%s %s)' % (e[0]['busbw_gbps'], best[0]['gbps'],
                                                     best[1], best[0]['dir'])
    else:
        row['value'] = None
        row['reason'] = 'not measured'
    row['result'] = judge(row['value'], 90, True)
    t.append(row)

    # 6. llmctl load against an O_DIRECT read of the same file
    row = {'figure': 'llmctl load (>= 512 MiB model): throughput / O_DIRECT read of the file',
           'goal': '>= 90 %', 'unit': '%'}
    ld = doc.get('load')
    if ld and ld.get('llmctl_s') and ld.get('direct_read_s') and ld.get('verified'):
        row['value'] = ld['direct_read_s'] / ld['llmctl_s'] * 100
        row['detail'] = '%.2f s vs %.2f s for %d MB' % (ld['llmctl_s'], ld['direct_read_s'],
                                                       ld['bytes'] // 1000000)
        if ld['bytes'] < 512 << 20:
            row['reason'] = 'the model is smaller than 512 MiB'
    else:
        row['value'] = None
        row['reason'] = 'not measured'
    row['result'] = judge(row['value'], 90, True)
    t.append(row)
    for r in t:
        if r['value'] is not None:
            r['value'] = round(r['value'], 1)
    return t


# ----------------------------------------------------------------- the table

def human(n):
    for unit, shift in (('GiB', 30), ('MiB', 20), ('KiB', 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return '%d %s' % (n >> shift, unit)
    return '%d B' % n


def short(n):
    for unit, shift in (('G', 30), ('M', 20), ('K', 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return '%d%s' % (n >> shift, unit)
    return str(n)


def t_ns(ns):
    if ns is None:
        return '-'
    if ns >= 10e9:
        return '%.1f s' % (ns / 1e9)
    if ns >= 1e6:
        return '%.2f ms' % (ns / 1e6)
    if ns >= 1e4:
        return '%.1f us' % (ns / 1e3)
    return '%d ns' % ns


def print_table(doc, out=sys.stdout):
    def p(*a):
        print(*a, file=out)
    m = doc.get('qemu_model', {})
    host = doc.get('host', {})
    p()
    p('== llmdev bench (%s, %s)' % (doc.get('schema'), doc.get('date')))
    p('   guest: kernel %s (%s), clocksource %s, %s cards x %s HBM, QEMU TCG, %s vCPUs'
      % (doc.get('kernel'), doc.get('kernel_flavour'), doc.get('clocksource'), doc.get('cards'),
         human(doc['hbm_size']) if doc.get('hbm_size') else '?', doc.get('cpus')))
    p('   host: %s CPUs, load average %s -> %s; git %s%s; card model %s%s'
      % (host.get('cpus'), '%.1f' % host['loadavg_start'][0] if host.get('loadavg_start') else '?',
         '%.1f' % host['loadavg_end'][0] if host.get('loadavg_end') else '?',
         (doc.get('git', {}).get('commit') or '?')[:12],
         ' (dirty)' if doc.get('git', {}).get('dirty') else '',
         m.get('sha256'), ' (dirty)' if m.get('dirty') else ''))
    for r in doc.get('runs', []):
        p('   run %-8s links %-26s %5.0f s  %s' % (
            r['name'], 'unpaced (model link-gbps %s)' % r.get('link_gbps_model')
            if r.get('link_gbps') == 0 else 'paced at %s Gb/s' % r.get('link_gbps'),
            r.get('seconds', 0), r.get('status', 'no results')))
    p('   Gb/s = 1e9 bit/s; median and p99 (nearest rank) per operation; throughput from the median')
    p()
    for key, label in (('clock_gettime', 'clock_gettime(CLOCK_MONOTONIC)'),
                       ('null_ioctl', 'null ioctl (LLMDEV_INFO)')):
        f = doc.get(key)
        if f:
            p('%-34s median %9s  p99 %9s' % (label, t_ns(f['median_ns']), t_ns(f['p99_ns'])))
            for a in f.get('alternatives', []):
                p('  %-32s median %9s  p99 %9s' % (a['call'], t_ns(a['median_ns']),
                                                   t_ns(a['p99_ns'])))
    c = doc.get('ceiling')
    if c:
        p('%-34s %.4g Gb/s (h2c %.4g, c2h %.4g): bytes / DMA_BUSY_NS, %d x %s after a warm-up'
          % ('model copy ceiling', c['gbps'], c['h2c_gbps'], c['c2h_gbps'], c['transfers'],
             human(c['size'])))
    if doc.get('dma'):
        p()
        p('DMA, one card (xK: K transfers per operation; api submit = LLMDEV_DMA_SUBMIT each,')
        p('batch = one LLMDEV_DMA_BATCH; wait: FENCE_WAIT, or in the call = LLMDEV_BATCH_WAIT)')
        p('%-5s %-3s %-3s %-6s %-8s %-10s %10s %10s %9s %6s %5s %s' % (
            'size', 'dir', 'xK', 'api', 'wait', 'memory', 'median', 'p99', 'Gb/s', '%ceil',
            'n', 'verified'))
        for e in doc['dma']:
            head = '%-5s %-3s x%-2d %-6s %-8s %-10s' % (
                short(e['size']), e['dir'], e['inflight'], e['api'],
                'in call' if e.get('wait') == 'in_call' else 'fence', 
                'registered' if e['registered'] else 'plain')
            if e['status'] == 'skip':
                p('%s SKIP: %s' % (head, e.get('reason')))
            elif e['status'] != 'ok' or not e.get('verified'):
                p('%s FAILED: data did not verify' % head)
            else:
                p('%s %10s %10s %9.4g %6s %5d %s' % (
                    head, t_ns(e['median_ns']), t_ns(e['p99_ns']), e['gbps'],
                    '%.0f' % (e['gbps'] / dir_ceiling(doc, e) * 100)
                    if dir_ceiling(doc, e) else '-',
                    e['samples'], 'yes') + (
                    '  %.1fx the null ioctl beside it (%s)' % (
                        e['median_ns'] / e['null_ioctl_ns'], t_ns(e['null_ioctl_ns']))
                    if e.get('null_ioctl_ns') else ''))
    if doc.get('allreduce'):
        p()
        p('AllReduce f32 sum, out of place (algbw = size / time; busbw = algbw x 2(n-1)/n)')
        p('%-5s %-5s %-13s %10s %10s %9s %9s %6s %5s %s' % (
            'ranks', 'size', 'links', 'median', 'p99', 'algbw', 'busbw', '%link', 'n',
            'verified'))
        for e in doc['allreduce']:
            lk = e.get('link_gbps')
            head = '%-5d %-5s %-13s' % (e['ranks'], short(e['size']),
                                        'unpaced' if lk == 0 else '%s Gb/s' % lk)
            if e['status'] == 'skip':
                p('%s SKIP: %s' % (head, e.get('reason')))
            elif e['status'] != 'ok' or not e.get('verified'):
                p('%s FAILED: the result did not verify' % head)
            else:
                p('%s %10s %10s %9.4g %9.4g %6s %5d %s' % (
                    head, t_ns(e['median_ns']), t_ns(e['p99_ns']), e['algbw_gbps'],
                    e['busbw_gbps'], '%.0f' % (e['busbw_gbps'] / lk * 100) if lk else '-',
                    e['samples'], 'yes'))
    ld = doc.get('load')
    if ld:
        p()
        rounds = ld.get('rounds', 1)
        p('load: %s (%s, %d bytes)%s' % (
            ld.get('model'), ld['file'], ld['bytes'],
            '; medians of %d rounds%s' % (rounds, ' after a warm-up' if ld.get('warmup') else '')
            if rounds > 1 else ''))
        p('  %-40s %7.2f s %9.4g Gb/s%s' % (ld['command'], ld['llmctl_s'], ld['llmctl_gbps'],
                                            ', verified' if ld.get('verified') else ''))
        p('  %-40s %7.2f s %9.4g Gb/s' % ('dd if=%s bs=4M iflag=direct' % ld['file'],
                                          ld['direct_read_s'], ld['direct_read_gbps']))
        if rounds > 1:
            p('  rounds: load %s s; dd %s s' % (
                ' '.join('%.2f' % v for v in ld.get('llmctl_samples_s', [])),
                ' '.join('%.2f' % v for v in ld.get('direct_read_samples_s', []))))
    if doc.get('targets'):
        p()
        p('Targets (issue 10; a report, not a test)')
        p('%-86s %8s %8s  %s' % ('figure', 'now', 'goal', 'result'))
        for r in doc['targets']:
            v = '-' if r['value'] is None else ('%.1fx' % r['value'] if r['unit'] == 'x'
                                                else '%.1f %%' % r['value'])
            p('%-86s %8s %8s  %s' % (r['figure'], v, r['goal'], r['result']))
            notes = [r[k] for k in ('mode', 'detail', 'reason', 'reference') if r.get(k)]
            if notes:
                p('    %s' % '; '.join(notes))
    p()
    p('status: %s (%d verification failures, %d errors)' % (
        doc.get('status'), doc.get('verification_failures', 0), doc.get('errors', 0)))


# ------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', help='the model file for the load figures (>= 512 MiB)')
    ap.add_argument('--kernel', choices=('debian',), default='debian',
                    help='guest kernel: Debian\'s only (no figures from the debug kernel)')
    ap.add_argument('--link-gbps', type=int, default=8,
                    help='peer-link rate of the paced run, Gb/s (default 8)')
    ap.add_argument('--out', default=os.path.join(TOP, 'build/bench/results.json'))
    ap.add_argument('--bench-args', default='',
                    help='extra llmdev-bench options for both runs (e.g. "-t 0.5")')
    ap.add_argument('--vm-args', default='', help='extra scripts/vm.py options for both runs')
    ap.add_argument('--timeout', type=int, default=1800, help='seconds per VM run')
    ap.add_argument('--table', metavar='RESULTS', help="print a results file's table and exit")
    a = ap.parse_args()

    if a.table:
        with open(a.table) as f:
            print_table(json.load(f))
        return 0
    if not a.model or not os.path.isfile(a.model):
        ap.error('--model FILE is needed (make bench generates one)')
    if not 1 <= a.link_gbps <= 1600:
        ap.error('--link-gbps must be 1..1600')

    logs = os.path.join(TOP, 'build/logs')
    host = host_info()
    extra_vm = shlex.split(a.vm_args)
    common = ['--kernel', a.kernel, '--cards', str(CARDS), '--hbm-size', HBM] + extra_vm
    plan = [
        ('unpaced', common + ['--link-gbps', str(UNPACED_MODEL_GBPS), '--file', a.model],
         '--run unpaced --link-gbps 0 --link-gbps-model %d %s --load /dev/vda --load-verify '
         '--load-between "%s" --load-rounds %d -- %s'
         % (UNPACED_MODEL_GBPS, a.bench_args, LOAD_BETWEEN, LOAD_ROUNDS, LOAD_CMD)),
        ('paced', common + ['--link-gbps', str(a.link_gbps)],
         '--run paced --only allreduce --link-gbps %d --link-gbps-model %d %s'
         % (a.link_gbps, a.link_gbps, a.bench_args)),
    ]
    runs = []
    outdir = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(outdir, exist_ok=True)
    for name, vm_args, bench_args in plan:
        rc, doc, secs = run_vm(name, vm_args, bench_args,
                               os.path.join(logs, 'bench-%s.log' % name), a.timeout)
        runs.append({'name': name, 'vm_args': vm_args, 'bench_args': bench_args,
                     'rc': rc, 'doc': doc, 'seconds': secs, 'cards': vm_cards(vm_args)})
        if doc:     # each run's own document, beside the merged one
            with open(os.path.join(outdir, 'run-%s.json' % name), 'w') as f:
                json.dump(doc, f, indent=1)
    host['loadavg_end'] = list(os.getloadavg())
    doc = merge(runs, host, a.model)
    tmp = a.out + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    os.replace(tmp, a.out)
    print_table(doc)
    print('\nresults: %s; logs: build/logs/bench-{unpaced,paced}.log' % os.path.relpath(a.out, TOP))
    return 0 if doc['status'] == 'ok' else 2


if __name__ == '__main__':
    sys.exit(main())
