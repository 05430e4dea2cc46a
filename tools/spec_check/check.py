#!/usr/bin/env python3
"""The spec check: anomaly-detect against ref.py, an independent model written from docs/spec.md alone.

Runs random logs from gen.py and the hand-written cases of edge.py through ref.py and through the
binary at each of --threads, and compares, for every case and thread count: the exit code; the
output file's bytes (after a fatal error, an existing output must be left as it was); that a
fatal error about a log is one line naming the file; the --stats counts (events of each type per
file, skipped lines, flagged purchases, friendships at the end); and the file and line number of
the skipped lines reported on stderr (the first 10 and the count of the rest).

    python3 tools/spec_check/check.py [--bin PATH] [--cases N] [--seed S] [--threads 1,2,8]
                                      [--jobs J] [--keep DIR] [--no-edge]

Prints the seed; exits 1 after describing every mismatch, with the failing cases' files kept in
--keep DIR (default: a new temporary directory, named in the report). Random case i uses seed
S + i, so `--seed X --cases 1 --no-edge` runs case X alone.
"""
import argparse
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

if sys.version_info < (3, 9):
    sys.exit('spec check: needs Python 3.9 or later, this is %s' % sys.version.split()[0])
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import edge  # noqa: E402
import gen  # noqa: E402
import ref  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
BATCH, STREAM, OUTPUT, STATS = 'batch_log.json', 'stream_log.json', 'flagged.json', 'stats.json'
OLD_OUTPUT = b'an existing output, to be replaced only by a successful run\n'
WARNING_RE = re.compile(r'warning: (.*):(\d+): skipped: ')
MORE_RE = re.compile(r'warning: (\d+) more skipped lines? not shown')
TIMEOUT = 120


def shorten(data, width=160):
    text = repr(data)[1:] if isinstance(data, bytes) else repr(data)
    return text if len(text) <= width else text[:width] + '...'


def overrides(args):
    """The -D and -T texts of a case's arguments (None when absent)."""
    found = {'-D': None, '-T': None}
    for option, value in zip(args[::2], args[1::2]):
        found[option] = value
    return found['-D'], found['-T']


def run_program(binary, directory, threads, args):
    """Runs the binary on the case in directory; returns (exit code, output, stderr, stats)."""
    for name in (OUTPUT, STATS):
        if os.path.exists(os.path.join(directory, name)):
            os.remove(os.path.join(directory, name))
    with open(os.path.join(directory, OUTPUT), 'wb') as file:
        file.write(OLD_OUTPUT)
    command = [binary, '-q', '--threads', str(threads), '--stats', STATS] + args + [
        BATCH, STREAM, OUTPUT]
    try:
        process = subprocess.run(command, cwd=directory, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=TIMEOUT)
        code, stderr = process.returncode, process.stderr.decode('utf-8', 'replace')
    except subprocess.TimeoutExpired:
        code, stderr = 'timeout', ''
    with open(os.path.join(directory, OUTPUT), 'rb') as file:
        output = file.read()
    stats = None
    if os.path.exists(os.path.join(directory, STATS)):
        with open(os.path.join(directory, STATS), 'rb') as file:
            stats = file.read()
    return code, output, stderr, stats


def first_difference(program, expected):
    """Where two outputs differ, in a few words."""
    got, want = program.split(b'\n'), expected.split(b'\n')
    line = next(i for i in range(max(len(got), len(want)))
                if i >= len(got) or i >= len(want) or got[i] != want[i])
    return ('%d flagged lines, reference %d; first difference at line %d: program %s, '
            'reference %s' % (program.count(b'\n'), expected.count(b'\n'), line + 1,
                              shorten(got[line]) if line < len(got) else 'none',
                              shorten(want[line]) if line < len(want) else 'none'))


def stats_counts(stats):
    """The figures of a --stats file that the reference also computes."""
    document = json.loads(stats)
    counts = {}
    for phase in ('batch', 'stream'):
        for kind in ('events', 'purchase', 'befriend', 'unfriend'):
            counts[phase + ' ' + kind] = document[phase]['counts'].get(kind, 0)
    counts['skipped'] = sum(document['skipped'].values())
    counts['flagged'] = document['flagged']
    counts['friendships'] = document['friendships']
    return counts


def expected_counts(result):
    counts = {phase + ' ' + kind: result.counts[phase][kind]
              for phase in ('batch', 'stream') for kind in ('events', 'purchase', 'befriend',
                                                            'unfriend')}
    counts.update(skipped=len(result.skipped), flagged=result.flagged,
                  friendships=result.friendships)
    return counts


def reported_skips(stderr):
    """The (file, line) of the skipped lines shown on stderr, and the count of the rest."""
    shown, more = [], 0
    for line in stderr.split('\n'):
        match = WARNING_RE.match(line)
        if match:
            shown.append((match.group(1), int(match.group(2))))
        match = MORE_RE.fullmatch(line)
        if match:
            more = int(match.group(1))
    return shown, more


def describe_skips(shown, more):
    """[('batch_log.json', 5), ('batch_log.json', 9)], 3 -> 'batch_log.json:5,9 and 3 more'."""
    files = {}
    for label, line in shown:
        files.setdefault(label, []).append(str(line))
    text = ' '.join('%s:%s' % (label, ','.join(lines)) for label, lines in files.items())
    return (text or 'none') + (' and %d more' % more if more else '')


def compare(result, code, output, stderr, stats):
    """The mismatches of one run against the reference's result, as short descriptions."""
    if code != result.exit_code:
        reason = 'reference: %s' % result.fatal if result.fatal else 'program: %s' % shorten(
            stderr.rstrip('\n').split('\n')[-1] or 'no message', 200)
        return ['exit code %s, reference %d (%s)' % (code, result.exit_code, reason)]
    problems = []
    if code != 0:
        if output != OLD_OUTPUT:
            problems.append('a fatal error changed the existing output')
        lines = stderr.rstrip('\n').split('\n')  # not splitlines: a message may hold \x0c
        if result.fatal.kind == 'input' and (len(lines) != 1 or BATCH not in lines[0]):
            problems.append('the fatal error is not one line naming %s: %s'
                            % (BATCH, shorten(stderr, 200)))
        return problems
    if output != result.output:
        problems.append(first_difference(output, result.output))
    if stats is None:
        problems.append('no --stats file')
    else:
        try:
            got = stats_counts(stats)
        except (ValueError, KeyError, TypeError) as error:
            got = 'unreadable (%s)' % error
        want = expected_counts(result)
        if got != want:
            if isinstance(got, dict):
                got = {key: value for key, value in got.items() if value != want.get(key)}
                want = {key: want[key] for key in got}
            problems.append('--stats %s, reference %s' % (got, want))
    shown, more = reported_skips(stderr)
    want_shown = [(label, line) for label, line, _ in result.skipped[:10]]
    want_more = max(0, len(result.skipped) - 10)
    if (shown, more) != (want_shown, want_more):
        problems.append('skipped lines shown on stderr: %s, reference %s'
                        % (describe_skips(shown, more), describe_skips(want_shown, want_more)))
    return problems


def check_case(job):
    """Runs one case at every thread count; returns a report (mismatches, figures, kept files)."""
    case, binary, thread_counts, keep_root = job
    try:
        return _check_case(case, binary, thread_counts, keep_root)
    except Exception as error:  # a bug of the checker or of ref.py: a failure all the same
        return {'name': case.name, 'about': case.about, 'args': case.args, 'flagged': 0,
                'skipped': 0, 'fatal': False, 'kept': None,
                'mismatches': ['the check itself failed: %r' % error]}


def _check_case(case, binary, thread_counts, keep_root):
    degree, tracked = overrides(case.args)
    result = ref.replay(case.batch, case.stream, degree, tracked, BATCH, STREAM)
    report = {'name': case.name, 'about': case.about, 'args': case.args, 'mismatches': [],
              'flagged': result.flagged, 'skipped': len(result.skipped),
              'fatal': result.exit_code != 0, 'kept': None}
    with tempfile.TemporaryDirectory(prefix='spec-check-') as directory:
        for name, data in ((BATCH, case.batch), (STREAM, case.stream)):
            with open(os.path.join(directory, name), 'wb') as file:
                file.write(data)
        runs = {}
        problems = {}  # description -> thread counts
        for threads in thread_counts:
            runs[threads] = run_program(binary, directory, threads, case.args)
            for problem in compare(result, *runs[threads]):
                problems.setdefault(problem, []).append(threads)
        report['mismatches'] = ['threads %s: %s' % (','.join(map(str, threads)), problem)
                                for problem, threads in problems.items()]
        if problems and keep_root:
            report['kept'] = keep_case(case, result, runs, directory, keep_root, binary)
    return report


def keep_case(case, result, runs, directory, keep_root, binary):
    """Copies a failing case with every output into keep_root; returns its folder."""
    folder = os.path.join(keep_root, re.sub(r'[^A-Za-z0-9._-]+', '_', case.name).strip('_'))
    while os.path.exists(folder):
        folder += '_'
    os.makedirs(folder)
    for name in (BATCH, STREAM):
        shutil.copy(os.path.join(directory, name), folder)
    files = {'expected.txt': ('exit code %d%s\n%s\nskipped lines: %s\n' % (
        result.exit_code, ' (%s)' % result.fatal if result.fatal else '',
        json.dumps(expected_counts(result)), result.skipped)).encode()}
    if result.exit_code == 0:
        files['expected_flagged.json'] = result.output
    for threads, (code, output, stderr, stats) in runs.items():
        files['threads-%d.txt' % threads] = ('exit code %s\n%s' % (code, stderr)).encode()
        files['threads-%d.flagged.json' % threads] = output
        if stats is not None:
            files['threads-%d.stats.json' % threads] = stats
    args = ' '.join(shlex.quote(arg) for arg in case.args)
    files['repro.sh'] = ('# %s: %s\n%s -q --threads 1 %s %s %s %s\npython3 %s %s %s %s %s\n' % (
        case.name, case.about, shlex.quote(binary), args, BATCH, STREAM, OUTPUT,
        shlex.quote(os.path.join(HERE, 'ref.py')), args, BATCH, STREAM,
        'expected_flagged.json')).encode()
    for name, data in files.items():
        with open(os.path.join(folder, name), 'wb') as file:
            file.write(data)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--bin', default=os.path.join(REPO, 'target', 'release', 'anomaly-detect'),
                        help='the program (default: target/release/anomaly-detect)')
    parser.add_argument('--cases', type=int, default=300, help='random cases (default 300)')
    parser.add_argument('--seed', type=int, help='first random seed (default: a new one)')
    parser.add_argument('--threads', default='1,2,8', help='thread counts (default 1,2,8)')
    parser.add_argument('--jobs', type=int, default=os.cpu_count() or 1,
                        help='cases run at once (default: the number of cores)')
    parser.add_argument('--keep', help='where to keep failing cases (default: a temporary dir)')
    parser.add_argument('--no-edge', action='store_true', help="skip edge.py's cases")
    options = parser.parse_args()

    binary = os.path.abspath(options.bin)
    if not os.access(binary, os.X_OK):
        sys.exit('spec check: no program at %s (cargo build --release --bin anomaly-detect)'
                 % binary)
    thread_counts = [int(count) for count in options.threads.split(',')]
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(10 ** 9)
    keep_root = os.path.abspath(options.keep) if options.keep else tempfile.mkdtemp(
        prefix='spec-check-failures-')
    os.makedirs(keep_root, exist_ok=True)
    edge_cases = [] if options.no_edge else edge.cases()
    print('spec check: seed %d, %d random cases + %d edge cases, threads %s, %d jobs, %s'
          % (seed, options.cases, len(edge_cases), options.threads, options.jobs,
             options.bin), flush=True)

    started = time.monotonic()
    cases = [gen.generate(seed + i) for i in range(options.cases)] + edge_cases
    jobs = [(case, binary, thread_counts, keep_root) for case in cases]
    failed = []
    flagging = flagged = skipped = fatal = 0
    with ProcessPoolExecutor(max_workers=options.jobs) as pool:
        for number, report in enumerate(pool.map(check_case, jobs, chunksize=4)):
            flagged += report['flagged']
            skipped += report['skipped']
            fatal += report['fatal']
            if number < options.cases and report['flagged']:
                flagging += 1
            if report['mismatches']:
                failed.append(report)
                arguments = ' '.join(shlex.quote(arg) for arg in report['args'])
                print('MISMATCH %s%s%s' % (report['name'], ' (args %s)' % arguments
                                           if arguments else '',
                                           ', %s' % report['about'] if report['about'] else ''))
                for mismatch in report['mismatches']:
                    print('    ' + mismatch)
                print('    files: %s' % report['kept'], flush=True)
    if not failed and not options.keep:
        shutil.rmtree(keep_root, ignore_errors=True)

    print('spec check: %d cases in %.1f s, %d mismatching; the reference flagged %d purchases '
          '(%d of %d random cases flag some), skipped %d lines, %d fatal'
          % (len(cases), time.monotonic() - started, len(failed), flagged, flagging,
             options.cases, skipped, fatal))
    if failed:
        names = [report['name'] for report in failed]
        print('spec check FAILED (seed %d): %s%s' % (seed, ', '.join(names[:20]), ' and %d more'
                                                      % (len(names) - 20) if names[20:] else ''))
        print('one random case again: python3 %s --seed X --cases 1 --no-edge'
              % os.path.relpath(__file__))
        return 1
    if options.cases >= 100 and flagging < options.cases // 2:
        print('spec check FAILED: only %d of %d random cases flag anything; the generator no '
              'longer tests the decision' % (flagging, options.cases))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
