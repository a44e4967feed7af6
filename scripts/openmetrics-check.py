#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Validate the OpenMetrics expositions `llmctl stats --format openmetrics`
wrote in a VM run (selftests/llmctl prints each between the lines
"==== llmctl openmetrics begin ====" and "... end ====") with real parsers:

  - prometheus_client's OpenMetrics parser (python3-prometheus-client),
    strict about the OpenMetrics 1.0 text format (# EOF, TYPE/UNIT/HELP,
    _total suffixes, label syntax, numbers);
  - prometheus_client's parser of the older Prometheus text format, the
    one node_exporter's textfile collector reads.

Usage: openmetrics-check.py VM.LOG   (prints KTAP; exit 0 iff all pass,
4 when the log holds no exposition to check)
"""
import re
import sys

BEGIN = '==== llmctl openmetrics begin ===='
END = '==== llmctl openmetrics end ===='
KMSG = re.compile(r'^\[\s*\d+\.\d+\] ')


def expositions(lines):
    out, cur, prefix = [], None, ''
    for line in lines:
        line = line.rstrip('\r\n')
        if BEGIN in line:
            prefix = line[:line.index(BEGIN)]
            cur = []
        elif END in line and cur is not None:
            out.append(''.join(cur))
            cur = None
        elif cur is not None:
            if KMSG.match(line):
                continue  # a kernel message on the console, between our lines
            if line.startswith(prefix):
                line = line[len(prefix):]
            cur.append(line + '\n')
    return out


def main():
    try:
        from prometheus_client.openmetrics import parser as om
        from prometheus_client import parser as text
    except ImportError as e:
        print('TAP version 13\n1..0 # SKIP python3-prometheus-client: %s' % e)
        return 4
    with open(sys.argv[1], errors='replace') as f:
        docs = expositions(f)
    print('TAP version 13')
    if not docs:
        print('1..0 # SKIP no exposition in %s' % sys.argv[1])
        return 4
    print('1..%d' % (2 * len(docs)))
    n = fail = 0
    for i, doc in enumerate(docs):
        for name, parse in (('openmetrics', om.text_string_to_metric_families),
                            ('prometheus text', text.text_string_to_metric_families)):
            n += 1
            try:
                fams = list(parse(doc))
                samples = sum(len(f.samples) for f in fams)
                if not fams or not samples:
                    raise ValueError('no metric families')
                if name == 'openmetrics':
                    for fam in fams:
                        for s in fam.samples:
                            if 'card' not in s.labels or 'serial' not in s.labels:
                                raise ValueError('%s without card/serial' % s.name)
                print('ok %d exposition %d, %s parser: %d families, %d samples'
                      % (n, i + 1, name, len(fams), samples))
            except Exception as e:  # the parsers raise ValueError and others
                fail = 1
                print('# %s' % e)
                print('not ok %d exposition %d, %s parser' % (n, i + 1, name))
    return fail


if __name__ == '__main__':
    sys.exit(main())
