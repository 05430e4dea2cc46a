#!/usr/bin/env python3
"""Random small dirty logs for the spec check: generate(seed) gives one case, always the same one.

A case is a batch log, a stream log (bytes) and sometimes -D/-T overrides: 5-40 users (plus a few
odd ids such as "07", "-7", "7 ", "é"), 20-400 events, heavy friendship churn, D 1-4 (sometimes
huge), T 2-6 (sometimes up to 60), ties and out-of-order timestamps, amounts tiny, usual, mixed
or near the 1000000000.00 limit, JSON written in many ways (keys in any order, odd white space,
escapes, integer ids and amounts, extra keys) and up to 30% of dirty lines of 22 kinds, CRLF,
BOMs and a missing final newline.

    python3 tools/spec_check/gen.py SEED DIR    # writes DIR/batch_log.json, DIR/stream_log.json
"""
import json
import os
import random
import sys


class Case:
    """One input for both implementations; name says how to get it again."""

    def __init__(self, name, batch, stream, args=(), about=''):
        self.name = name
        self.batch = batch
        self.stream = stream
        self.args = list(args)
        self.about = about


BAD_AMOUNTS = ['"1e3"', '"12.345"', '"-1"', '".5"', '"+5"', '""', '16.830', '"1."', '"1,5"', '" 5"',
               'null', '"1000000000.01"', '-1', '1E3', '1e3', '"5 "', 'true', '[5]', '"١٢"',
               '"10000000000"', '1000000000.001', '"0x10"', '{"a":1}', '"5.5.5"', '"\\u0031.5x"']
GOOD_AMOUNTS = ['"1000000000.00"', '1000000000', '"0000000000000000000000001.5"', '0.5',
                '"\\u0031\\u0032.5"', '0', '"0.0"', '999999999.99',
                '"00000000000000000000001000000000.00"']
BAD_TIMESTAMPS = ['2017-02-30 10:00:00', '2017-06-13 10:00:60', '2017-06-13 24:00:00',
                  '2017-6-13 10:00:00', '2017-06-13T10:00:00', '2017-06-13 10:00:00Z',
                  '1900-02-29 10:00:00', '2017-13-01 00:00:00', '2017-00-10 00:00:00',
                  '2017-06-00 00:00:00', '2017-06-13 10:00', ' 2017-06-13 10:00:00',
                  '2017-06-13  10:00:00', '2017-06-31 00:00:00', '2017-06-13 10:60:00',
                  '20170-6-13 10:00:00', '2017-06-13 10:00:00.5', '']
GOOD_TIMESTAMPS = ['2016-02-29 10:00:00', '2000-02-29 23:59:59', '2017-06-13 00:00:00',
                   '2017\\u002d06-13 11:00:00', '2017-12-31 23:59:59']
BAD_IDS = ['""', 'null', '7.0', '{}', '[]', 'true', '1e2', '[1]', '7E0', '-0.0']
GOOD_IDS = ['-7', '"07"', '123456789012345678901234567890', '"\\u0037"', '-0', '"  "']
ODD_USERS = ['07', '-7', '7 ', 'é', '0']  # distinct users, none equal to a plain number
NOT_OBJECTS = ['garbage', '{', '}', '[1,2]', '"str"', '42', 'null', '{"event_type":"purchase"',
               '{}', '{"a":1}{"b":2}', "{'event_type':'purchase'}", '{"event_type":"purchase",}',
               '{,}', '\x0c{"a":1}', '\u00a0{"a":1}']
EXTRA_VALUES = ['"x"', '1', 'null', '[1,2,{"a":"b"}]', '{"k":{"z":[]}}', 'true', '"caf\\u00e9"',
                '"\\ud83d\\ude00"', '1.5e10', '-0', '"🎉"', '1e400', '"a\\"}b"']
# Invalid UTF-8, written through Python's surrogateescape: a stray byte, a truncated sequence,
# an encoded surrogate, an overlong encoding.
INVALID_UTF8 = ['\udcff', '\udcc3', '\udced\udca0\udc80', '\udcc0\udcaf']


def generate(seed):
    R = random.Random(seed)
    users = R.randint(5, 40)
    events = R.randint(20, 400)
    D = R.randint(1, 4) if R.random() < 0.9 else R.choice([1000, 99999999999999999999])
    T = R.randint(2, 6) if R.random() < 0.8 else R.randint(7, 60)
    churn = R.uniform(0.2, 0.6)
    dirty_rate = R.choice([0, 0.05, 0.15, 0.3])
    amounts = R.choice(['small', 'normal', 'mixed', 'huge'])
    crlf_rate = R.choice([0, 0, 0.3, 1.0])
    clock = [R.randint(0, 50000)]  # seconds after 2017-06-13 00:00:00

    def id_text(user):
        if isinstance(user, str):
            return json.dumps(user)
        text = str(user)
        r = R.random()
        if r < 0.6:
            return '"%s"' % text
        if r < 0.9:
            return text  # a JSON integer
        i = R.randrange(len(text))  # one character escaped
        return '"%s\\u%04x%s"' % (text[:i], ord(text[i]), text[i + 1:])

    def any_user():
        return R.choice(ODD_USERS) if R.random() < 0.05 else R.randint(1, users)

    def timestamp_text():
        if R.random() < 0.6:
            clock[0] += R.randint(1, 5) * (R.random() < 0.75)  # else the same second again
        t = clock[0]
        if R.random() < 0.15:
            t = max(0, t - R.randint(1, 30))  # out of order
        return '2017-06-%02d %02d:%02d:%02d' % (13 + t // 86400, t % 86400 // 3600,
                                                 t % 3600 // 60, t % 60)

    def amount_text():
        if amounts == 'huge':
            cents = R.choice([R.randint(0, 10 ** 11), 10 ** 11 - R.randint(0, 3), R.randint(0, 3),
                              R.randint(10 ** 10, 10 ** 11), 5 * 10 ** 10 + R.randint(-2, 2)])
        elif amounts == 'small' or (amounts == 'mixed' and R.random() < 0.5):
            cents = R.randint(0, 12) if R.random() < 0.9 else R.randint(20, 60)
        else:
            cents = R.randint(100, 9000)
            if R.random() < 0.08:
                cents *= R.randint(10, 100)
        whole, part = divmod(cents, 100)
        r = R.random()
        if part == 0 and r < 0.3:
            text = str(whole)
        elif part % 10 == 0 and r < 0.5:
            text = '%d.%d' % (whole, part // 10)
        else:
            text = '%d.%02d' % (whole, part)
        if R.random() < 0.05:
            return '"%s%s"' % ('0' * R.randint(1, 3), text)
        return text if R.random() < 0.3 else '"%s"' % text

    def space():
        return R.choice(['', '', '', ' ', '  ', '\t', ' \t '])

    def render(pairs):
        if R.random() < 0.3:
            R.shuffle(pairs)
        members = [space() + '"%s"' % key + space() + ':' + space() + value + space()
                   for key, value in pairs]
        return '{' + R.choice([',', ', ', ' ,']).join(members) + '}'

    def good_event():
        if R.random() < churn:
            a, b = any_user(), any_user()
            if R.random() < 0.03:
                b = a
            pairs = [('event_type', '"%s"' % R.choice(['befriend', 'befriend', 'unfriend'])),
                     ('timestamp', '"%s"' % timestamp_text()), ('id1', id_text(a)),
                     ('id2', id_text(b))]
        else:
            pairs = [('event_type', '"purchase"'), ('timestamp', '"%s"' % timestamp_text()),
                     ('id', id_text(any_user())), ('amount', amount_text())]
        if R.random() < 0.15:
            pairs.append(('note', R.choice(EXTRA_VALUES)))
        if R.random() < 0.03:
            pairs += [('mean', '"1.00"'), ('sd', '"2.00"')]  # appended to all the same
        return pairs

    def replaced(pairs, key, choices):
        return [(k, R.choice(choices) if k == key else v) for k, v in pairs]

    def dirty_line():
        pairs = good_event()
        keys = [key for key, _ in pairs]
        kind = R.randrange(22)
        if kind == 0:
            return R.choice(NOT_OBJECTS)
        if kind == 1:
            return render(replaced(pairs, 'event_type', [
                '"Purchase"', '"buy"', '""', 'null', '1', '"purchase "', '["purchase"]',
                '"befriends"']))
        if kind == 2:  # a field missing
            del pairs[R.randrange(len(pairs))]
            return render(pairs)
        if kind == 3:
            if 'amount' in keys:
                return render(replaced(pairs, 'amount', BAD_AMOUNTS))
            return render(replaced(pairs, 'id1', BAD_IDS))
        if kind == 4:
            return render(replaced(pairs, 'timestamp', ['"%s"' % t for t in BAD_TIMESTAMPS]))
        if kind == 5:
            return render(replaced(pairs, R.choice(['id', 'id1', 'id2']), BAD_IDS))
        if kind == 6:  # a key twice, sometimes spelled with an escape
            key, value = pairs[R.randrange(len(pairs))]
            if R.random() < 0.3:
                key = '\\u%04x%s' % (ord(key[0]), key[1:])
            return render(pairs + [(key, value)])
        if kind == 7:
            return render(pairs) + R.choice([' x', ',', '}', ' {}', '\x00', ' //c'])
        if kind == 8:
            text = render(pairs)
            i = R.randrange(len(text))
            return text[:i] + R.choice(INVALID_UTF8) + text[i:]
        if kind == 9:
            return render(replaced(pairs, 'amount', GOOD_AMOUNTS))
        if kind == 10:
            return render(replaced(pairs, 'timestamp', ['"%s"' % t for t in GOOD_TIMESTAMPS]))
        if kind == 11:
            return render(replaced(pairs, R.choice(['id', 'id1', 'id2']), GOOD_IDS))
        if kind == 12:
            return R.choice(['', '   ', '\t', ' \t ', '\r'])  # blank
        if kind == 13:
            return render(pairs + [('note', '"a\tb"')])  # a raw tab inside a string
        if kind == 14:
            return render(pairs + [('note', R.choice([
                'NaN', 'Infinity', '-Infinity', 'nan', 'undefined', "'x'", '01', '1.', '.5', '+1',
                '"\\x41"', '"\\u12"']))])
        if kind == 15:  # keys spelled with escapes (valid)
            return render([('\\u%04x%s' % (ord(k[0]), k[1:]) if R.random() < 0.5 else k, v)
                           for k, v in pairs])
        if kind == 16:
            return '\ufeff' + render(pairs)  # a byte-order mark that is not at the file's start
        if kind == 17:
            return render(pairs + [('note', R.choice(['"\\ud800"', '"\\udc00x"', '"a\\ud83d"']))])
        if kind == 18:
            return render(pairs + [('note', '{"a":1,"a":2}')])  # a nested duplicate: accepted
        if kind == 19:
            return render(replaced(pairs, R.choice(['timestamp', 'event_type']),
                                   ['20170613', 'null', '["x"]']))
        if kind == 20:
            return R.choice(['{"D":"3", "T":"50"}', '{"D":2,"T":3}'])  # a parameter line again
        n = R.randint(1, 60)
        return render(pairs + [('note', '[' * n + ']' * n)])

    def event_line():
        return dirty_line() if R.random() < dirty_rate else render(good_event())

    def parameter_line():
        pairs = [('D', R.choice(['"%d"', '%d']) % D), ('T', R.choice(['"%d"', '%d']) % T)]
        if R.random() < 0.1:
            pairs.append(('extra', '"x"'))
        return render(pairs)

    def file_bytes(lines):
        text = ''
        for line in lines:
            if R.random() < 0.1:
                line = space() + line + space()
            text += line + ('\r\n' if R.random() < crlf_rate else '\n')
        if R.random() < 0.3:
            text = text.rstrip('\n').rstrip('\r')  # no final newline
        data = text.encode('utf-8', 'surrogateescape')
        return b'\xef\xbb\xbf' + data if R.random() < 0.1 else data

    batch_events = int(events * R.uniform(0.1, 0.9))
    batch_lines = [R.choice(['', '  ', '\r'])] if R.random() < 0.1 else []
    batch_lines.append(parameter_line())
    batch_lines += [event_line() for _ in range(batch_events)]
    stream_lines = [event_line() for _ in range(events - batch_events)]
    batch, stream = file_bytes(batch_lines), file_bytes(stream_lines)

    overrides = {}
    if R.random() < 0.2:  # -D/-T overrides, mostly valid
        if R.random() < 0.7:
            overrides['-D'] = str(R.randint(1, 5))
        if R.random() < 0.7:
            overrides['-T'] = str(R.randint(2, 8))
        if R.random() < 0.3:
            option, value = R.choice([
                ('-D', '0'), ('-T', '1'), ('-D', '+2'), ('-T', '10000001'), ('-T', '10000000'),
                ('-D', '99999999999999999999999'), ('-D', '002'), ('-T', '0003'), ('-D', '2.0'),
                ('-T', '')])
            overrides[option] = value
    args = [word for option in sorted(overrides) for word in (option, overrides[option])]
    about = '%d users, %d events, D=%s T=%d, %s amounts, %d%% dirty, %d%% CRLF' % (
        users, events, D, T, amounts, dirty_rate * 100, crlf_rate * 100)
    return Case('seed %d' % seed, batch, stream, args, about)


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    case = generate(int(sys.argv[1]))
    os.makedirs(sys.argv[2], exist_ok=True)
    for name, data in (('batch_log.json', case.batch), ('stream_log.json', case.stream)):
        with open(os.path.join(sys.argv[2], name), 'wb') as file:
            file.write(data)
    print(' '.join(case.args + ['#', case.about]))
