"""promtext: a strict reader of the Prometheus text exposition format
(version 0.0.4), the one node_exporter's textfile collector reads, for
the tests of `pymailadm stats --prometheus`.

It refuses what Prometheus refuses (bad names, bad label syntax or
escapes, a family's samples apart, a TYPE after its samples, a second
TYPE or HELP, a duplicate series, a value that is not a float, a last
line without its line end) and what promtool's lint would flag for us
(a counter not ending in _total, a histogram whose buckets are not
cumulative or lack +Inf, or whose +Inf bucket is not its _count).

Standard library only.
"""

import math
import re

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*'
TYPES = ('counter', 'gauge', 'histogram', 'summary', 'untyped')
HIST_SUFFIXES = ('_bucket', '_sum', '_count')


class FormatError(ValueError):
    pass


def _value(text, where):
    if text in ('+Inf', 'Inf'):
        return math.inf
    if text == '-Inf':
        return -math.inf
    if text == 'NaN':
        return math.nan
    if not re.fullmatch(r'[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?', text):
        raise FormatError('%s: %r is not a float' % (where, text))
    return float(text)


def _labels(text, where):
    """'{a="x",b="y"}' (a trailing comma allowed) -> (('a','x'),...)."""
    out, i = [], 1
    while True:
        if text[i] == '}':
            return tuple(out), i + 1
        m = re.match(LABEL + '="', text[i:])
        if not m:
            raise FormatError('%s: bad label at %r' % (where, text[i:]))
        name = m.group(0)[:-2]
        i += m.end()
        val = []
        while True:
            if i >= len(text):
                raise FormatError('%s: unterminated label value' % where)
            c = text[i]
            if c == '"':
                i += 1
                break
            if c == '\\':
                esc = text[i + 1:i + 2]
                if esc not in ('\\', '"', 'n'):
                    raise FormatError('%s: bad escape \\%s' % (where, esc))
                val.append('\n' if esc == 'n' else esc)
                i += 2
                continue
            if c == '\n':
                raise FormatError('%s: line end in a label' % where)
            val.append(c)
            i += 1
        if name in (n for n, _ in out):
            raise FormatError('%s: label %s twice' % (where, name))
        out.append((name, ''.join(val)))
        if text[i] == ',':
            i += 1
        elif text[i] != '}':
            raise FormatError('%s: expected , or } in labels' % where)


def _family_of(name, types):
    """The family a sample belongs to: a histogram's _bucket, _sum and
    _count are its own."""
    for suf in HIST_SUFFIXES:
        base = name[:-len(suf)]
        if name.endswith(suf) and types.get(base) in ('histogram',
                                                      'summary'):
            return base
    return name


def parse(text):
    """{family: {'type', 'help', 'samples': [(name, labels, value)]}}."""
    if text and not text.endswith('\n'):
        raise FormatError('the last line has no line end')
    fams, types, order, done = {}, {}, [], set()
    current = None
    for no, line in enumerate(text.split('\n')[:-1], 1):
        where = 'line %d' % no
        if line.startswith('#'):
            m = re.fullmatch(r'# (HELP|TYPE) (%s) (.*)' % NAME, line)
            if not m:
                if re.match(r'#\s*(HELP|TYPE)\b', line):
                    raise FormatError('%s: malformed %r' % (where, line))
                continue
            kind, name, rest = m.groups()
            f = fams.setdefault(name, {'type': 'untyped', 'help': None,
                                       'samples': [], 'typed': False})
            if name in done or f['samples']:
                raise FormatError('%s: %s of %s after its samples'
                                  % (where, kind, name))
            if kind == 'TYPE':
                if f['typed'] or rest not in TYPES:
                    raise FormatError('%s: TYPE %r of %s' % (where, rest,
                                                             name))
                f['type'], f['typed'] = rest, True
                types[name] = rest
            else:
                if f['help'] is not None:
                    raise FormatError('%s: second HELP of %s' % (where,
                                                                 name))
                if re.search(r'\\[^\\n]', rest):
                    raise FormatError('%s: bad escape in HELP' % where)
                f['help'] = rest
            if current is not None and current != name:
                done.add(current)
            current = name
            if name not in order:
                order.append(name)
            continue
        if not line.strip():
            raise FormatError('%s: blank line' % where)
        m = re.match(NAME, line)
        if not m:
            raise FormatError('%s: bad metric name in %r' % (where, line))
        name, rest = m.group(0), line[m.end():]
        labels = ()
        if rest.startswith('{'):
            labels, used = _labels(rest, where)
            rest = rest[used:]
        parts = rest.split(' ')
        if parts[0] != '' or len(parts) not in (2, 3) or not parts[1]:
            raise FormatError('%s: expected " value [timestamp]" in %r'
                              % (where, line))
        value = _value(parts[1], where)
        if len(parts) == 3 and not re.fullmatch(r'-?\d+', parts[2]):
            raise FormatError('%s: bad timestamp' % where)
        fam = _family_of(name, types)
        if fam in done:
            raise FormatError('%s: samples of %s are apart' % (where, fam))
        if current is not None and current != fam:
            done.add(current)
        current = fam
        f = fams.setdefault(fam, {'type': 'untyped', 'help': None,
                                  'samples': [], 'typed': False})
        if fam not in order:
            order.append(fam)
        key = (name, tuple(sorted(labels)))
        if any((n, tuple(sorted(lb))) == key for n, lb, _ in f['samples']):
            raise FormatError('%s: series %s%r twice' % (where, name,
                                                        labels))
        f['samples'].append((name, labels, value))
    for name, f in fams.items():
        _lint(name, f)
    return fams


def _lint(name, f):
    if f['type'] == 'counter' and not name.endswith('_total'):
        raise FormatError('counter %s does not end in _total' % name)
    if f['type'] in ('counter', 'gauge'):
        for n, _, v in f['samples']:
            if n != name:
                raise FormatError('%s sample named %s' % (name, n))
            if f['type'] == 'counter' and v < 0:
                raise FormatError('counter %s below zero' % name)
    if f['type'] == 'histogram':
        _lint_histogram(name, f['samples'])


def _lint_histogram(name, samples):
    """Per label set but le: cumulative buckets ending at +Inf, which is
    _count; a _sum."""
    groups = {}
    for n, labels, v in samples:
        rest = tuple(sorted(lb for lb in labels if lb[0] != 'le'))
        g = groups.setdefault(rest, {'buckets': [], 'sum': None,
                                     'count': None})
        if n == name + '_bucket':
            les = [val for k, val in labels if k == 'le']
            if len(les) != 1:
                raise FormatError('%s_bucket without le' % name)
            g['buckets'].append((_value(les[0], name), v))
        elif n == name + '_sum':
            g['sum'] = v
        elif n == name + '_count':
            g['count'] = v
        else:
            raise FormatError('%s sample named %s' % (name, n))
    for g in groups.values():
        b = g['buckets']
        if not b or b[-1][0] != math.inf:
            raise FormatError('%s: no +Inf bucket last' % name)
        if [le for le, _ in b] != sorted(le for le, _ in b) or \
                len({le for le, _ in b}) != len(b):
            raise FormatError('%s: bucket bounds not ascending' % name)
        if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            raise FormatError('%s: buckets not cumulative' % name)
        if g['count'] is None or g['sum'] is None:
            raise FormatError('%s: _sum or _count missing' % name)
        if g['count'] != b[-1][1]:
            raise FormatError('%s: +Inf bucket is not _count' % name)


def series(fams):
    """{(sample name, labels): value}, flat."""
    return {(n, tuple(sorted(lb))): v for f in fams.values()
            for n, lb, v in f['samples']}
