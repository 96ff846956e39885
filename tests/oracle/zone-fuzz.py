#!/usr/bin/env python3
"""Op-sequence fuzzer: zoned qcow2 (through qemu-io) against a reference
model of a host-managed zoned device (zonemodel.py, written from ZBC/ZNS and
Linux's zoned block semantics).

Each sequence draws a geometry (zone size, capacity often not a cluster
multiple, cluster size 512 B..2 MiB, extended_l2, conventional zones,
open/active limits, a smaller last zone, a disk size that is often not a
cluster multiple, max_append_bytes), creates the image with qemu-img and
runs operations through qemu-io, one process per segment (a new process is
a restart).  Commands are fed on stdin one at a time; the "qemu-io> " prompt
(flushed before each command is read) ends each command's output, so every
result is attributed to its command even after a crash.

Operations: write -P (distinct pattern per write), write -z, zone append,
groups of 2-4 aio_write in flight (same zone or several) + aio_flush,
zo/zc/zf/zrs over one zone, several zones, the whole disk (reset all) or bad
ranges, reads, zone reports, flush, restart, zone condition changes (zsc
OFFSET normal|read-only|offline, ~3% of the operations: open and active
zones, zones already READ ONLY or OFFLINE, the last zone, conventional
zones, past the disk end, offsets that are not a zone start; sometimes a
zone made READ ONLY, other zones written, then the zone back to normal, to
reach the active limit).  Offsets and lengths lean to the edges: zone
start, write pointer +-512, capacity +-512, zone end, disk end and past it,
zero and unaligned lengths, several zones, cluster +-512.
Operations are kept relative to the zone state ("write at the write pointer
of a zone that is not full") and resolved just before they run.

After every operation the result (success, errno, append offset) must be one
the model allows; zone reports and data reads (zeroes above the write
pointer) are compared with every model state still possible (the model
branches where the specifications allow several behaviours; concurrent
aio_write groups are accepted when some serial order of them explains the
results; a read refused for an OFFLINE zone is followed by pattern reads of
what lies outside OFFLINE zones).  A refused zsc prints a message, mapped
to the model's reason by its text; the numbers in it (offset, zone index,
disk size, zone size, limit) are checked too.  A crash (signal), a hang
(no prompt within --timeout seconds), a sanitizer report (ERROR:
...Sanitizer, runtime error:) or an unexpected message on stderr is a
failure too.

On a failure the sequence is shrunk (delta debugging: operations are dropped
while the same kind of failure persists), printed as a runnable shell
snippet (qemu-img create + qemu-io -c ...) and saved as a regression file in
--save (default DIR/found); --replay DIR runs such files first (format:
'# comment' lines, 'geometry size=N qemu-img options', then qemu-io
commands, 'reopen' for a restart, 'zsc OFFSET COND').

Errno strictness: by default the errno of every refusal must be the model's
(zonemodel.py lists each with its source).  --accept-errno REASON=ERRNO
accepts another errno for one kind of refusal; --lenient-errno takes EIO and
EINVAL as the same refusal (not for the README zone rules: write not at the
write pointer, open and active limits), to look past errno choices for
deeper defects.

Last line: "zone-fuzz: N sequences, N geometries, N operations,
N differences, N crashes, N hangs, N sanitizer reports"; exit status 0 only
when nothing was found.

  zone-fuzz.py --seed 1 --replay tests/oracle/regressions      # ~1-2 min
  zone-fuzz.py --sequences 0 --seconds 1800 --ops 200          # soak
  zone-fuzz.py --qemu-io build/obj-asan/qemu-io --qemu-img build/obj-asan/qemu-img
"""

import argparse
import collections
import faulthandler
import glob
import itertools
import os
import random
import re
import select
import shlex
import signal
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zonemodel as zm               # noqa: E402

K = 1024
M = 1 << 20
PROMPT = b'qemu-io> '
SAN_RE = re.compile(r'ERROR: \w*Sanitizer|runtime error:|'
                    r'SUMMARY: \w*Sanitizer')
ZRP_RE = re.compile(r'start: 0x([0-9a-f]+), len 0x([0-9a-f]+), '
                    r'cap 0x([0-9a-f]+), wptr 0x([0-9a-f]+), '
                    r'zcond:(\d+), \[type: (\d+)\]')
FAILED_RE = re.compile(r'(?:write|aio_write|read|zone \w+|flush) failed: '
                       r'(.*)$')
ZSC_FAILED_RE = re.compile(r'zone set condition failed: (.*)$')
# zsc refusal messages (notes/zone-conditions-interface.md) -> model reason
ZSC_MESSAGES = (
    ('is beyond the end of node', 'cond-range'),
    ('is not the start of a zone', 'cond-align'),
    ('is conventional: only sequential zones can be read-only or offline',
     'cond-conv'),
    ('cannot become writable again: max_active_zones', 'cond-active-limit'),
)


class Failure(Exception):
    def __init__(self, kind, index, cmd, expected, got, detail='', sig=None):
        Exception.__init__(self, kind)
        self.sig = sig
        self.kind = kind            # diff crash hang sanitizer
        self.index = index          # op index in the sequence
        self.cmd = cmd
        self.expected = expected
        self.got = got
        self.detail = detail

    def signature(self):
        if self.sig:
            return self.sig
        if self.kind == 'diff':
            return ('diff', self.cmd.split()[0] if self.cmd else '',
                    str(self.got)[:60])
        return (self.kind, self.cmd.split()[0] if self.cmd else '')

    def text(self):
        s = '%s at op %d: %s' % (self.kind.upper(), self.index, self.cmd)
        if self.expected is not None:
            s += '\n    model allows: %s' % self.expected
        if self.got is not None:
            s += '\n    qemu-io did:  %s' % self.got
        if self.detail:
            s += '\n    ' + self.detail.rstrip().replace('\n', '\n    ')
        return s


# qemu-io process -------------------------------------------------------------

class Died(Exception):
    def __init__(self, out, rc):
        Exception.__init__(self, 'died')
        self.out = out
        self.rc = rc


class Hung(Exception):
    def __init__(self, out):
        Exception.__init__(self, 'hung')
        self.out = out


def wait_for_binary(path, limit=300):
    """The binaries may be rebuilt under us: wait for them to come back."""
    t0 = time.time()
    while not os.access(path, os.X_OK):
        if time.time() - t0 > limit:
            sys.exit('zone-fuzz: %s is missing' % path)
        time.sleep(2)


class QemuIO:
    def __init__(self, args, img, timeout, discard='unmap'):
        self.args = args
        for attempt in range(30):
            wait_for_binary(args.qemu_io)
            try:
                self.p = subprocess.Popen(
                    [args.qemu_io, '-f', 'qcow2', '-d', discard, img],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, start_new_session=True)
            except OSError:
                time.sleep(2)
                continue
            break
        self.fd = self.p.stdout.fileno()
        try:
            self.startup = self._read_prompt(timeout)
        except Hung:
            self.close_hard()
            raise

    def _read(self, timeout, prompt):
        """Output up to the prompt (@prompt) or to the end of the output;
        (bytes, True) at the end of the output."""
        buf = b''
        deadline = time.time() + timeout
        while not (prompt and buf.endswith(PROMPT)):
            left = deadline - time.time()
            if left <= 0:
                raise Hung(buf.decode(errors='replace'))
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return buf, True
            buf += chunk
        return buf, False

    def _read_prompt(self, timeout):
        buf, eof = self._read(timeout, True)
        if eof:
            try:
                rc = self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
                rc = self.p.wait()
            raise Died(buf.decode(errors='replace'), rc)
        return buf[:-len(PROMPT)].decode(errors='replace')

    def cmd(self, line, timeout):
        try:
            self.p.stdin.write(line.encode() + b'\n')
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            pass                            # _read_prompt sees the exit
        return self._read_prompt(timeout)

    def quit(self, timeout):
        """Ends the process (clean exit); returns (rest of output, rc)."""
        try:
            self.p.stdin.close()
        except OSError:
            pass
        buf, _ = self._read(timeout, False)
        rc = self.p.wait()
        self.p.stdout.close()
        return buf.decode(errors='replace'), rc

    def kill(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close_hard(self):
        self.kill()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.p.stdin, self.p.stdout):
            try:
                f.close()
            except OSError:
                pass


# Operations --------------------------------------------------------------
#
# Relative operations (what the generator makes and the shrinker edits) are
# resolved against the model state just before they run, so that "write at
# the write pointer" stays one when earlier operations are dropped.
# Absolute operations are what runs:
#   ('write', off, len, pat)  ('wzero', off, len)  ('zap', off, len)
#   ('aio', ((off, len, pat), ...))  ('mgmt', name, off, len)
#   ('read', off, len)  ('zrp', off, n)  ('flush',)  ('reopen',)
#   ('zsc', off, cond)

def r512(x):
    return x - x % 512


def anchor_value(geo, st, z, anchor, prev_end=None):
    s, ln, cap = geo.zstart[z], geo.zlen[z], geo.zcap[z]
    if anchor == 'start':
        return s
    if anchor == 'wp':
        zz = st.zones[z]
        return s if zz is None else s + min(zz.wp, cap)
    if anchor == 'cap':
        return s + cap
    if anchor == 'end':
        return s + ln
    if anchor == 'disk_end':
        return geo.size
    if anchor == 'prev_end':
        return prev_end if prev_end is not None else s
    if isinstance(anchor, float):
        return s + r512(int(anchor * ln))
    raise ValueError(anchor)


def length_value(geo, st, z, off, spec):
    kind = spec[0]
    if kind == 'abs':
        n = spec[1]
    elif kind == 'to_cap':
        n = geo.zstart[z] + geo.zcap[z] - off + spec[1]
    elif kind == 'to_end':
        n = geo.zstart[z] + geo.zlen[z] - off + spec[1]
    elif kind == 'zones':
        n = spec[1] * geo.zone_size + spec[2]
    elif kind == 'to_disk_end':
        n = geo.size - off + spec[1]
    elif kind == 'capfrac':
        n = max(512, r512(int(spec[1] * geo.zcap[z])))
    elif kind == 'appfrac':
        n = max(512, r512(int(spec[1] * min(geo.max_append, geo.zcap[z]))))
    else:
        raise ValueError(spec)
    return max(0, n)


def pick_zone(geo, st, z):
    """A zone: an index, or (want, k, hot): the k-th zone of the hot list
    that is not FULL (want 'nonfull') or is FULL/open (want 'used') in the
    state the op runs in, else hot[k]."""
    if isinstance(z, int):
        return z
    want, k, hot = z
    if want == 'nonfull':
        # READ ONLY and OFFLINE zones now and then (refused writes)
        skip = (zm.FULL,) if k % 4 == 0 else (zm.FULL, zm.RDONLY, zm.OFFLINE)
        ok = [i for i in hot if st.zones[i] is not None and
              st.zones[i].cond not in skip]
    elif want in ('open', 'active', 'cond'):
        conds = {'open': (zm.IOPEN, zm.EOPEN),
                 'active': (zm.IOPEN, zm.EOPEN, zm.CLOSED),
                 'cond': (zm.RDONLY, zm.OFFLINE)}[want]
        ok = [i for i, zz in enumerate(st.zones)
              if zz is not None and zz.cond in conds]
    else:
        ok = [i for i in hot if st.zones[i] is not None and
              st.zones[i].cond != zm.EMPTY]
    if not ok and want == 'nonfull':
        ok = [i for i, zz in enumerate(st.zones)
              if zz is not None and zz.cond not in (zm.FULL, zm.RDONLY,
                                                    zm.OFFLINE)]
    return ok[k % len(ok)] if ok else hot[k % len(hot)]


def resolve(geo, st, op):
    k = op[0]
    if k in ('write', 'wzero', 'zap', 'read'):
        z, anchor, delta, lspec = op[1:5]
        z = pick_zone(geo, st, z)
        off = max(0, anchor_value(geo, st, z, anchor) + delta)
        ln = length_value(geo, st, z, off, lspec)
        if k == 'write':
            return ('write', off, ln, op[5])
        return (k, off, ln)
    if k == 'aio':
        reqs = []
        prev = None
        for (z, anchor, delta, lspec, pat) in op[1]:
            z = pick_zone(geo, st, z)
            off = max(0, anchor_value(geo, st, z, anchor, prev) + delta)
            ln = length_value(geo, st, z, off, lspec)
            reqs.append((off, ln, pat))
            prev = off + ln
        return ('aio', tuple(reqs))
    if k == 'mgmt':
        name, z, spec = op[1:4]
        z = pick_zone(geo, st, z)
        if spec == 'all':
            return ('mgmt', name, 0, geo.size)
        nz, doff, dlen = spec
        off = max(0, geo.zstart[z] + doff)
        if nz == 'rest':
            ln = geo.size - off + dlen
        else:
            ln = nz * geo.zone_size + dlen
        return ('mgmt', name, off, max(0, ln))
    if k == 'zrp':
        z, n = op[1], op[2]
        off = geo.size + 512 if z == 'past' else geo.zstart[z]
        return ('zrp', off, n)
    if k == 'zsc':
        z, cond, delta = op[1:4]
        if z == 'past':
            # at or beyond the disk end ('aligned': the first zone start
            # there)
            off = geo.nzones * geo.zone_size if delta == 'aligned' \
                else geo.size + delta
        else:
            off = geo.zstart[pick_zone(geo, st, z)] + delta
        return ('zsc', max(0, off), cond)
    return op


def commands(op, segments_for_read=None):
    """qemu-io command lines of an absolute op (reads: see check_read)."""
    k = op[0]
    if k == 'write':
        return ['write -P %d %d %d' % (op[3], op[1], op[2])]
    if k == 'wzero':
        return ['write -z %d %d' % (op[1], op[2])]
    if k == 'zap':
        return ['zap -p %d %d' % (op[1], op[2])]
    if k == 'aio':
        return ['aio_write -P %d %d %d' % (p, o, l) for o, l, p in op[1]] + \
            ['aio_flush']
    if k == 'mgmt':
        return ['%s %d %d' % (op[1], op[2], op[3])]
    if k == 'zrp':
        return ['zrp %d %d' % (op[1], op[2])]
    if k == 'flush':
        return ['flush']
    if k == 'read':
        return ['read -q %d %d' % (op[1], op[2])]
    if k == 'zsc':
        return ['zsc %d %s' % (op[1], op[2])]
    raise ValueError(op)


def parse_command(line):
    """Regression file line -> absolute op (aio_write lines are grouped by
    the caller)."""
    w = line.split()
    c = w[0]
    nums = [a for a in w[1:] if not a.startswith('-')]
    if c == 'reopen':
        return ('reopen',)
    if c == 'flush':
        return ('flush',)
    if c in ('write', 'aio_write'):
        if '-z' in w:
            return ('wzero', int(w[-2]), int(w[-1]))
        pat = int(w[w.index('-P') + 1]) if '-P' in w else 0xcd
        return ('write' if c == 'write' else 'aiow', int(w[-2]), int(w[-1]),
                pat)
    if c == 'zap':
        return ('zap', int(w[-2]), int(w[-1]))
    if c in ('zo', 'zc', 'zf', 'zrs'):
        return ('mgmt', c, int(w[1]), int(w[2]))
    if c == 'zrp':
        return ('zrp', int(w[1]), int(w[2]))
    if c == 'read':
        return ('read', int(w[-2]), int(w[-1]))
    if c == 'aio_flush':
        return ('aio_flush',)
    if c in ('zsc', 'zone_set_cond'):
        if w[2] not in zm.SET_CONDS:
            raise ValueError('cannot parse %r' % line)
        return ('zsc', int(w[1]), w[2])
    raise ValueError('cannot parse %r' % line)


def parse_ops(lines):
    ops = []
    group = []
    for line in lines:
        op = parse_command(line)
        if op[0] == 'aiow':
            group.append((op[1], op[2], op[3]))
            continue
        if op[0] == 'aio_flush':
            ops.append(('aio', tuple(group)))
            group = []
            continue
        ops.append(op)
    if group:
        ops.append(('aio', tuple(group)))
    return ops


# Observations ------------------------------------------------------------

def outcome_of(out, kind):
    """Normalise a command's output: None (success), an errno name,
    ('ok', offset) for an append; ('?', text) when not understood."""
    lines = [l for l in out.splitlines() if l.strip()]
    if kind == 'zsc':
        for l in lines:
            m = ZSC_FAILED_RE.search(l)
            if m:
                return zsc_refusal(m.group(1))
        return ('?', out.strip()) if lines else None
    for l in lines:
        m = FAILED_RE.search(l)
        if m:
            return zm.errno_name(m.group(1))
    if kind == 'zap':
        for l in lines:
            m = re.search(r'the append sector is 0x([0-9a-f]+)', l)
            if m:
                return ('ok', int(m.group(1), 16) * 512)
        return ('?', out.strip())
    if kind in ('write', 'wzero'):
        if any(l.startswith('wrote ') for l in lines):
            return None
        return ('?', out.strip())
    if lines:
        return ('?', out.strip())
    return None


def zsc_refusal(msg):
    """A zsc failure message as a Refusal of the model's reason (the text
    kept in .text), or ('?', message)."""
    for sub, reason in ZSC_MESSAGES:
        if sub in msg:
            r = zm.Refusal(zm.REASONS[reason], reason)
            r.text = msg
            return r
    return ('?', 'zone set condition failed: ' + msg)


def zsc_message_numbers(geo, aop, reason):
    """The numbers a zsc refusal message must hold (interface note)."""
    off = aop[1]
    return {'cond-range': (off, geo.size),
            'cond-align': (off, geo.zone_size),
            'cond-conv': (geo.zone_of(off), off),
            'cond-active-limit': (geo.zone_of(off), geo.max_active),
            }.get(reason, ())


def same_outcome(k, o, obs):
    """Whether the model's outcome o is the observed one; zsc refusals by
    their reason (several share an errno)."""
    if k == 'zsc' and isinstance(o, zm.Refusal) and \
            isinstance(obs, zm.Refusal):
        return o.reason.split(' ')[0] == obs.reason
    return o == obs


ASAN_NOISE = re.compile(r'^==\d+==WARNING: ASan (doesn\'t fully support '
                        r'makecontext|is ignoring requested __asan_handle)|'
                        r'^False positive error reports may follow|'
                        r'^For details see https://github.com/google/'
                        r'sanitizers/issues/189')


def stray_lines(out):
    """Lines no command prints: messages on stderr (error_report etc.)."""
    bad = []
    for l in out.splitlines():
        if not l.strip() or ASAN_NOISE.search(l):
            continue
        if l.startswith(('wrote ', 'read ', 'start: ', 'After zap done')) \
                or FAILED_RE.search(l) or ZSC_FAILED_RE.search(l) \
                or 'ops; ' in l \
                or l.startswith('Pattern verification failed'):
            continue
        bad.append(l)
    return bad


def fmt_outcome(o):
    if o is None:
        return 'ok'
    if isinstance(o, zm.Refusal):
        return '%s (%s)' % (o, o.reason)
    if isinstance(o, tuple) and o[0] == 'ok':
        return 'ok@%d' % o[1]
    if isinstance(o, tuple) and o[0] == '?':
        return 'output %r' % o[1][:300]
    return str(o)


# Running a sequence --------------------------------------------------------

class Runner:
    """Runs one sequence of relative (or absolute) ops on a new image."""

    def __init__(self, args, geo, img, timeout, stats):
        self.args = args
        self.geo = geo
        self.img = img
        self.timeout = timeout
        self.stats = stats
        self.log = []           # absolute ops as run
        self.io = None

    def create(self):
        for attempt in range(30):
            wait_for_binary(self.args.qemu_img)
            if os.path.exists(self.img):
                os.unlink(self.img)
            try:
                r = subprocess.run(
                    [self.args.qemu_img, 'create', '-q', '-f', 'qcow2', '-o',
                     self.geo.options(), self.img, str(self.geo.size)],
                    capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                time.sleep(2)
                continue
            if r.returncode == 0:
                return None
            msg = (r.stdout + r.stderr).strip()
            if r.returncode < 0 or SAN_RE.search(msg):
                raise Failure('crash' if r.returncode < 0 else 'sanitizer',
                              -1, 'qemu-img create', None, None, msg)
            return msg
        return 'qemu-img did not run'

    def start(self, index):
        try:
            # A zone reset frees the zone's clusters with discard=unmap and
            # leaves them to the zone (stale data above the write pointer)
            # otherwise: half of the geometries run each way, decided by
            # the geometry so that a replayed regression runs the same way
            discard = ('ignore' if zlib.crc32(self.geo.options().encode()) & 1
                       else 'unmap')
            self.io = QemuIO(self.args, self.img, self.timeout, discard)
        except Died as e:
            self.io = None
            kind = 'crash' if e.rc < 0 else 'diff'
            if SAN_RE.search(e.out):
                kind = 'sanitizer'
            raise Failure(kind, index, 'open (qemu-io start)',
                          'image opens', 'exit %d' % e.rc, e.out[-3000:])
        except Hung as e:
            self.io = None
            raise Failure('hang', index, 'open (qemu-io start)', None, None,
                          e.out[-2000:])
        self._check_text(self.io.startup, index, 'open (qemu-io start)')

    def _check_text(self, out, index, cmd):
        if SAN_RE.search(out):
            raise Failure('sanitizer', index, cmd, None, None, out[-6000:])
        stray = stray_lines(out)
        if stray:
            raise Failure('diff', index, cmd, 'no message on stderr',
                          'message: ' + stray[0][:200], '\n'.join(stray[:10]))

    def run_cmd(self, line, index):
        self.stats['commands'] += 1
        try:
            out = self.io.cmd(line, self.timeout)
        except Died as e:
            io, self.io = self.io, None
            kind = 'crash'
            if SAN_RE.search(e.out):
                kind = 'sanitizer'
            elif e.rc >= 0:
                kind = 'crash'
            raise Failure(kind, index, line, None,
                          'exit status %d%s' % (e.rc, ' (signal %d)' % -e.rc
                                                if e.rc < 0 else ''),
                          e.out[-4000:])
        except Hung as e:
            self.io.close_hard()
            self.io = None
            raise Failure('hang', index, line, None,
                          'no result within %g s' % self.timeout,
                          e.out[-2000:])
        self._check_text(out, index, line)
        return out

    def stop(self, index):
        if not self.io:
            return
        io, self.io = self.io, None
        try:
            out, rc = io.quit(self.timeout)
        except Hung as e:
            io.close_hard()
            raise Failure('hang', index, 'quit', None, 'qemu-io does not exit',
                          e.out[-2000:])
        if rc < 0 or SAN_RE.search(out):
            raise Failure('sanitizer' if SAN_RE.search(out) else 'crash',
                          index, 'quit', None, 'exit status %d' % rc,
                          out[-6000:])
        self._check_text(out, index, 'quit')

    def abort(self):
        if self.io:
            self.io.close_hard()
            self.io = None

    # The check of one op against the model ------------------------------

    def step(self, cands, aop, index):
        k = aop[0]
        geo = self.geo
        if k == 'reopen':
            self.stop(index)
            self.start(index)
            return zm.dedup([s2 for s in cands for s2 in zm.reopen(s)])
        if k == 'flush':
            out = self.run_cmd('flush', index)
            o = outcome_of(out, 'flush')
            if o is not None:
                raise Failure('diff', index, 'flush', 'ok', fmt_outcome(o))
            return cands
        if k == 'zrp':
            line = commands(aop)[0]
            out = self.run_cmd(line, index)
            obs = parse_report(out)
            keep = [s for s in cands if zm.report_matches(s, aop[1], aop[2],
                                                          obs)]
            if not keep:
                diff = zm.report_diff(cands[0], aop[1], aop[2], obs)
                detail = '\n'.join(diff[:12])
                what = zm.report_diff_kind(cands[0], aop[1], aop[2], obs)
                raise Failure('diff', index, line, 'model report (state: %s)'
                              % cands[0].summary()[:600],
                              'zone report differs', detail,
                              ('diff', 'zrp', what))
            return keep
        if k == 'read':
            return self.check_read(cands, aop, index)
        if k == 'aio':
            return self.check_aio(cands, aop, index)
        line = commands(aop)[0]
        out = self.run_cmd(line, index)
        kind = k
        obs = outcome_of(out, kind)
        self.stats['outcome %s %s' % (aop[1] if k == 'mgmt' else k,
                                      'ok' if obs is None or obs[0] == 'ok'
                                      else obs)] += 1
        allowed = []
        keep = []
        for s in cands:
            if k == 'write':
                res = zm.write(s, aop[1], aop[2], aop[3])
            elif k == 'wzero':
                res = zm.write(s, aop[1], aop[2], 0)
            elif k == 'zap':
                res = zm.append(s, aop[1], aop[2])
            elif k == 'mgmt':
                res = zm.mgmt(s, aop[1], aop[2], aop[3])
            elif k == 'zsc':
                res = zm.set_cond(s, aop[1], aop[2])
            else:
                raise ValueError(aop)
            for o, s2 in res:
                if not any(same_outcome(k, o, a) for a in allowed):
                    allowed.append(o)
                if same_outcome(k, o, obs):
                    if not keep and isinstance(o, zm.Refusal):
                        self.stats['reason %s %s' % (
                            aop[1] if k == 'mgmt' else k, o.reason)] += 1
                    keep.append(s2)
        if not keep:
            sig = None
            if isinstance(obs, str) and all(isinstance(o, zm.Refusal)
                                            for o in allowed):
                # refused as the model wants, with another errno
                sig = ('errno', k, '/'.join(sorted(set(
                    o.reason for o in allowed))), obs)
            raise Failure('diff', index, line,
                          ' | '.join(fmt_outcome(o) for o in allowed),
                          fmt_outcome(obs),
                          'zones before: ' + cands[0].summary()[:800], sig)
        if k == 'zsc' and isinstance(obs, zm.Refusal):
            # the message names the offset, zone, size or limit
            got = set()
            for t in re.findall(r'0x[0-9a-fA-F]+|\d+', obs.text):
                got.add(int(t, 16) if t.startswith('0x') else int(t))
            want = zsc_message_numbers(geo, aop, obs.reason)
            if not set(want) <= got:
                raise Failure('diff', index, line, 'a message with %s'
                              % ', '.join(str(n) for n in want),
                              obs.text, '', ('diff', 'zsc', 'message'))
        return zm.dedup(keep)

    def check_read(self, cands, aop, index):
        off, ln = aop[1], aop[2]
        exp = {}            # expected segments -> states
        refused = {}        # errno -> states
        for s in cands:
            for o, _ in zm.read(s, off, ln):
                if isinstance(o, str):
                    refused.setdefault(o, []).append(s)
                else:
                    exp.setdefault(o[1], []).append(s)
        if refused:
            # the read itself is refused by the model (in some states)
            line = 'read -q %d %d' % (off, ln)
            out = self.run_cmd(line, index)
            obs = outcome_of(out, 'read')
            self.stats['outcome read %s' % ('ok' if obs is None else
                                            fmt_outcome(obs))] += 1
            if obs is not None or not exp:
                keep = refused.get(obs, [])
                if not keep:
                    raise Failure('diff', index, line,
                                  ' | '.join([fmt_outcome(o) for o in refused]
                                             + ['data'] * bool(exp)),
                                  fmt_outcome(obs))
                if obs != zm.ENXIO:
                    return keep
                # refused for an OFFLINE zone: what lies outside them must
                # still read as modelled
                exp = {}
                for s in keep:
                    exp.setdefault(tuple(zm.readable_segments(s, off, ln)),
                                   []).append(s)
        return self.check_patterns(exp, off, ln, index)

    def check_patterns(self, exp, off, ln, index):
        """Pattern reads for every segment any candidate expects; the
        candidates (exp: segments -> states) whose data they match."""
        reads = []
        for segs in exp:
            for seg in segs:
                if seg not in reads:
                    reads.append(seg)
        result = {}
        for (s, l, pat) in reads:
            line = 'read -q -P %d %d %d' % (pat, s, l)
            out = self.run_cmd(line, index)
            if 'Pattern verification failed' in out:
                result[(s, l, pat)] = False
            elif out.strip():
                raise Failure('diff', index, line, 'data', fmt_outcome(
                    outcome_of(out, 'read')))
            else:
                result[(s, l, pat)] = True
        keep = []
        for segs, states in exp.items():
            if all(result[r] == _predict(segs, r) for r in reads):
                keep += states
        if not keep:
            bad = [r for r in reads if not result[r]]
            detail = 'expected data (start, length, pattern): %s' % \
                list(next(iter(exp)))[:20]
            if bad:
                detail += '\nfailed pattern reads: %s' % bad[:10]
                detail += '\nactual data: ' + self.describe_data(bad[0])
            raise Failure('diff', index, 'read %d %d' % (off, ln),
                          'data as modelled', 'data differs', detail)
        return keep

    def describe_data(self, seg):
        """Which patterns the device returns in seg (for the report)."""
        s, l, _ = seg
        l = min(l, 256 * K)
        try:
            out = self.io.cmd('read -v %d %d' % (s, l), self.timeout)
        except (Died, Hung):
            return '?'
        runs = []
        for line in out.splitlines():
            m = re.match(r'([0-9a-f]{8}):  ((?:[0-9a-f]{2} ){1,16})', line)
            if not m:
                continue
            addr = int(m.group(1), 16)
            for j, b in enumerate(m.group(2).split()):
                v = int(b, 16)
                if runs and runs[-1][2] == v:
                    runs[-1][1] += 1
                else:
                    runs.append([addr + j, 1, v])
        return ', '.join('%d+%d: 0x%02x' % tuple(r) for r in runs[:12])

    def check_aio(self, cands, aop, index):
        reqs = aop[1]
        lines = commands(aop)
        out = ''
        for line in lines:
            out += self.run_cmd(line, index) + '\n'
        obs = []
        for l in out.splitlines():
            m = re.match(r'wrote (\d+)/(\d+) bytes at offset (\d+)', l)
            if m:
                obs.append(('ok', int(m.group(3)), int(m.group(1))))
                continue
            m = FAILED_RE.search(l)
            if m:
                obs.append(('err', zm.errno_name(m.group(1))))
        obs_c = sorted(obs, key=repr)
        keep = []
        allowed = []
        for s in cands[:16]:
            for perm in itertools.permutations(range(len(reqs))):
                for res, s2 in _serial(s, reqs, perm):
                    r = sorted(res, key=repr)
                    if r not in allowed and len(allowed) < 8:
                        allowed.append(r)
                    if r == obs_c:
                        keep.append(s2)
        if not keep:
            raise Failure('diff', index, '; '.join(lines),
                          ' | '.join(str(a) for a in allowed), str(obs_c),
                          'zones before: ' + cands[0].summary()[:800])
        return zm.dedup(keep)

    def run(self, ops, relative=True):
        """Runs the ops; returns the number run.  Raises Failure."""
        geo = self.geo
        msg = self.create()
        if msg is not None:
            return msg
        cands = [zm.State(geo)]
        self.start(0)
        try:
            for i, op in enumerate(ops):
                aop = resolve(geo, cands[0], op) if relative else op
                self.log.append(aop)
                self.stats['operations'] += 1
                cands = self.step(cands, aop, i)
            self.stop(len(ops))
        finally:
            self.abort()
        return None


def _predict(segs, read):
    s, l, pat = read
    e = s + l
    for (a, n, p) in segs:
        b = a + n
        if b <= s or a >= e:
            continue
        if p != pat:
            return False
    return True


def _serial(st, reqs, perm):
    """All (results in request order, state) of running reqs in order perm."""
    paths = [(st, [None] * len(reqs))]
    for j in perm:
        off, ln, pat = reqs[j]
        nxt = []
        for s, res in paths:
            for o, s2 in zm.write(s, off, ln, pat):
                r = list(res)
                r[j] = ('ok', off, ln) if o is None else ('err', o)
                nxt.append((s2, r))
        paths = nxt[:64]
    return [(r, s) for s, r in paths]


def parse_report(out):
    m = re.search(r'zone report failed: (.*)', out)
    if m:
        return ('err', zm.errno_name(m.group(1)))
    zones = []
    for line in out.splitlines():
        mm = ZRP_RE.search(line)
        if mm:
            v = [int(x, 16) for x in mm.groups()[:4]]
            zones.append((v[0] * 512, v[1] * 512, v[2] * 512, v[3] * 512,
                          int(mm.group(5)), int(mm.group(6))))
    return ('zones', zones)


# Generation ------------------------------------------------------------

CLUSTERS = [512, 1 * K, 2 * K, 4 * K, 8 * K, 16 * K, 32 * K, 64 * K,
            64 * K, 64 * K, 128 * K, 256 * K, 512 * K, 1 * M, 2 * M]


def draw_geometry(rng, aligned_size=False):
    cluster = rng.choice(CLUSTERS)
    ext = cluster >= 16 * K and rng.random() < 0.35
    # zone size: a power of two, multiple of the cluster size, <= 8 MiB
    lo = max(cluster, 4 * K if rng.random() < 0.8 else 512)
    sizes = [1 << b for b in range(9, 24) if (1 << b) >= lo]
    zone = rng.choice(sizes[:6])
    # zones: few for big zones, up to 64 for small ones
    nmax = max(2, min(24, (48 * M) // zone))
    if zone <= 64 * K and rng.random() < 0.3:
        nmax = min(64, (48 * M) // zone)
    nz = rng.randint(2, nmax)
    size = nz * zone
    if rng.random() < 0.45:
        # a smaller last zone
        size -= r512(rng.randrange(512, zone)) if zone > 512 else 0
        size = max(size, zone + 512)
        if aligned_size:
            size = max(zone + cluster, size - size % cluster)
    r = rng.random()
    if r < 0.35:
        cap = zone
    elif r < 0.7:
        cap = zone - 512 * rng.randint(1, max(1, min(64, zone // 512 - 1)))
    else:
        cap = 512 * rng.randint(1, zone // 512)
    cap = max(512, min(cap, zone))
    nzones = -(-size // zone)
    conv = 0 if rng.random() < 0.5 else rng.randint(1, min(3, nzones - 1))
    nseq = nzones - conv
    mo = ma = 0
    if rng.random() < 0.6:
        mo = rng.randint(1, min(4, nseq))
    if rng.random() < 0.5:
        ma = rng.randint(max(1, mo), min(nseq, max(mo, 1) + 3))
    mab = None
    if rng.random() < 0.5:
        mab = rng.choice([512, 4 * K, 64 * K, cap, cap - 512, 3 * 512,
                          r512(cap // 2)])
        mab = max(512, min(cap, r512(mab)))
    return zm.Geometry(size, zone, cap, conv, mo, ma, mab, cluster, ext)


class Gen:
    def __init__(self, rng, geo, exclude=()):
        self.exclude = exclude
        self.rng = rng
        self.geo = geo
        self.pat = 0
        seq = list(range(geo.conventional, geo.nzones))
        nhot = min(len(seq), max(2, (geo.max_open or 2) + 1,
                                 (geo.max_active or 0) + 1))
        self.hot = rng.sample(seq, nhot)
        if geo.nzones - 1 not in self.hot and rng.random() < 0.5:
            self.hot.append(geo.nzones - 1)
        self.seq = seq

    def next_pat(self):
        while True:
            self.pat = self.pat % 254 + 1
            if self.pat != 0xcd:
                return self.pat

    def zone(self, want=None):
        rng, geo = self.rng, self.geo
        if want and rng.random() < 0.75:
            return (want, rng.randrange(16), tuple(self.hot))
        r = rng.random()
        if geo.conventional and r < 0.1:
            return rng.randrange(geo.conventional)
        if r < 0.16:
            return geo.nzones - 1
        if r < 0.85:
            return rng.choice(self.hot)
        return rng.randrange(geo.nzones)

    def delta(self, p_zero=0.7):
        rng = self.rng
        if rng.random() < p_zero:
            return 0
        return rng.choice([-512, 512, -4096, 4096, -self.geo.cluster_size,
                           self.geo.cluster_size, 1024, -1024])

    def length(self, big=True):
        rng, geo = self.rng, self.geo
        if rng.random() < 0.3:
            return ('capfrac', rng.choice([0.01, 0.05, 0.1, 0.2, 0.3, 0.5]))
        r = rng.random()
        if r < 0.35:
            return ('abs', rng.choice([512, 1024, 4096, 8192, 3 * 512,
                                       geo.cluster_size,
                                       geo.cluster_size + 512,
                                       max(512, geo.cluster_size - 512),
                                       2 * geo.cluster_size]))
        if r < 0.55:
            return ('abs', 512 * rng.randint(1, 256))
        if r < 0.75 and big:
            return ('to_cap', rng.choice([0, 0, 0, -512, 512, -4096]))
        if r < 0.85 and big:
            return ('to_end', rng.choice([0, -512, 512]))
        if r < 0.9 and big:
            return ('zones', rng.randint(1, 3), rng.choice([0, 512, -512]))
        if r < 0.92:
            return ('abs', 0)
        if r < 0.94:
            return ('abs', rng.choice([1, 100, 511, 513, 4095]))
        return ('abs', 512 * rng.randint(1, 64))

    def offset(self):
        rng = self.rng
        r = rng.random()
        if r < 0.8:
            return 'wp', self.delta(0.88)
        if r < 0.85:
            return 'start', self.delta()
        if r < 0.89:
            return 'cap', self.delta(0.4)
        if r < 0.92:
            return 'end', self.delta(0.4)
        if r < 0.94:
            return 'disk_end', self.delta(0.5)
        if r < 0.95:
            return 'wp', rng.choice([1, 100, 511, 513])
        return rng.random(), 0

    def zsc(self):
        """A zone condition change: ('zsc', zone, cond, delta)."""
        rng, geo = self.rng, self.geo
        k = rng.randrange(16)
        hot = tuple(self.hot)
        cond = rng.choice(['read-only', 'read-only', 'offline', 'normal'])
        delta = 0
        r = rng.random()
        if r < 0.25:
            z = ('open', k, hot)
        elif r < 0.4:
            z = ('active', k, hot)
        elif r < 0.6:
            # a READ ONLY or OFFLINE zone, mostly back to normal
            z = ('cond', k, hot)
            if rng.random() < 0.6:
                cond = 'normal'
        elif r < 0.68:
            z = geo.nzones - 1
        elif r < 0.75 and geo.conventional:
            z = rng.randrange(geo.conventional)
        elif r < 0.82:
            z = 'past'
            delta = rng.choice([0, 512, 'aligned', geo.zone_size])
        elif r < 0.9:
            # not a zone start
            z = rng.choice(self.hot)
            delta = rng.choice([512, -512, geo.cluster_size,
                                r512(geo.zone_size // 2), 100])
        elif r < 0.95:
            z = ('used', k, hot)
        else:
            z = rng.randrange(geo.nzones)
        return ('zsc', z, cond, delta)

    def zsc_limit(self):
        """A zone written, made READ ONLY, other zones written, the zone
        back to normal: CLOSED again, or refused at the active limit."""
        rng = self.rng
        z = rng.choice(self.hot)
        out = [('write', z, 'wp', 0, ('abs', 512 * rng.randint(1, 8)),
                self.next_pat()),
               ('zsc', z, 'read-only', 0)]
        for _ in range(rng.randint(1, 3)):
            out.append(('write', self.zone('nonfull'), 'wp', 0,
                        ('abs', 512 * rng.randint(1, 8)), self.next_pat()))
        out.append(('zsc', z, 'normal', 0))
        return out

    def op(self):
        rng, geo = self.rng, self.geo
        if rng.random() < 0.03:
            return self.zsc()
        r = rng.random()
        z = self.zone()
        if r < 0.53 or 0.72 <= r < 0.79:
            z = self.zone('nonfull')
        if r < 0.36:
            a, d = self.offset()
            return ('write', z, a, d, self.length(), self.next_pat())
        if r < 0.38:
            a, d = self.offset()
            return ('wzero', z, a, d, self.length())
        if r < 0.53:
            rr = rng.random()
            if rr < 0.88:
                a, d = 'start', 0
            elif rr < 0.93:
                # at or past the disk end
                a, d = 'disk_end', rng.choice([0, 512, geo.zone_size, M])
            else:
                a, d = self.offset()
            ln = self.length()
            rr = rng.random()
            if rr < 0.5:
                ln = ('appfrac', rng.choice([0.01, 0.1, 0.25, 0.5, 1.0]))
            elif rr < 0.7:
                ln = ('abs', rng.choice([geo.max_append, geo.max_append + 512,
                                         geo.max_append - 512]))
            return ('zap', z, a, d, ln)
        if r < 0.72:
            name = rng.choice(['zo', 'zo', 'zc', 'zf', 'zf', 'zrs', 'zrs',
                               'zrs'])
            if name in ('zrs', 'zf', 'zc'):
                z = self.zone('used')
            rr = rng.random()
            if rr < 0.04:
                return ('mgmt', name, 0, 'all')
            if rr < 0.8:
                spec = (1, 0, 0)
            elif rr < 0.9:
                spec = (rng.randint(2, 3), 0, 0)
            elif rr < 0.94:
                spec = ('rest', 0, 0)
            else:
                spec = rng.choice([(0, 0, 0), (1, 512, 0), (1, 0, -512),
                                   (1, 0, 512), (1, geo.zone_size, 0)])
            return ('mgmt', name, z, spec)
        if r < 0.79:
            reqs = []
            nreq = rng.randint(2, 4)
            same = rng.random() < 0.6
            for j in range(nreq):
                zz = z if same else self.zone()
                if same and j > 0:
                    a, d = ('prev_end', 0) if rng.random() < 0.8 else \
                        ('wp', 0)
                else:
                    a, d = 'wp', 0
                ln = ('abs', 512 * rng.randint(1, 128)) if rng.random() < 0.85 \
                    else self.length()
                reqs.append((zz, a, d, ln, self.next_pat()))
            return ('aio', tuple(reqs))
        if r < 0.84:
            a, d = self.offset()
            return ('read', z, a, d, self.length())
        if r < 0.9:
            if rng.random() < 0.03:
                return ('zrp', 'past', 2)
            return ('zrp', rng.choice([0, 0, 0, z]),
                    rng.choice([geo.nzones, geo.nzones, 1, 2, 0,
                                geo.nzones + 3]))
        if r < 0.95:
            return ('flush',)
        if r < 0.975:
            return ('reopen',)
        return ('read', 0, 'start', 0, ('to_disk_end', 0))

    def ops(self, n):
        out = []
        for _ in range(n):
            op = self.op()
            while op[0] in self.exclude or (op[0] == 'mgmt' and
                                            op[1] in self.exclude):
                op = self.op()
            if op[0] == 'zsc' and self.geo.max_active and \
                    self.rng.random() < 0.3:
                out += self.zsc_limit()
                continue
            out.append(op)
            if op[0] == 'mgmt' and op[1] == 'zo' and op[3] != 'all' and \
                    self.rng.random() < 0.25:
                # an explicitly opened zone closed again, written or not
                if self.rng.random() < 0.5:
                    out.append(('write', op[2], 'wp', 0, ('abs', 512),
                                self.next_pat()))
                out.append(('mgmt', 'zc', op[2], op[3]))
            if op[0] == 'reopen' or self.rng.random() < 0.12:
                out.append(('zrp', 0, self.geo.nzones))
        out.append(('zrp', 0, self.geo.nzones))
        out.append(('read', 0, 'start', 0, ('to_disk_end', 0)))
        out.append(('reopen',))
        out.append(('zrp', 0, self.geo.nzones))
        out.append(('read', 0, 'start', 0, ('to_disk_end', 0)))
        return out


# Shrinking and reproducers ---------------------------------------------------

def try_ops(args, geo, ops, relative, timeout, stats):
    """Runs ops on a new image: (Failure or None, absolute log)."""
    img = os.path.join(args.dir, 'shrink-%d.qcow2' % os.getpid())
    r = Runner(args, geo, img, timeout, stats)
    try:
        msg = r.run(ops, relative)
        if msg is not None:
            return Failure('diff', -1, 'qemu-img create', 'created', msg), \
                r.log
        return None, r.log
    except Failure as f:
        return f, r.log
    finally:
        r.abort()


def shrink(args, geo, ops, relative, failure, deadline, stats):
    """Delta debugging: drop chunks of ops while the same kind of failure
    persists.  Returns (ops, failure, log)."""
    sig = failure.signature()
    timeout = min(args.timeout, max(3.0, args.shrink_timeout))
    ops = list(ops[:failure.index + 1]) if failure.index >= 0 else list(ops)
    best = (ops, failure, None)
    f, log = try_ops(args, geo, ops, relative, timeout, stats)
    if f is None or f.signature() != sig:
        return ops, failure, None
    best = (ops, f, log)
    n = 2
    while len(ops) >= 2 and time.time() < deadline:
        chunk = max(1, len(ops) // n)
        changed = False
        i = 0
        while i < len(ops) and time.time() < deadline:
            cand = ops[:i] + ops[i + chunk:]
            f, log = try_ops(args, geo, cand, relative, timeout, stats)
            if f is not None and f.signature() == sig:
                cand = cand[:f.index + 1] if f.index >= 0 else cand
                ops = cand
                best = (ops, f, log)
                changed = True
            else:
                i += chunk
        if not changed:
            if chunk == 1:
                break
            n = min(len(ops), n * 2)
    return best


def absolute_lines(log, upto=None):
    lines = []
    for aop in log[:upto]:
        if aop[0] == 'reopen':
            lines.append('reopen')
        else:
            lines += commands(aop)
    return lines


def shell_snippet(args, geo, lines):
    img = 'zf.qcow2'
    out = ['%s create -f qcow2 -o %s %s %d' % (args.qemu_img, geo.options(),
                                             img, geo.size)]
    seg = []
    for l in lines + ['reopen']:
        if l == 'reopen':
            if seg:
                out.append('%s -f qcow2 %s %s' % (
                    args.qemu_io, ' '.join('-c %s' % shlex.quote(c)
                                           for c in seg), img))
            seg = []
        else:
            seg.append(l)
    return '\n'.join(out)


def save_regression(args, geo, lines, failure, seedtxt):
    os.makedirs(args.save, exist_ok=True)
    sig = '-'.join(re.sub(r'[^a-z0-9]+', '', str(x).lower())[:12]
                   for x in failure.signature())
    path = os.path.join(args.save, '%s-%s.txt' % (
        sig, '-'.join(re.findall(r'\d+', seedtxt))))
    with open(path, 'w') as f:
        f.write('# %s\n' % failure.text().replace('\n', '\n# '))
        f.write('geometry %s\n' % geo.describe())
        for l in lines:
            f.write(l + '\n')
    return path


def load_regression(path):
    geo = None
    lines = []
    with open(path) as f:
        for raw in f:
            raw = raw.strip()
            if not raw or raw.startswith('#'):
                continue
            if raw.startswith('geometry '):
                geo = zm.Geometry.parse(raw[len('geometry '):])
                continue
            lines.append(raw)
    return geo, parse_ops(lines)


# Main --------------------------------------------------------------------

def report_failure(args, stats, geo, ops, relative, f, seedtxt, shrunk_sigs):
    stats[{'diff': 'differences', 'crash': 'crashes', 'hang': 'hangs',
           'sanitizer': 'sanitizer reports'}[f.kind]] += 1
    print('\n=== %s (%s)' % (f.kind.upper(), seedtxt), flush=True)
    print('geometry: %s' % geo.describe())
    print(f.text())
    sig = f.signature()
    if sig in shrunk_sigs and not args.shrink_all:
        print('(same kind as %s: not shrunk again)' % shrunk_sigs[sig],
              flush=True)
        return
    left = args.shrink_budget - stats['shrink seconds']
    if left <= 0:
        print('(shrink budget used up: not shrunk)', flush=True)
        return
    t = time.time()
    deadline = t + min(args.shrink_seconds, left)
    sops, sf, slog = shrink(args, geo, ops, relative, f, deadline,
                            collections.Counter())
    stats['shrink seconds'] += time.time() - t
    if slog is None:
        print('(not reproducible on a new image: not shrunk)', flush=True)
        return
    lines = absolute_lines(slog, sf.index + 1 if sf.index >= 0 else None)
    print('minimized to %d operations (%d commands):' % (len(sops),
                                                         len(lines)))
    print(sf.text())
    print(shell_snippet(args, geo, lines))
    path = save_regression(args, geo, lines, sf, seedtxt)
    print('saved: %s' % path, flush=True)
    shrunk_sigs[sig] = seedtxt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.dirname(os.path.dirname(here))
    ap.add_argument('--qemu-img', default=os.path.join(top, 'build/obj/qemu-img'))
    ap.add_argument('--qemu-io', default=os.path.join(top, 'build/obj/qemu-io'))
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--sequences', type=int, default=80)
    ap.add_argument('--ops', type=int, default=120,
                    help='operations per sequence (plus checks)')
    ap.add_argument('--seconds', type=float, default=0,
                    help='keep going at least this long (soak)')
    ap.add_argument('--dir', default=os.path.join(top, 'build/zone-fuzz'))
    ap.add_argument('--replay', metavar='DIR', default=None,
                    help='regression files to run first')
    ap.add_argument('--save', default=None,
                    help='where minimized reproducers go (default DIR/found)')
    ap.add_argument('--timeout', type=float, default=15,
                    help='seconds per qemu-io command before it is a hang')
    ap.add_argument('--shrink-timeout', type=float, default=5)
    ap.add_argument('--shrink-seconds', type=float, default=60,
                    help='time to shrink one failure')
    ap.add_argument('--shrink-budget', type=float, default=300,
                    help='total time for shrinking')
    ap.add_argument('--shrink-all', action='store_true',
                    help='shrink every failure, not one per kind')
    ap.add_argument('--no-shrink', action='store_true')
    ap.add_argument('--accept-errno', action='append', default=[],
                    metavar='REASON=ERRNO[,ERRNO]',
                    help='also accept ERRNO for a refusal of this reason '
                    '(reasons: %s)' % ', '.join(sorted(zm.REASONS)))
    ap.add_argument('--lenient-errno', action='store_true',
                    help='EIO and EINVAL interchangeable, except for the '
                    'README zone rules')
    ap.add_argument('--aligned-size', action='store_true',
                    help='disk sizes that are cluster multiples only (to '
                    'look past a defect with a partial last cluster)')
    ap.add_argument('--exclude', action='append', default=[],
                    metavar='KIND', help='generate no operation of this kind '
                    '(write wzero zap aio read zrp flush reopen zo zc zf zrs '
                    'zsc)')
    ap.add_argument('--skip', type=int, default=0, metavar='N',
                    help='start at sequence N of the seed')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    for a in args.accept_errno:
        reason, _, errs = a.partition('=')
        if reason not in zm.REASONS:
            ap.error('unknown reason %r' % reason)
        zm.ACCEPTED_ALTERNATIVES.setdefault(reason, set()).update(
            errs.split(','))
    zm.LENIENT = args.lenient_errno
    args.save = args.save or os.path.join(args.dir, 'found')
    os.environ.setdefault('ASAN_OPTIONS', 'detect_leaks=0')
    os.environ.setdefault('UBSAN_OPTIONS', 'print_stacktrace=1')
    os.makedirs(args.dir, exist_ok=True)
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    master = random.Random(seed)
    stats = collections.Counter()
    geos = set()
    refused = collections.Counter()
    shrunk_sigs = {}
    t0 = time.time()
    print('zone-fuzz: seed %d, %s, %s' % (seed, args.qemu_io, args.qemu_img),
          flush=True)

    if args.replay:
        for path in sorted(glob.glob(os.path.join(args.replay, '*.txt'))):
            geo, ops = load_regression(path)
            img = os.path.join(args.dir, 'replay-%d.qcow2' % os.getpid())
            r = Runner(args, geo, img, args.timeout, stats)
            stats['replayed'] += 1
            geos.add(geo.key())
            try:
                msg = r.run(ops, relative=False)
                if msg:
                    print('replay %s: qemu-img create refused: %s'
                          % (path, msg))
                    stats['differences'] += 1
                elif args.verbose:
                    print('replay %s: ok' % path)
            except Failure as f:
                stats[{'diff': 'differences', 'crash': 'crashes',
                       'hang': 'hangs',
                       'sanitizer': 'sanitizer reports'}[f.kind]] += 1
                print('\n=== replay %s: %s' % (os.path.basename(path),
                                              f.text()))
                lines = absolute_lines(r.log, f.index + 1)
                print(shell_snippet(args, geo, lines), flush=True)
            finally:
                r.abort()

    faulthandler.register(signal.SIGUSR1)     # kill -USR1: where it is
    for _ in range(args.skip):
        master.randrange(1 << 31)
    i = args.skip
    while i < args.sequences or time.time() - t0 < args.seconds:
        sseed = master.randrange(1 << 31)
        rng = random.Random(sseed)
        geo = draw_geometry(rng, args.aligned_size)
        seedtxt = 'seed %d sequence %d (sequence seed %d)' % (seed, i, sseed)
        ops = Gen(rng, geo, args.exclude).ops(args.ops)
        img = os.path.join(args.dir, 'fuzz-%d.qcow2' % os.getpid())
        r = Runner(args, geo, img, args.timeout, stats)
        try:
            msg = r.run(ops)
            if msg is not None:
                refused[msg.split(':')[-1].strip()[:70]] += 1
                if args.verbose:
                    print('create refused: %s: %s' % (geo.describe(), msg))
                continue
            geos.add(geo.key())
            stats['sequences'] += 1
            i += 1
            if args.verbose:
                print('sequence %d ok: %s (%d ops)' % (i, geo.describe(),
                                                       len(ops)), flush=True)
        except Failure as f:
            geos.add(geo.key())
            stats['sequences'] += 1
            i += 1
            r.abort()
            if args.no_shrink:
                stats[{'diff': 'differences', 'crash': 'crashes',
                       'hang': 'hangs',
                       'sanitizer': 'sanitizer reports'}[f.kind]] += 1
                print('\n=== %s (%s)\ngeometry: %s\n%s' % (
                    f.kind.upper(), seedtxt, geo.describe(), f.text()))
                lines = absolute_lines(r.log, f.index + 1)
                print(shell_snippet(args, geo, lines), flush=True)
            else:
                report_failure(args, stats, geo, ops, True, f, seedtxt,
                               shrunk_sigs)
        finally:
            r.abort()
    for p in ('fuzz', 'shrink', 'replay'):
        try:
            os.unlink(os.path.join(args.dir, '%s-%d.qcow2' % (p, os.getpid())))
        except OSError:
            pass
    if refused and args.verbose:
        print('geometries refused by qemu-img create: %s' % dict(refused))
    if args.verbose:
        for k in sorted(stats):
            if k.startswith(('outcome ', 'reason ')):
                print('  %-40s %d' % (k, stats[k]))
    found = (stats['differences'] + stats['crashes'] + stats['hangs'] +
             stats['sanitizer reports'])
    print('zone-fuzz: seed %d, %d regression files replayed, %d qemu-io '
          'commands, %.0f s' % (seed, stats['replayed'], stats['commands'],
                                time.time() - t0))
    print('zone-fuzz: %d sequences, %d geometries, %d operations, '
          '%d differences, %d crashes, %d hangs, %d sanitizer reports'
          % (stats['sequences'], len(geos), stats['operations'],
             stats['differences'], stats['crashes'], stats['hangs'],
             stats['sanitizer reports']))
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
