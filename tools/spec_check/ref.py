#!/usr/bin/env python3
"""A slow, obviously-correct reference implementation of docs/spec.md, for the spec check.

It was written from the contract alone, without reading the Rust source, and shares nothing with it:
Python's own `json` module parses the lines, the friendship graph is a dict of sets, a network is
a plain breadth-first search, and every check sorts all of the network's purchases.

    python3 tools/spec_check/ref.py [-D D] [-T T] BATCH STREAM OUTPUT

writes OUTPUT like the program (exit 0), or prints one error line and exits 2 without touching
OUTPUT. `replay()` is the same as a function, used by check.py.

Where the spec is silent this model takes the decisions listed in docs/design.md's "Decisions where the
spec is silent" (those that concern the output):

1. Every output line ends with "\\n", the last one included.
2. A fatal error writes no output: an existing OUTPUT is left as it was.
3. The parameter line is validated even when -D/-T override it. -D and -T follow the parameter
   line's rule: decimal digits only (no sign, leading zeros fine), any D >= 1 however large (more
   than any path: the whole connected component), 2 <= T <= 10000000.
4. Timestamps: the years 0000-9999 of the proleptic Gregorian calendar; hour 24 and second 60
   are malformed.
5. JSON: numbers of any size are valid and judged by their literal text; a lone surrogate escape
   ("\\ud800") anywhere makes the line malformed; duplicate keys are checked at the top level of
   the line only, not inside nested extra values. (docs/design.md accepts 65 536 levels inside an extra value;
   Python's json refuses about 1 000, so the generated cases stay far below that.)
6. Skipped lines are reported on stderr as `warning: FILE:LINE: skipped: REASON`, the first 10
   in full, then `warning: K more skipped lines not shown`. Only FILE and LINE are modelled; the
   wording of the reason, and which fault a line with several is blamed for, are the program's.
7. Befriend or unfriend of unknown users creates nothing visible.

Further readings of the spec taken here (docs/design.md's "Input hygiene" table states the first two):
a blank line holds only spaces, tabs and "\\r" and is not counted; the parameter line is the
first non-blank line, and must be a JSON object by the same rules as an event line (UTF-8, no
duplicate keys, ...), whose extra keys are ignored; string values (event_type, timestamp, amount,
ids, D, T) are judged after JSON unescaping, like ids.
"""
import itertools
import json
import math
import re
import sys

MAX_CENTS = 1000000000 * 100
MAX_T = 10000000
AMOUNT_RE = re.compile(r'([0-9]+)(?:\.([0-9]{1,2}))?')
TIMESTAMP_RE = re.compile(r'([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})')
DIGITS_RE = re.compile(r'[0-9]+')
LINE_WS = b' \t\r'  # trimmed around every line; a line of only these is blank
BOM = b'\xef\xbb\xbf'


class Bad(Exception):
    """A malformed line (its message is for people; only the line number is compared)."""


class Fatal(Exception):
    """A fatal error: exit 2, no output."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind  # 'option' (a bad -D/-T) or 'input' (a problem with a log)


# ---------------------------------------------------------------- JSON, keeping literal texts

class Number:
    """A JSON number, kept as its literal text."""

    def __init__(self, text, is_integer):
        self.text = text
        self.is_integer = is_integer


class Object:
    """A JSON object, kept as its list of (key, value) pairs so that duplicates can be seen."""

    def __init__(self, pairs):
        self.pairs = pairs


def _refuse_constant(name):
    raise ValueError('not JSON: ' + name)  # NaN, Infinity, -Infinity


_DECODER = json.JSONDecoder(object_pairs_hook=Object,
                            parse_int=lambda text: Number(text, True),
                            parse_float=lambda text: Number(text, False),
                            parse_constant=_refuse_constant,
                            strict=True)  # raw control characters inside strings are errors


def _has_lone_surrogate(value):
    """Whether a string anywhere in value holds a lone surrogate (a loop: values nest deeply)."""
    pending = [value]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
                return True
        elif isinstance(value, Object):
            for key, item in value.pairs:
                pending += [key, item]
        elif isinstance(value, list):
            pending += value
    return False


def parse_object(line):
    """The top-level keys of one trimmed line (bytes) as a dict, or raises Bad."""
    try:
        text = line.decode('utf-8')
    except UnicodeDecodeError:
        raise Bad('not valid UTF-8')
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError) as error:
        raise Bad('not valid JSON: %s' % error)
    if not isinstance(value, Object):
        raise Bad('not a JSON object')
    if _has_lone_surrogate(value):
        raise Bad('lone surrogate escape')
    fields = {}
    for key, item in value.pairs:
        if key in fields:
            raise Bad('key %r appears twice' % key)
        fields[key] = item
    return fields


# ---------------------------------------------------------------- fields

def digits_value(text):
    """The value of a string of decimal digits, capped at 10**30 (far above any limit)."""
    significant = text.lstrip('0')
    return 10 ** 30 if len(significant) > 30 else int(significant or '0')


def field(fields, key):
    if key not in fields:
        raise Bad('missing field %r' % key)
    return fields[key]


def user_id(fields, key):
    value = field(fields, key)
    if isinstance(value, str) and value != '':
        return value
    if isinstance(value, Number) and value.is_integer:
        return value.text  # 7 and "7" are the same user; -7 is "-7"
    raise Bad('invalid id')


def amount_cents(fields):
    value = field(fields, 'amount')
    if isinstance(value, str):
        text = value
    elif isinstance(value, Number):
        text = value.text
    else:
        raise Bad('invalid amount')
    match = AMOUNT_RE.fullmatch(text)
    if not match:
        raise Bad('invalid amount')
    dollars, decimals = match.group(1), (match.group(2) or '')
    cents = digits_value(dollars) * 100 + int(decimals.ljust(2, '0'))
    if cents > MAX_CENTS:
        raise Bad('invalid amount')
    return cents


def days_in_month(year, month):
    if month == 2:
        leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def timestamp(fields):
    """The timestamp text: fixed width, so comparing texts compares times."""
    value = field(fields, 'timestamp')
    match = TIMESTAMP_RE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise Bad('invalid timestamp')
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= days_in_month(year, month)):
        raise Bad('invalid timestamp')
    if hour > 23 or minute > 59 or second > 59:
        raise Bad('invalid timestamp')
    return value


def parse_event(line):
    """(event_type, timestamp, a, b): a purchase's (id, cents) or a friendship's (id1, id2)."""
    fields = parse_object(line)
    event_type = field(fields, 'event_type')
    if event_type not in ('purchase', 'befriend', 'unfriend'):
        raise Bad('unknown event_type')
    when = timestamp(fields)
    if event_type == 'purchase':
        return event_type, when, user_id(fields, 'id'), amount_cents(fields)
    return event_type, when, user_id(fields, 'id1'), user_id(fields, 'id2')


def parameter(value):
    """D or T from the parameter line (a JSON integer or string of digits), or None."""
    if isinstance(value, Number):
        text = value.text if value.is_integer else ''
    elif isinstance(value, str):
        text = value
    else:
        return None
    return digits_value(text) if DIGITS_RE.fullmatch(text) else None


# ---------------------------------------------------------------- the replay

def split_lines(data):
    """A log's lines (bytes, untrimmed), numbered from 1; the text after a final \\n is none."""
    if data.startswith(BOM):
        data = data[len(BOM):]
    lines = data.split(b'\n')
    if lines[-1] == b'':
        lines.pop()
    return lines


def dollars(cents):
    return '%d.%02d' % (cents // 100, cents % 100)


class Result:
    """What a run must do: exit code, output bytes, counts and skipped lines."""

    def __init__(self):
        self.exit_code = 0
        self.fatal = None          # Fatal, when exit_code is 2
        self.output = b''
        self.counts = {name: {'events': 0, 'purchase': 0, 'befriend': 0, 'unfriend': 0}
                       for name in ('batch', 'stream')}
        self.skipped = []          # (file label, line number, reason), in the order reported
        self.flagged = 0
        self.friendships = 0       # at the end


def replay(batch, stream, degree=None, tracked=None, batch_name='batch_log.json',
           stream_name='stream_log.json'):
    """Replays two logs (bytes); degree/tracked are the -D/-T texts or None. Returns a Result."""
    result = Result()
    try:
        _replay(result, batch, stream, degree, tracked, batch_name, stream_name)
    except Fatal as fatal:
        result.exit_code = 2
        result.fatal = fatal
        result.output = b''
    return result


def _replay(result, batch, stream, degree, tracked, batch_name, stream_name):
    for option, text in (('-D', degree), ('-T', tracked)):
        if text is not None and not DIGITS_RE.fullmatch(text):
            raise Fatal('option', '%s must be a decimal integer, got %r' % (option, text))
    if degree is not None and digits_value(degree) < 1:
        raise Fatal('option', '-D must be at least 1')
    if tracked is not None and not 2 <= digits_value(tracked) <= MAX_T:
        raise Fatal('option', '-T must be between 2 and %d' % MAX_T)

    batch_lines = split_lines(batch)
    stream_lines = split_lines(stream)

    # The parameter line: the batch's first non-blank line.
    blank = [line.strip(LINE_WS) == b'' for line in batch_lines]
    if all(blank):
        raise Fatal('input', '%s: missing parameter line' % batch_name)
    parameter_index = blank.index(False)
    try:
        parameters = parse_object(batch_lines[parameter_index].strip(LINE_WS))
    except Bad as bad:
        raise Fatal('input', '%s: invalid parameter line: %s' % (batch_name, bad))
    D = parameter(parameters.get('D'))
    T = parameter(parameters.get('T'))
    if D is None or D < 1:
        raise Fatal('input', '%s: invalid or missing D' % batch_name)
    if T is None or not 2 <= T <= MAX_T:
        raise Fatal('input', '%s: invalid or missing T' % batch_name)
    if degree is not None:
        D = digits_value(degree)
    if tracked is not None:
        T = digits_value(tracked)

    friends = {}    # user -> set of friends
    purchases = {}  # user -> list of (timestamp, sequence, cents); sequence = order in the input
    output = []

    sequence = itertools.count()

    def apply(event):
        kind, when, a, b = event
        if kind == 'purchase':
            purchases.setdefault(a, []).append((when, next(sequence), b))
        elif kind == 'befriend':
            if a != b:
                friends.setdefault(a, set()).add(b)
                friends.setdefault(b, set()).add(a)
        else:
            friends.get(a, set()).discard(b)
            friends.get(b, set()).discard(a)

    def network(user):
        """Users at distance 1..=D from user (user excluded), by breadth-first search."""
        seen = {user}
        frontier = [user]
        members = []
        depth = 0
        while frontier and depth < D:
            depth += 1
            following = []
            for x in frontier:
                for y in friends.get(x, ()):
                    if y not in seen:
                        seen.add(y)
                        following.append(y)
            members += following
            frontier = following
        return members

    def check(purchase, line):
        _, _, user, cents = purchase
        candidates = [p for member in network(user) for p in purchases.get(member, ())]
        candidates.sort(reverse=True)  # latest first: highest (timestamp, sequence)
        baseline = [p[2] for p in candidates[:T]]
        N = len(baseline)
        if N < 2:
            return
        S = sum(baseline)
        Q = sum(x * x for x in baseline)
        spread = N * Q - S * S  # N^2 times the population variance
        excess = N * cents - S
        if excess > 0 and excess * excess > 9 * spread:
            mean, sd = S // N, math.isqrt(spread) // N
            # line is a trimmed JSON object: its last byte is the final }
            output.append(line[:-1] + b', "mean": "%s", "sd": "%s"}\n'
                          % (dollars(mean).encode(), dollars(sd).encode()))

    for name, label, lines, start in (('batch', batch_name, batch_lines, parameter_index + 1),
                                      ('stream', stream_name, stream_lines, 0)):
        for index in range(start, len(lines)):
            line = lines[index].strip(LINE_WS)
            if line == b'':
                continue
            try:
                event = parse_event(line)
            except Bad as bad:
                result.skipped.append((label, index + 1, str(bad)))
                continue
            result.counts[name]['events'] += 1
            result.counts[name][event[0]] += 1
            if name == 'stream' and event[0] == 'purchase':
                check(event, line)
            apply(event)

    result.output = b''.join(output)
    result.flagged = len(output)
    result.friendships = sum(len(f) for f in friends.values()) // 2


def warning_lines(skipped):
    """The stderr lines that report skipped lines: the first 10 in full, then a count."""
    lines = ['warning: %s:%d: skipped: %s' % entry for entry in skipped[:10]]
    if len(skipped) > 10:
        more = len(skipped) - 10
        lines.append('warning: %d more skipped %s not shown' % (more, 'line' if more == 1 else 'lines'))
    return lines


def main(argv):
    options = {'-D': None, '-T': None}
    paths = []
    arguments = iter(argv)
    for argument in arguments:
        if argument in options:
            options[argument] = next(arguments, '')
        else:
            paths.append(argument)
    if len(paths) != 3:
        sys.stderr.write('usage: ref.py [-D D] [-T T] BATCH STREAM OUTPUT\n')
        return 2
    batch_path, stream_path, output_path = paths
    try:
        with open(batch_path, 'rb') as file:
            batch = file.read()
        with open(stream_path, 'rb') as file:
            stream = file.read()
    except OSError as error:
        sys.stderr.write('Error: %s\n' % error)
        return 2
    result = replay(batch, stream, options['-D'], options['-T'], batch_path, stream_path)
    if result.fatal:
        sys.stderr.write('Error: %s\n' % result.fatal)
        return 2
    for line in warning_lines(result.skipped):
        sys.stderr.write(line + '\n')
    with open(output_path, 'wb') as file:
        file.write(result.output)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
