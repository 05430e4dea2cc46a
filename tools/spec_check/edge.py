#!/usr/bin/env python3
"""Hand-written edge cases for the spec check: cases() lists them, named, as gen.Case objects.

Each targets one sentence of docs/spec.md or one of the decisions in docs/design.md: parameter lines and -D/-T
overrides, amounts and timestamps at and beyond their limits, ids that are or are not the same
user, JSON oddities (escapes, surrogates, huge numbers, nesting, duplicate keys), ties, the
threshold's equality, 128-bit sums, line endings, BOMs and invalid UTF-8. No expected outputs
are written here: check.py computes them with ref.py and compares the program with them.

    python3 tools/spec_check/edge.py    # lists the cases' names
"""
import json

from gen import Case

PARAMS = '{"D":"%s","T":"%s"}\n'
NOON = '2017-06-13 11:00:00'


def purchase(user, amount, when=NOON):
    """A purchase line; user and amount are JSON texts ('"7"', '7', '"1.50"')."""
    return '{"event_type":"purchase", "timestamp":"%s", "id": %s, "amount": %s}\n' % (
        when, user, amount)


def befriend(a, b, when=NOON, kind='befriend'):
    return '{"event_type":"%s", "timestamp":"%s", "id1": %s, "id2": %s}\n' % (kind, when, a, b)


def unfriend(a, b, when=NOON):
    return befriend(a, b, when, 'unfriend')


def with_extra(line, extra):
    """line (a purchase line) with extra members appended before its final }."""
    return line.rstrip('}\n') + extra + '}\n'


# User 1's friend 2 bought 10.00 and 12.00: a purchase of 100 by user 1 is flagged.
FRIEND_BOUGHT = befriend('"1"', '"2"') + purchase('"2"', '"10.00"') + purchase('"2"', '"12.00"')
BATCH = PARAMS % (1, 5) + FRIEND_BOUGHT
BIG = purchase('"1"', '"100.00"')
NOTE = with_extra(BIG, ', "x":%s')  # BIG with an extra member x; fill in x's value


def short(text, width=24):
    text = json.dumps(text)[1:-1]
    return text if len(text) <= width else '%s... (%d chars)' % (text[:width], len(text))


def celebrity(seed):
    """A batch and a stream where two hubs ("0" and "c") gain and lose hundreds of friends, past
    the program's index threshold (lists of more than 256 friends get a position index) and back
    below the point where it is dropped (64), with purchases by the hubs (at D=1 their whole
    friend list is the network) and by their friends (at D=2 every one's network holds the
    hub's friends)."""
    import random
    R = random.Random(seed)
    users = [str(u) for u in range(1, 401)]
    friends = {'"0"': [], '"c"': []}
    when = lambda: '2017-06-13 11:%02d:%02d' % (R.randint(0, 2), R.randint(0, 59))

    def buy(hub, big=False):
        buyer = R.choice([hub, '"%s"' % R.choice(friends[hub] or users), '"%s"' % R.choice(users)])
        cents = R.randint(100000, 900000) if big else R.randint(1000, 6000)
        return purchase(buyer, '"%d.%02d"' % (cents // 100, cents % 100), when())

    def change(hub, grow):
        if grow or not friends[hub]:
            f = R.choice([u for u in users if u not in friends[hub]])
            friends[hub].append(f)
            kind = befriend
        else:
            f = friends[hub].pop(R.randrange(len(friends[hub])))
            kind = unfriend
        pair = (hub, '"%s"' % f) if R.random() < 0.5 else ('"%s"' % f, hub)
        return kind(pair[0], pair[1], when())

    batch = [PARAMS % (R.randint(1, 2), R.randint(2, 8))]
    stream = []
    for log, hub, grow, n in [(batch, '"0"', True, 300), (batch, '"0"', False, 260),
                              (batch, '"c"', True, 290), (batch, '"0"', True, 240),
                              (stream, '"0"', False, 250), (stream, '"c"', False, 260),
                              (stream, '"0"', True, 270)]:
        for _ in range(n):
            log.append(change(hub, grow))
            if R.random() < (0.4 if log is stream else 0.1):
                log.append(buy(R.choice(['"0"', '"c"']), R.random() < 0.05))
    return ''.join(batch), ''.join(stream)


def cases():
    found = []

    def case(name, batch, stream, args=()):
        def encoded(log):
            return log if isinstance(log, bytes) else log.encode('utf-8', 'surrogateescape')
        found.append(Case(name, encoded(batch), encoded(stream), args))

    # The parameter line: its values, its shape, where it is.
    for d in ['99999999999999999999999', '02', '+2', ' 2', '2.0', '-1', '0', '1', '\\u0032', '']:
        case('D="%s"' % d, PARAMS % (d, 5) + FRIEND_BOUGHT, BIG)
    for t in ['1', '2', '10000000', '10000001', '99999999999999999999999', '0']:
        case('T="%s"' % t, PARAMS % (1, t) + FRIEND_BOUGHT, BIG)
    for line in ['{"D":2,"T":5}', '{"D":2.0,"T":5}', '{"D":2,"T":5e0}', '{"D":-0,"T":5}',
                 '{"D":2}', '{"T":5}', '{"D":2,"T":5,"x":[1]}', '{"D":2,"T":5,"D":3}', '[2,5]',
                 '{"d":2,"t":5}', '{"D":"2","T":"5"} x', '{"D":null,"T":5}',
                 '{"D":true,"T":5}', '{"D":"2 ","T":"5"}', '{"D":"٢","T":"5"}',
                 '{"D":2,"T":5,"event_type":"purchase"}', '{"D":1e0,"T":5}',
                 '{"D":2,"T":"1e1"}', '{"D":2,"T":00005}', '{"D":"0002","T":"00005"}',
                 '{"D":"1","T":"5","x":"\\ud800"}']:
        case('parameter line ' + line, line + '\n' + FRIEND_BOUGHT, BIG)
    case('blank lines before the parameter line', '\n  \n\r\n\t\n' + BATCH, BIG)
    case('BOM, parameter line', '\ufeff' + BATCH, BIG)
    case('BOM, blank line, parameter line', '\ufeff\n' + BATCH, BIG)
    case('parameter line not UTF-8', '{"D":"1","T":"5","x":"\udcff"}\n' + FRIEND_BOUGHT, BIG)
    case('empty batch', '', BIG)
    case('batch of blank lines', '\n\n  \n', BIG)
    case('parameter line with CRLF', BATCH.replace('\n', '\r\n'), BIG)
    case('parameter line only, no newline', '{"D":"1","T":"5"}', BIG)
    case('parameter line after a form feed', '\x0c' + BATCH, BIG)

    # -D and -T: the parameter line's rule (digits only, D >= 1 of any size, 2 <= T <= 10^7).
    for args in (['-D', '0'], ['-T', '1'], ['-D', '99999999999999999999999'],
                 ['-D', '18446744073709551616'], ['-T', '10000001'], ['-T', '10000000'],
                 ['-D', '2'], ['-T', '2'], ['-D', '+2'], ['-D', '02'], ['-T', '0002'],
                 ['-D', ''], ['-T', '2.0'], ['-D', '3', '-T', '2']):
        case('option ' + ' '.join(arg or "''" for arg in args), BATCH, BIG, args)
    case('-D 2 with an invalid parameter line', '{"D":"0","T":"5"}\n' + FRIEND_BOUGHT, BIG,
         ['-D', '2'])

    # Amounts.
    for amount in ['"0000000000000000000000001.5"', '"1000000000.00"', '1000000000.00',
                   '"1000000000.01"', '1000000000.001', '"00000000000000000000001000000000.00"',
                   '100000000000000000000000000', '"\\u0031\\u0032\\u0030.5"', '"120.50"',
                   '120.5', '1.2e2', '"120.5\\u0000"', '"１２０"', '120.', '"0"', '-0',
                   '"120.5 "', '0.1e3', '1.20E2', '"1' + '0' * 5000 + '"']:
        case('amount ' + short(amount), BATCH, purchase('"1"', amount))

    # 128-bit sums: many maximal amounts, T = 10^7.
    wide = PARAMS % (1, 10000000) + befriend('"1"', '"2"')
    case('maximal amounts alternating with 0',
         wide + ''.join(purchase('"2"', '"1000000000.00"' if i % 2 else '"0"')
                        for i in range(2000)),
         purchase('"1"', '"1000000000.00"') + purchase('"3"', '1'))
    case('a few maximal amounts among zeros',
         wide + ''.join(purchase('"2"', '"1000000000.00"' if i % 1000 == 0 else '"0"')
                        for i in range(3000)),
         purchase('"1"', '"1000000000.00"'))
    case('nearly equal maximal amounts',
         wide + purchase('"2"', '"999999999.99"') * 3000 + purchase('"2"', '"999999999.98"'),
         purchase('"1"', '"1000000000.00"') + purchase('"1"', '"999999999.99"'))

    # Ids: the same user or not.
    pair = PARAMS % (1, 5) + befriend('7', '"8"') + purchase('"8"', '"1.00"') + purchase('8', '"3.00"')
    case('ids 7, "7" and "\\u0037" are one user', pair, purchase('"\\u0037"', '"10.00"'))
    case('id "07" is another user', pair, purchase('"07"', '"10.00"'))
    case('ids -0 and 0 differ', pair.replace('"id1": 7', '"id1": -0'),
         purchase('0', '"10.00"') + purchase('"-0"', '"10.00"'))
    huge = '123456789012345678901234567890123456789012345678901234567890'
    case('huge integer id', pair.replace('"id1": 7', '"id1": ' + huge),
         purchase('"%s"' % huge, '"10.00"'))
    case('id 2^64', pair.replace('"id1": 7', '"id1": 18446744073709551616'),
         purchase('18446744073709551616', '"10.00"') + purchase('"18446744073709551616"', '"10"'))
    case('id 1e2 is malformed', BATCH.replace('"id1": "1"', '"id1": 1e2'),
         purchase('100', '"100"') + purchase('"1e2"', '"100"'))
    case('id with a surrogate pair', pair.replace('"id1": 7', '"id1": "\\ud83d\\ude00"'),
         purchase('"😀"', '"10.00"'))
    case('id with a lone surrogate', pair.replace('"id1": 7', '"id1": "\\ud800"'),
         purchase('"\\ud800"', '"10.00"'))
    case('unfriend and befriend of unknown users',
         PARAMS % (2, 5) + unfriend('"8"', '"9"') + FRIEND_BOUGHT + befriend('"9"', '"9"'),
         unfriend('"1"', '"9"') + BIG + befriend('"2"', '"9"') + purchase('"9"', '"50"'))

    # Extra members: any value, judged as JSON only.
    for value in ['1e400', '-1e400', '1e-400', '123456789012345678901234567890', '[' * 200 + ']' * 200,
                  '[' * 127 + ']' * 127, '[' * 128 + ']' * 128, '[' * 800 + ']' * 800,
                  '{"a":1,"a":2}', '"\x7f"', '"\u2028"', '"\ufeff"', '"\\/"', 'NaN', '"a\x01"',
                  '0.0000000000000000000000000000001', '{"":{"":""}}', '"\\ud800"', '"\\udc00"',
                  '"\\ud83d\\ude00"', '"}"']:
        case('extra value ' + short(value), BATCH, NOTE % value)
    case('extra key twice', BATCH, with_extra(BIG, ', "x":1, "x":1'))
    case('key twice, once escaped', BATCH, with_extra(BIG, ', "\\u0069d":"1"'))
    case('empty key', BATCH, with_extra(BIG, ', "":1'))
    case('mean and sd already present', BATCH, with_extra(BIG, ', "mean":"1", "sd":"2"'))
    case('event_type escaped', BATCH, BIG.replace('"purchase"', '"purc\\u0068ase"'))
    case('key escaped', BATCH, BIG.replace('"event_type"', '"\\u0065vent_type"'))
    case('timestamp escaped', BATCH, BIG.replace('2017-', '2017\\u002d'))

    # Timestamps.
    for when in ['0000-01-01 00:00:00', '0000-02-29 00:00:00', '9999-12-31 23:59:59',
                 '2000-02-29 00:00:00', '2100-02-29 00:00:00', '2016-02-29 23:59:59',
                 '2017-04-31 00:00:00', '2017-06-13 23:59:60', '2017-06-13 24:00:00',
                 '2017-06-13 11:00:00 ', '2017-06-13\t11:00:00', '2017-06-13 11:00:00\\u0000',
                 '２017-06-13 11:00:00', '2017-06-13 1:00:00', '+2017-06-13 11:00:00',
                 '2017-06-13 11:00:0a']:
        case('timestamp ' + short(when), BATCH, purchase('"1"', '"100"', when))

    # Which purchases are the latest T: ties by position, the stream's own earlier timestamps.
    def at(second):
        return '2017-06-13 11:00:%02d' % second
    case('equal timestamps: the later line is the later purchase',
         PARAMS % (1, 2) + befriend('"1"', '"2"') + purchase('"2"', '"10.00"', at(5))
         + purchase('"2"', '"1.00"', at(5)) + purchase('"2"', '"100.00"', at(4))
         + purchase('"2"', '"2.00"', at(5)),
         purchase('"1"', '"10.00"') + purchase('"2"', '"1.00"', at(5)) + purchase('"1"', '"5.00"')
         + purchase('"1"', '"9.00"'))
    case('stream purchases with earlier timestamps',
         PARAMS % (1, 3) + befriend('"1"', '"2"') + purchase('"2"', '"10.00"', at(9))
         + purchase('"2"', '"10.00"', at(1)) + purchase('"2"', '"1.00"', at(1)),
         purchase('"2"', '"1.00"', at(0)) + purchase('"1"', '"12.00"')
         + purchase('"2"', '"10.00"', at(1)) + purchase('"1"', '"12.00"'))

    # The decision.
    case('amount exactly mean + 3 sd, then one cent more',
         PARAMS % (1, 2) + befriend('"1"', '"2"') + purchase('"2"', '"0.00"')
         + purchase('"2"', '"0.02"'),
         purchase('"1"', '"0.04"') + purchase('"1"', '"0.05"'))
    case('sd zero', PARAMS % (1, 3) + befriend('"1"', '"2"') + purchase('"2"', '5') * 2,
         purchase('"1"', '5') + purchase('"1"', '5.01') + purchase('"3"', '5'))
    case('own purchases never count, even through a cycle',
         PARAMS % (3, 5) + befriend('"1"', '"2"') + befriend('"2"', '"3"') + befriend('"3"', '"1"')
         + purchase('"1"', '"1000"') + purchase('"2"', '1') + purchase('"3"', '2'),
         purchase('"1"', '"10"'))
    case('degree cut-off',
         PARAMS % (2, 5) + befriend('"1"', '"2"') + befriend('"2"', '"3"') + befriend('"3"', '"4"')
         + purchase('"3"', '1') + purchase('"4"', '2') + purchase('"4"', '200'),
         purchase('"1"', '"10"') + purchase('"1"', '"1.01"'))
    case('unfriend removes a member, befriend brings it back',
         PARAMS % (1, 5) + befriend('"1"', '"2"') + purchase('"2"', '1') + purchase('"2"', '2')
         + unfriend('"1"', '"2"'),
         purchase('"1"', '"10"') + befriend('"2"', '"1"') + purchase('"1"', '"10"'))
    case('befriending oneself', PARAMS % (1, 5) + befriend('"1"', '"1"') + purchase('"1"', '1')
         + purchase('"1"', '2'), purchase('"1"', '"10"'))
    case('a flagged purchase joins the history', BATCH, BIG * 3)
    boundary = PARAMS % (1, 5) + befriend('"1"', '"2"') + purchase('"2"', '"0"')
    case('maximal amount exactly at the threshold', boundary + purchase('"2"', '"500000000.00"'),
         purchase('"1"', '"1000000000.00"') + purchase('"3"', '"0"'))
    case('maximal amount one cent above the threshold',
         boundary + purchase('"2"', '"499999999.99"'), purchase('"1"', '"1000000000.00"'))
    case('truncated cents', PARAMS % (1, 3) + befriend('"1"', '"2"') + purchase('"2"', '"0.01"')
         + purchase('"2"', '"0.02"') * 2, purchase('"1"', '"1000000000.00"'))
    case('huge sd', PARAMS % (1, 6) + befriend('"1"', '"2"')
         + ''.join(purchase('"2"', a) for a in ['"999999999.99"', '"999999999.98"', '"0.01"',
                                                 '"0.03"', '"333333333.33"']),
         purchase('"1"', '"1000000000.00"'))

    # Lines: endings, white space, BOMs, bytes.
    line = BIG.rstrip('\n')
    case('CRLF', BATCH, BIG.replace('\n', '\r\n'))
    case('stream BOM', BATCH, '\ufeff' + BIG)
    case('two BOMs', BATCH, '\ufeff\ufeff' + BIG)
    case('BOM in the middle', BATCH, purchase('"3"', '1') + '\ufeff' + BIG)
    case('spaces, tabs and CRs around a line', BATCH, ' \t ' + line + ' \t\r\r \n')
    case('CR inside a line', BATCH, BIG.replace(', ', ',\r'))
    case('CR-only line ends', BATCH, (line + '\r') * 2)
    case('form feed before a line', BATCH, '\x0c' + BIG)
    case('vertical tab before a line', BATCH, '\x0b' + BIG)
    case('no-break space before a line', BATCH, '\u00a0' + BIG)
    case('NUL after a line', BATCH, line + '\x00\n')
    case('no final newline', BATCH, line)
    case('CR after the last newline', BATCH, BIG + '\r')
    for name, raw in [('overlong UTF-8', b'\xc0\xaf'), ('encoded surrogate', b'\xed\xa0\x80'),
                      ('4-byte UTF-8', b'\xf0\x9f\x98\x80'), ('above U+10FFFF', b'\xf4\x90\x80\x80')]:
        case(name, BATCH, NOTE.encode().replace(b'%s', b'"' + raw + b'"'))
    case('raw tab in a string', BATCH, NOTE % '"a\tb"')
    case('raw DEL in a string', BATCH, NOTE % '"a\x7fb"')
    case('empty stream', BATCH, '')
    case('a parameter line in the stream', BATCH, PARAMS % (1, 5) + BIG)
    case('a JSON string as a line', BATCH, '"{}"\n' + BIG)

    # Celebrities: hubs of hundreds of friends, gained and lost in the batch and in the stream.
    for seed in range(4):
        case('celebrities %d' % seed, *celebrity(seed))
        case('celebrities %d, D=2' % seed, *celebrity(seed), args=['-D', '2'])
    return found


if __name__ == '__main__':
    for found in cases():
        print(found.name, ' '.join(found.args))
