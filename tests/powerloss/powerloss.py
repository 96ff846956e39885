#!/usr/bin/env python3
"""Power-loss test of zoned qcow2 images.

The crash test (tests/crash/crash-test.py) kills qemu-io: the host page
cache keeps every write QEMU issued, so it cannot see a wrong order of data
and metadata writes.  This test replays what a power loss can leave:

 1. Record.  For each geometry, create the image, copy it (the state the
    log starts from), then run a zoned workload in one interactive qemu-io
    whose qcow2 node sits on QEMU's blklogwrites driver, which logs every
    write, discard and flush that qcow2 sends to its image file
    (dm-log-writes format, see dmlog.py).  Writes at the write pointer with
    a distinct byte pattern each, zone appends, finishes, resets, closes,
    refused writes, writes to conventional zones, guest flushes, and
    batches of writes in flight together (aio_write) with a guest flush
    issued while some are in flight, then a drain; after
    each command a zone report checks the model, and the number of log
    entries says which entries each command produced.  Zone conditions:
    zsc makes zones read-only or offline and normal again (a read-only or
    offline zone refuses writes, appends, resets, finishes and closes; a
    refused read-only -> normal at max_active_zones is expected).  Cache
    mode writeback: flushes happen only when qcow2 asks for them.
 2. Replay.  A power loss keeps every entry before the last FLUSH entry
    that completed, and any subset of the writes after it (the disk may
    reorder or drop them until the next flush), FUA writes included.  For a
    crash point p (entries before p were issued), the image is rebuilt from
    the copy: all entries up to the last FLUSH entry before p, then all
    (prefix states), a random subset (subset states), or a random subset
    with some multi-sector writes torn at sector granularity (torn states)
    of the writes between that flush and p.  Also the state at every FLUSH
    entry.  Replaying the whole log must give the final image byte for
    byte (a check of the replayer).
 3. Check each rebuilt image:
    - qemu-img check finds no error (leaked clusters are allowed);
    - it opens read-write and 'zrp 0 N' reports every zone; sequential
      zones are EMPTY, CLOSED or FULL, matching their write pointer;
    - the data below each write pointer is a state the zone had since the
      last guest flush that completed before p (or since an acknowledged
      reset): a prefix of the zone's content at that flush or after a
      later command, and zeroes read back beyond the write pointer;
    - nothing acknowledged before the last completed guest flush is lost:
      the write pointer is at least the one at that flush unless the zone
      was reset since, and an acknowledged reset is not undone;
    - every sector of a conventional zone holds what the last write before
      that flush or a later write put there;
    - zone conditions: an acknowledged zsc is in the image (zsc stores and
      flushes the entry before it returns): the zone report and bits 58-59
      of the entry give its condition; a read-only zone holds exactly the
      data it had (durable before the entry was stored), its write pointer
      read from bits 0-55; an offline zone has bits 0-55 zero and reads as
      zeroes through qemu-img convert; after normal, an offline zone is
      EMPTY and a read-only one has its write pointer again.  A zsc in
      flight at the crash allows the old or the new condition.

--self-test replays deliberately wrong states instead and succeeds only if
the checks catch them: the write pointer table written by a guest flush
applied with the data and metadata writes since the previous guest flush
dropped (reordering across a flush), the state before a guest flush
checked as if the flush had completed (a flush that persisted nothing), and
the state before each zsc that changed a condition checked as if it had
completed (every one must be caught).

Limits: the log is in completion order, so a write that completes while a
FLUSH is in progress (only in the batches) counts as covered by that FLUSH;
the replay is then a little optimistic for that write.  File size changes
are not logged (qcow2 does not truncate zoned images in this workload).

The last line is the summary; exit status 0 only without violations.  On a
violation, the seed, the state (which log entries were applied) and what is
wrong are printed, and the image, its base copy and the log are kept.
"""

import argparse
import hashlib
import importlib.util
import json
import os
import random
import re
import select
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True          # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import dmlog  # noqa: E402

# Geometries, the zone report parser and the image setup of the crash test
_spec = importlib.util.spec_from_file_location(
    'crash_test', os.path.join(HERE, '..', 'crash', 'crash-test.py'))
crash = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(crash)

SECTOR = 512
SLOT = 32 << 10                 # conventional zones: writes of one slot
APPEND_PAT = 0xcd               # qemu-io's zone append always writes 0xcd
EMPTY, CLOSED, FULL = 1, 4, 14
READ_ONLY, OFFLINE = 13, 15
# Zone conditions set by zsc: the report's zcond, and bits 58-59 of the
# write pointer table entry
ZCOND = {'read-only': READ_ONLY, 'offline': OFFLINE}
ENTRY_COND = {'normal': 0, 'read-only': 1, 'offline': 2}
WP_MASK = (1 << 56) - 1
UNIFORM = [bytes([b]) * SECTOR for b in range(256)]


def runs_append(runs, byte, n):
    """Zone contents are kept as tuples of (byte, length) runs."""
    if n <= 0:
        return runs
    if runs and runs[-1][0] == byte:
        return runs[:-1] + ((byte, runs[-1][1] + n),)
    return runs + ((byte, n),)


def runs_len(runs):
    return sum(n for _, n in runs)


def runs_bytes(runs, limit):
    out = bytearray()
    for b, n in runs:
        if len(out) >= limit:
            break
        out += bytes([b]) * min(n, limit - len(out))
    return bytes(out)


class Op:
    def __init__(self, idx, kind, zone, length=0, pat=0, cmd=''):
        self.idx = idx
        self.kind = kind        # write, badwrite, append, flush, reset,
        self.zone = zone        # finish, close, cwrite, zsc
        self.cond = None        # zsc: the condition set
        self.prev_cond = None   # zsc: the condition before
        self.length = length
        self.pat = pat
        self.cmd = cmd
        self.ok = False
        self.log_start = self.log_end = 0
        self.runs = None        # zone content after the op (sequential zones)
        self.slot = None        # conventional writes
        self.snap = None        # guest flushes: every zone's content,
                                # the conventional slots, the conditions


class QemuIO:
    """An interactive qemu-io: one command at a time, output up to the
    next prompt."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.buf = b''
        self.read()

    PROMPT = b'qemu-io> '

    def read(self, timeout=120):
        """Output up to the next prompt; what follows it (completions of
        aio requests printed after the prompt) goes to the next command."""
        deadline = time.time() + timeout
        fd = self.p.stdout.fileno()
        while self.PROMPT not in self.buf:
            r, _, _ = select.select([fd], [], [], max(0, deadline -
                                                      time.time()))
            if not r:
                raise RuntimeError('qemu-io hangs; output so far: %r'
                                   % self.buf)
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError('qemu-io exited; output: %r' %
                                   self.buf.decode(errors='replace'))
            self.buf += chunk
        out, self.buf = self.buf.split(self.PROMPT, 1)
        return out.decode(errors='replace')

    def cmd(self, line):
        self.p.stdin.write(line.encode() + b'\n')
        self.p.stdin.flush()
        return self.read()

    def quit(self):
        self.p.stdin.write(b'quit\n')
        self.p.stdin.close()
        rest = (self.buf + self.p.stdout.read()).decode(errors='replace')
        return self.p.wait(), rest


class Geometry:
    """One image: the recorded workload, its log and its model."""

    def __init__(self, rnd, gi, geo, args, rng, stats):
        self.rnd = rnd
        self.gi = gi
        self.geo = geo
        self.args = args
        self.path = os.path.join(args.dir, 'powerloss-r%d-g%d.qcow2'
                                 % (rnd, gi))
        self.base = self.path + '.base'
        self.logp = self.path + '.log'
        self.img = crash.Image(self.path, geo, args)
        self.zones = self.img.zones
        self.nconv = geo['conv']
        self.seq = [z for z in self.zones if z.idx >= self.nconv]
        self.conv = [z for z in self.zones if z.idx < self.nconv]
        self.nslots = sum(z.length // SLOT for z in self.conv)
        shutil.copyfile(self.path, self.base)
        open(self.logp, 'wb').close()
        self.ops = []
        self.record(rng, stats)
        self.entries, nr_super, ssize = dmlog.read_log(self.logp)
        assert ssize == SECTOR
        with open(self.base, 'rb') as f:
            self.base_bytes = f.read()
        # Window boundaries: 0 and one past every FLUSH entry
        self.bounds = [0] + [e.idx + 1 for e in self.entries if e.is_flush]
        if self.bounds[-1] != len(self.entries):
            self.bounds.append(len(self.entries))
        # The image at each boundary, built once
        self.durable = {}
        img = bytearray(self.base_bytes)
        j = 0
        for b in self.bounds:
            while j < b:
                dmlog.apply(img, self.entries[j])
                j += 1
            self.durable[b] = bytes(img)
        self.table = self.zone_table()
        self.check_full_replay()
        stats['log_entries'] += len(self.entries)
        stats['flush_entries'] += sum(e.is_flush for e in self.entries)
        stats['guest_flushes'] += sum(o.kind == 'flush' for o in self.ops)

    # ---- recording ----

    def image_opts(self):
        # Resets free the zone's clusters (discard=unmap) or leave them to
        # the zone: geometries take turns, and change each round
        return ('driver=qcow2,discard=%s,file.driver=blklogwrites,'
                'file.file.driver=file,file.file.filename=%s,'
                'file.log.driver=file,file.log.filename=%s,'
                'file.log-sector-size=%d'
                % ('ignore' if (self.rnd + self.gi) % 2 else 'unmap',
                   self.path, self.logp, SECTOR))

    def report(self, q, z):
        out = q.cmd('zrp %d 1' % self.img.start(z))
        for line in out.splitlines():
            r = crash.zone_report(line)
            if r:
                return crash.rel_wp(self.img, z, r[1], r[2]), r[2]
        raise RuntimeError('no zone report: %r' % out)

    def record(self, rng, stats):
        q = QemuIO(['nice', '-n', '10', self.args.qemu_io, '-t', 'writeback',
                    '--image-opts', self.image_opts()])
        logpos = dmlog.count_entries(self.logp)
        pat = [0]

        def next_pat():
            pat[0] = pat[0] % 254 + 1
            if pat[0] == APPEND_PAT:
                pat[0] += 1
            return pat[0]

        runs = {z.idx: () for z in self.seq}
        slots = self.slots = {}         # conventional slot -> pattern
        # zsc: 'normal', 'read-only' or 'offline' per sequential zone
        conds = self.conds = {z.idx: 'normal' for z in self.seq}
        hot = rng.sample(self.seq, min(len(self.seq),
                                       max(2, self.geo['mo'] or 4)))
        self.model_errors = []
        while len(self.ops) < self.args.ops:
            i = len(self.ops)
            z = rng.choice(hot if rng.random() < 0.85 else self.seq)
            wp = runs_len(runs[z.idx])
            r = rng.random()
            if r < 0.06 and self.conv:
                kind = 'cwrite'
            elif r < 0.14:
                self.batch(q, rng, hot, runs, next_pat, stats)
                logpos = dmlog.count_entries(self.logp, logpos)
                continue
            elif r < 0.50:
                kind = 'write'
            elif r < 0.53:
                kind = 'badwrite'
            elif r < 0.66:
                kind = 'append'
            elif r < 0.79:
                kind = 'flush'
            elif r < 0.87:
                kind = 'reset'
            elif r < 0.93:
                kind = 'finish'
            elif r < 0.96:
                kind = 'close'
            else:
                kind = 'zsc'
            # A zone that is read-only or offline gets its condition back
            # now and then (else writes to it keep failing)
            if conds[z.idx] != 'normal' and kind in ('write', 'append') and \
                    rng.random() < 0.3:
                kind = 'zsc'
            if kind in ('write', 'append', 'badwrite') and wp >= z.cap:
                kind = 'reset'
            start = self.img.start(z)
            op = Op(i, kind, z)
            if kind == 'write':
                op.length = min(rng.choice([4, 8, 16, 64, 128]) << 10,
                                z.cap - wp)
                op.pat = next_pat()
                op.cmd = 'write -P %d %d %d' % (op.pat, start + wp, op.length)
            elif kind == 'badwrite':
                # Not at the write pointer: refused, nothing written
                off = rng.choice([wp + 4096, max(0, wp - 4096)])
                if off == wp or off + 4096 > z.cap:
                    off = wp + 512 if wp + 4608 <= z.cap else wp - 512
                op.length = 4096
                op.pat = next_pat()
                op.cmd = 'write -P %d %d 4096' % (op.pat, start + off)
            elif kind == 'append':
                op.length = rng.choice([4, 32, 64]) << 10
                op.pat = APPEND_PAT
                op.cmd = 'zap -p %d %d' % (start, op.length)
            elif kind == 'flush':
                op.zone = None
                op.cmd = 'flush'
            elif kind == 'reset':
                op.cmd = 'zrs %d %d' % (start, z.length)
            elif kind == 'finish':
                op.cmd = 'zf %d %d' % (start, z.length)
            elif kind == 'close':
                op.cmd = 'zc %d %d' % (start, z.length)
            elif kind == 'zsc':
                op.prev_cond = conds[z.idx]
                w = {'normal': [0, 6, 4], 'read-only': [6, 1.5, 2.5],
                     'offline': [7, 2, 1]}[op.prev_cond]
                op.cond = rng.choices(['normal', 'read-only', 'offline'],
                                      w)[0]
                op.cmd = 'zsc %d %s' % (start, op.cond)
            else:
                cz = rng.choice(self.conv)
                op.zone = cz
                op.slot = (cz.idx, rng.randrange(cz.length // SLOT))
                op.length = SLOT
                op.pat = next_pat()
                op.cmd = 'write -P %d %d %d' % (
                    op.pat, self.img.start(cz) + op.slot[1] * SLOT, SLOT)
            op.log_start = logpos[1]
            out = q.cmd(op.cmd)
            logpos = dmlog.count_entries(self.logp, logpos)
            op.log_end = logpos[1]
            if kind == 'flush':
                op.ok = 'failed' not in out
                op.snap = ({k: (v, runs_len(v)) for k, v in runs.items()},
                           dict(slots), dict(conds))
            elif kind == 'cwrite':
                op.ok = 'wrote ' in out
                if op.ok:
                    slots[op.slot] = op.pat
            else:
                if kind == 'write':
                    op.ok = 'wrote ' in out
                    if op.ok:
                        runs[z.idx] = runs_append(runs[z.idx], op.pat,
                                                  op.length)
                elif kind == 'badwrite':
                    op.ok = 'wrote ' in out
                    if op.ok:
                        self.model_errors.append(
                            'op %d %r: a write off the write pointer (%d) '
                            'succeeded' % (i, op.cmd, wp))
                elif kind == 'append':
                    op.ok = 'append sector' in out
                    if op.ok:
                        runs[z.idx] = runs_append(runs[z.idx], APPEND_PAT,
                                                  op.length)
                elif kind == 'zsc':
                    # Silent on success; the only refusal expected here:
                    # read-only -> normal would exceed max_active_zones
                    op.ok = not out.strip()
                    if op.ok:
                        if op.cond == 'offline' or \
                                op.prev_cond == 'offline':
                            runs[z.idx] = ()    # the data is gone
                        conds[z.idx] = op.cond
                    elif not (op.prev_cond == 'read-only' and
                              op.cond == 'normal' and self.geo['ma'] and
                              'max_active_zones (%d) zones are active'
                              % self.geo['ma'] in out):
                        self.model_errors.append(
                            'op %d %r: refused: %r' % (i, op.cmd, out))
                if conds[z.idx] != 'normal' and kind != 'zsc' and \
                        op.ok and kind != 'close':
                    self.model_errors.append(
                        'op %d %r: succeeded on a %s zone (output %r)'
                        % (i, op.cmd, conds[z.idx], out))
                rwp, cond = self.report(q, z)
                if cond in (READ_ONLY, OFFLINE) or \
                        conds[z.idx] != 'normal':
                    # No write pointer in the report: the condition must
                    # be the model's
                    if cond != ZCOND.get(conds[z.idx]):
                        self.model_errors.append(
                            'op %d %r: the model says %s, the zone report '
                            'condition %d (output %r)'
                            % (i, op.cmd, conds[z.idx], cond, out))
                    op.runs = runs[z.idx]
                    stats['ops'] += 1
                    stats['failed_ops'] += 0 if op.ok else 1
                    stats['zsc'] += kind == 'zsc' and op.ok
                    self.ops.append(op)
                    continue
                if kind == 'finish' and rwp == z.cap:
                    op.ok = True
                    runs[z.idx] = runs_append(runs[z.idx], 0, z.cap - wp)
                elif kind == 'reset' and rwp == 0:
                    op.ok = True
                    runs[z.idx] = ()
                elif kind == 'close':
                    op.ok = 'failed' not in out
                if runs_len(runs[z.idx]) != rwp:
                    self.model_errors.append(
                        'op %d %r: the model says write pointer %d, the zone '
                        'report %d (output %r)' % (i, op.cmd,
                                                   runs_len(runs[z.idx]),
                                                   rwp, out))
                    cur = runs[z.idx]
                    runs[z.idx] = (runs_append((), 0, rwp) if rwp > len(cur)
                                   else cur)
                op.runs = runs[z.idx]
            stats['ops'] += 1
            stats['failed_ops'] += 0 if op.ok else 1
            stats['zsc'] += kind == 'zsc' and op.ok
            self.ops.append(op)
        rc, rest = q.quit()
        # 1: some command failed (the refused ones)
        if rc not in (0, 1) or rest.strip():
            raise RuntimeError('qemu-io exited with %d: %s' % (rc, rest))
        with open(os.path.join(self.path + '.ops'), 'w') as f:
            for op in self.ops:
                f.write('%d %s -> %s log [%d, %d)\n' % (
                    op.idx, op.cmd, 'ok' if op.ok else 'failed',
                    op.log_start, op.log_end))

    def batch(self, q, rng, hot, runs, next_pat, stats):
        """Writes in flight together (aio_write) to one or two zones, at
        successive offsets from the write pointer, a guest flush while some
        are in flight (half of the time), then aio_flush (drain).  The log
        entries of these commands interleave: they all get the range of the
        whole batch, so that the flush gives its guarantee only once the
        batch is over, and then only for what was written before the batch;
        what it persisted beyond that must be data of the batch."""
        # Zones that accept writes
        hot = [z for z in hot if self.conds[z.idx] == 'normal']
        if not hot:
            return
        zones = rng.sample(hot, min(len(hot), rng.choice([1, 2])))
        log_start = dmlog.count_entries(self.logp)[1]
        pre = {z.idx: runs[z.idx] for z in zones}
        plan = []
        for z in zones:
            wp = runs_len(runs[z.idx])
            for _ in range(rng.randint(1, 4)):
                ln = min(rng.choice([4, 16, 64]) << 10, z.cap - wp)
                if ln <= 0:
                    break
                plan.append((z, wp, ln, next_pat()))
                wp += ln
        if not plan:
            return
        rng.shuffle(plan)
        plan.sort(key=lambda w: w[1])    # a zone's writes in offset order
        mid = rng.randrange(1, len(plan) + 1) if rng.random() < 0.5 else None
        out = ''
        ops = []
        for n, (z, off, ln, pat) in enumerate(plan):
            if n == mid:
                out += q.cmd('flush')
                ops.append(Op(len(self.ops) + len(ops), 'flush', None,
                              cmd='flush'))
            op = Op(len(self.ops) + len(ops), 'write', z, ln, pat,
                    'aio_write -P %d %d %d' % (pat, self.img.start(z) + off,
                                               ln))
            op.off = off
            out += q.cmd(op.cmd)
            ops.append(op)
        out += q.cmd('aio_flush')
        done = set(int(x) for x in re.findall(r'wrote \d+/\d+ bytes at '
                                              r'offset (\d+)', out))
        for op in ops:
            if op.kind == 'write':
                op.ok = self.img.start(op.zone) + op.off in done
        # A zone's writes succeed up to the first that fails
        for z in zones:
            zops = [op for op in ops if op.zone is z]
            oks = [op.ok for op in zops]
            if oks != sorted(oks, reverse=True):
                self.model_errors.append(
                    'batch %s: a write succeeded after an earlier write to '
                    'the same zone failed (output %r)'
                    % ([op.cmd for op in ops], out))
            for op in zops:
                if op.ok:
                    runs[z.idx] = runs_append(runs[z.idx], op.pat, op.length)
                op.runs = runs[z.idx]
        log_end = dmlog.count_entries(self.logp)[1]
        for op in ops:
            op.log_start, op.log_end = log_start, log_end
            if op.kind == 'flush':
                op.ok = True
                op.snap = ({k: (v, runs_len(pre.get(k, v)))
                            for k, v in runs.items()}, dict(self.slots),
                           dict(self.conds))
        self.ops += ops
        for z in zones:
            rwp, cond = self.report(q, z)
            if rwp != runs_len(runs[z.idx]):
                self.model_errors.append(
                    'batch %s: the model says write pointer %d in zone %d, '
                    'the zone report %d (output %r)'
                    % ([op.cmd for op in ops], runs_len(runs[z.idx]), z.idx,
                       rwp, out))
        stats['ops'] += len(ops)
        stats['failed_ops'] += sum(not op.ok for op in ops)
        stats['batches'] += 1

    def zone_table(self):
        """(offset, length) of the write pointer table in the image file."""
        buf = self.base_bytes
        hdr_len = int.from_bytes(buf[100:104], 'big')
        pos = hdr_len
        while pos + 8 <= len(buf):
            typ = int.from_bytes(buf[pos:pos + 4], 'big')
            ln = int.from_bytes(buf[pos + 4:pos + 8], 'big')
            if typ == 0:
                break
            if typ == 0x007a6264:
                d = buf[pos + 8:pos + 8 + ln]
                nr = int.from_bytes(d[4:8], 'big')
                return int.from_bytes(d[40:48], 'big'), nr * 8
            pos += 8 + (ln + 7) // 8 * 8
        raise RuntimeError('no Zoned header extension in %s' % self.base)

    def check_full_replay(self):
        with open(self.path, 'rb') as f:
            real = f.read()
        img = self.durable[self.bounds[-1]]
        n = max(len(real), len(img))
        if real.ljust(n, b'\0') != img.ljust(n, b'\0'):
            first = next(i for i in range(n) if
                         (real[i:i + 1] or b'\0') != (img[i:i + 1] or b'\0'))
            raise RuntimeError(
                'replaying the whole log of %s does not give the final image '
                '(first difference at %#x): the log or the replayer is wrong'
                % (self.path, first))

    # ---- expectations at a crash point ----

    def expectations(self, p):
        """For a crash point p: the last guest flush completed before it and,
        per sequential zone, the candidate contents with their minimum write
        pointers; per conventional slot, the allowed patterns."""
        gflush = None
        for op in self.ops:
            if op.log_start > p:
                break
            if op.kind == 'flush' and op.ok and op.log_end <= p:
                gflush = op
        if gflush:
            runs, slots, conds = gflush.snap
        else:
            runs, slots = {z.idx: ((), 0) for z in self.seq}, {}
            conds = {z.idx: 'normal' for z in self.seq}
        # Candidates: (content, minimum write pointer, what, condition)
        cands = {z.idx: [runs[z.idx] + ('at flush', conds[z.idx])]
                 for z in self.seq}
        allowed = {}
        for op in self.ops[gflush.idx + 1 if gflush else 0:]:
            if op.log_start > p:
                break
            if not op.ok:
                continue
            if op.kind == 'cwrite':
                allowed.setdefault(op.slot, set()).add(op.pat)
            elif op.runs is not None and op.kind != 'close':
                c = cands[op.zone.idx]
                tag = 'after op %d (%s)' % (op.idx, op.cmd)
                if op.kind == 'reset' and op.log_end <= p:
                    # An acknowledged reset has been flushed
                    c[:] = [((), 0, tag, 'normal')]
                elif op.kind == 'reset':
                    c.append(((), 0, tag, 'normal'))
                elif op.kind == 'zsc':
                    # The condition is stored and flushed before zsc
                    # returns; a zone turning read-only first makes the
                    # data below its write pointer durable, so does one
                    # leaving read-only (it had been made durable)
                    keep = 0 if op.cond == 'offline' or \
                        op.prev_cond == 'offline' else runs_len(op.runs)
                    if op.log_end <= p:
                        c[:] = [(op.runs, keep, tag, op.cond)]
                    else:
                        c.append((op.runs, keep if op.cond == 'read-only'
                                  else c[-1][1], tag, op.cond))
                else:
                    c.append((op.runs, c[-1][1], tag, 'normal'))
        for cz in self.conv:
            for s in range(cz.length // SLOT):
                allowed.setdefault((cz.idx, s), set()).add(
                    slots.get((cz.idx, s), 0))
        return gflush, cands, allowed


class Checker:
    def __init__(self, args, stats):
        self.args = args
        self.stats = stats
        self.cache = {}
        self.scratch = os.path.join(args.dir, 'state.qcow2')
        self.raw = os.path.join(args.dir, 'state.raw')

    def analyse(self, g, img):
        """Run QEMU on an image; the result is cached by image content."""
        key = (g.rnd, g.gi, hashlib.sha1(img).digest())
        if key in self.cache:
            self.stats['cached'] += 1
            return self.cache[key]
        self.stats['images'] += 1
        with open(self.scratch, 'wb') as f:
            f.write(img)
        a = self.args
        res = {}
        chk = subprocess.run(['nice', '-n', '10', a.qemu_img, 'check',
                              self.scratch], capture_output=True, text=True)
        res['check'] = (chk.returncode, chk.stdout + chk.stderr)
        cv = subprocess.run(['nice', '-n', '10', a.qemu_img, 'convert', '-O',
                             'raw', self.scratch, self.raw],
                            capture_output=True, text=True)
        zones = {}
        if cv.returncode == 0:
            with open(self.raw, 'rb') as f:
                disk = f.read()
            os.unlink(self.raw)
        else:
            disk = None
        res['convert'] = (cv.returncode, cv.stdout + cv.stderr)
        rep = subprocess.run(['nice', '-n', '10', a.qemu_io, '-f', 'qcow2',
                              '-c', 'zrp 0 %d' % g.img.nzones, self.scratch],
                             capture_output=True, text=True)
        reports = [crash.zone_report(l) for l in rep.stdout.splitlines()]
        reports = [r for r in reports if r]
        res['open'] = (rep.returncode, rep.stdout + rep.stderr)
        res['reports'] = reports
        if disk is not None and len(reports) == g.img.nzones:
            for z, (_, wp_abs, cond) in zip(g.zones, reports):
                s = g.img.start(z)
                if z.idx < g.nconv:
                    secs = []
                    for off in range(s, s + z.length // SLOT * SLOT, SECTOR):
                        sec = disk[off:off + SECTOR]
                        secs.append(sec[0] if sec == UNIFORM[sec[0]] else -1)
                    zones[z.idx] = ('conv', cond, tuple(secs))
                    continue
                # bits 58-59 of the entry; the report has no write pointer
                # for a read-only or offline zone: bits 0-55 give it
                tbl = g.table[0] + 8 * z.idx
                entry = int.from_bytes(img[tbl:tbl + 8], 'big')
                if cond in (READ_ONLY, OFFLINE):
                    wp = entry & WP_MASK
                else:
                    wp = crash.rel_wp(g.img, z, wp_abs, cond)
                below = disk[s:s + max(0, min(wp, z.cap))]
                beyond = disk[s + max(0, wp):s + z.length]
                zones[z.idx] = ('seq', cond, wp,
                                hashlib.sha1(below).digest(),
                                beyond.count(0) == len(beyond),
                                entry >> 58 & 3)
        res['zones'] = zones
        self.cache[key] = res
        return res

    def check(self, g, img, p):
        """Problems of image img at crash point p, as strings."""
        res = self.analyse(g, img)
        probs = []
        rc, out = res['check']
        if rc not in (0, 3):
            probs.append('qemu-img check exits with %d:\n%s' % (rc, out))
        rc, out = res['open']
        if rc != 0 or len(res['reports']) != g.img.nzones:
            probs.append('the image does not open or report its zones '
                         '(exit %d):\n%s' % (rc, out))
            return probs
        if res['convert'][0] != 0:
            probs.append('qemu-img convert fails:\n%s' % res['convert'][1])
            return probs
        gflush, cands, allowed = g.expectations(p)
        for z in g.zones:
            info = res['zones'][z.idx]
            if info[0] == 'conv':
                secs = info[2]
                for s in range(z.length // SLOT):
                    ok = allowed[(z.idx, s)]
                    got = secs[s * (SLOT // SECTOR):(s + 1) * (SLOT // SECTOR)]
                    bad = [v for v in got if v not in ok]
                    if bad:
                        probs.append(
                            'conventional zone %d slot %d (offset %#x): '
                            'sectors hold %s, allowed patterns %s'
                            % (z.idx, s, g.img.start(z) + s * SLOT,
                               sorted(set(bad)), sorted(ok)))
                continue
            _, cond, wp, digest, beyond_zero, ecnd = info
            zc = {READ_ONLY: 'read-only', OFFLINE: 'offline'}.get(cond,
                                                                 'normal')
            if ecnd != ENTRY_COND[zc]:
                probs.append('zone %d: zone report condition %d, entry '
                             'condition bits %d' % (z.idx, cond, ecnd))
            if wp < 0 or wp > z.cap or (zc == 'offline' and wp):
                probs.append('zone %d: write pointer %d outside the zone '
                             '(capacity %d)' % (z.idx, wp, z.cap))
                continue
            want = EMPTY if wp == 0 else FULL if wp == z.cap else CLOSED
            if zc == 'normal' and cond != want:
                probs.append('zone %d: condition %d with write pointer %d '
                             '(expected %d)' % (z.idx, cond, wp, want))
            if not beyond_zero:
                probs.append('zone %d: reads beyond the write pointer %d '
                             'are not zeroes' % (z.idx, wp))
            ok = False
            for runs, min_wp, _, ccond in cands[z.idx]:
                if ccond != zc:
                    continue
                if zc == 'offline' or (
                        min_wp <= wp <= runs_len(runs) and
                        hashlib.sha1(runs_bytes(runs, wp)).digest() ==
                        digest):
                    ok = True
                    break
            if not ok:
                flushed = cands[z.idx][0]
                probs.append(
                    'zone %d: %s, write pointer %d and the data below it '
                    'match no state the zone had since %s (candidates: %s)%s'
                    % (z.idx, zc, wp,
                       'guest flush op %d' % gflush.idx if gflush
                       else 'the start',
                       ', '.join('%s %d bytes %s, wp >= %d'
                                 % (c, runs_len(r), t, m)
                                 for r, m, t, c in cands[z.idx]),
                       '; flushed write pointer %d lost' % flushed[1]
                       if wp < flushed[1] and len(cands[z.idx]) == 1
                       else ''))
        return probs

    def details(self, g, path, probs):
        """First differing byte per zone, from a kept image."""
        raw = path + '.raw'
        if subprocess.run([self.args.qemu_img, 'convert', '-O', 'raw', path,
                           raw], capture_output=True).returncode:
            return
        with open(raw, 'rb') as f:
            disk = f.read()
        os.unlink(raw)
        res = self.analyse(g, open(path, 'rb').read())
        for z, (_, wp_abs, cond) in zip(g.zones, res['reports']):
            if z.idx < g.nconv or not any('zone %d:' % z.idx in p
                                          for p in probs):
                continue
            wp = res['zones'][z.idx][2] if z.idx in res['zones'] else \
                crash.rel_wp(g.img, z, wp_abs, cond)
            below = disk[g.img.start(z):g.img.start(z) + wp]
            # Runs of the data read back, to compare with the workload
            runs = ()
            for off in range(0, len(below), SECTOR):
                sec = below[off:off + SECTOR]
                runs = runs_append(runs, sec[0] if sec == UNIFORM[sec[0]]
                                   else -1, len(sec))
            print('    zone %d reads back (pattern, bytes): %s'
                  % (z.idx, list(runs)[:12]))


def describe(g, b, p, applied, torn):
    """The entries applied beyond the durable prefix, as ranges."""
    parts = []
    for i in applied:
        if parts and parts[-1][1] == i - 1:
            parts[-1][1] = i
        else:
            parts.append([i, i])
    s = ','.join('%d' % a if a == c else '%d-%d' % (a, c) for a, c in parts)
    if p == b and not applied:
        return ('%s; crash point %d' % (
            'entries 0-%d (through the FLUSH entry %d)' % (b - 1, b - 1)
            if b else 'the base image', p))
    return ('%s, then of entries %d-%d: [%s]%s; crash point %d' % (
                'entries 0-%d (through the FLUSH entry %d)' % (b - 1, b - 1)
                if b else 'the base image', b, p - 1, s,
                '; torn: ' + ', '.join('#%d sectors %s' % (i, sorted(t))
                                       for i, t in torn.items())
                if torn else '', p))


def build(g, b, apply_idx, torn):
    img = bytearray(g.durable[b])
    for i in apply_idx:
        dmlog.apply(img, g.entries[i], torn.get(i))
    return bytes(img)


def random_state(g, rng, kind, no_tear):
    """(b, p, applied, torn) for a random window of g."""
    wins = [(g.bounds[k], g.bounds[k + 1]) for k in range(len(g.bounds) - 1)]
    wins = [(b, e - 1 if g.entries[e - 1].is_flush else e) for b, e in wins]
    wins = [(b, e) for b, e in wins if e > b]
    if not wins:
        return None
    # Windows with more writes have more states
    b, e = rng.choices(wins, [e - b for b, e in wins])[0]
    p = rng.randint(b + 1, e)
    cands = [i for i in range(b, p) if g.entries[i].is_write or
             g.entries[i].is_discard]
    torn = {}
    if kind == 'prefix':
        return b, p, cands, torn
    q = rng.choice([0.2, 0.5, 0.8])
    applied = [i for i in cands if rng.random() < q or
               g.entries[i].flags & dmlog.FUA]
    if kind == 'torn' and not no_tear:
        for i in applied:
            e = g.entries[i]
            if e.is_write and e.length > SECTOR and rng.random() < 0.5:
                n = e.length // SECTOR
                torn[i] = set(rng.sample(range(n), rng.randrange(1, n)))
    return b, p, applied, torn


def self_test_states(g):
    """Broken replays, for each guest flush that wrote the write pointer
    table with no reset since the previous guest flush:
      'reorder': the durable state of the previous guest flush plus only that
        table write: the data and metadata written in between are dropped,
        the table write is moved before them and before the flushes;
      'lost': the state before the flush, checked as if it had completed
        (a FLUSH that did not make anything durable);
    and for each zsc that changed a zone's condition:
      'zsc': everything written before it, checked as if it had completed
        (an acknowledged condition that did not reach the image).
    Yields (kind, b, p, applied, op, prev_idx)."""
    tbl_off, tbl_len = g.table
    prev = 0
    prev_idx = -1
    reset_since = False
    for op in g.ops:
        # zsc, like a reset, stores and flushes the table itself
        if op.kind == 'reset' or (op.kind == 'zsc' and op.ok):
            reset_since = True
        # (unless a later command on the zone starts at the same log entry:
        # a crash there may have seen it issued, and it may undo the change)
        if op.kind == 'zsc' and op.ok and op.cond != op.prev_cond and \
                not any(o.zone is op.zone and o.ok
                        for o in g.ops[op.idx + 1:]
                        if o.log_start <= op.log_end):
            b = max(x for x in g.bounds if x <= op.log_start)
            yield 'zsc', b, op.log_end, [
                e.idx for e in g.entries[b:op.log_start]
                if e.is_write or e.is_discard], op, prev_idx
        if op.kind != 'flush':
            continue
        tw = [e.idx for e in g.entries[op.log_start:op.log_end]
              if e.is_write and e.offset < tbl_off + tbl_len and
              e.offset + e.length > tbl_off]
        if tw and not reset_since:
            b = max(x for x in g.bounds if x <= prev)
            yield 'reorder', b, tw[-1] + 1, tw, op, prev_idx
            b = max(x for x in g.bounds if x <= op.log_start)
            yield 'lost', b, op.log_end, [], op, prev_idx
        prev = op.log_end
        prev_idx = op.idx
        reset_since = False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--qemu-img', required=True)
    ap.add_argument('--qemu-io', required=True)
    ap.add_argument('--dir', required=True)
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--states', type=int, default=400,
                    help='states to replay per round: one per FLUSH entry, '
                    'then random ones up to this many (default 400)')
    ap.add_argument('--seconds', type=float, default=0,
                    help='start new rounds (new workloads) until this long '
                    '(soak); default: one round')
    ap.add_argument('--ops', type=int, default=120,
                    help='workload commands per geometry (default 120)')
    ap.add_argument('--no-tear', action='store_true',
                    help='never tear multi-sector writes')
    ap.add_argument('--self-test', action='store_true',
                    help='replay broken states (table write without the '
                    'data before it); succeed only if they are caught')
    ap.add_argument('--keep', action='store_true',
                    help='keep the images, base copies, logs and command '
                    'lists')
    ap.add_argument('--max-report', type=int, default=5,
                    help='violations printed in full (default 5)')
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    os.makedirs(args.dir, exist_ok=True)
    t0 = time.time()
    stats = dict(ops=0, failed_ops=0, log_entries=0, flush_entries=0,
                 guest_flushes=0, states=0, images=0, cached=0, batches=0,
                 zsc=0)
    checker = Checker(args, stats)
    violations = 0

    def verdict(g, b, p, applied, torn, what):
        nonlocal violations
        img = build(g, b, applied, torn)
        probs = checker.check(g, img, p)
        stats['states'] += 1
        if not probs:
            return False
        violations += 1
        g.keep = True
        if violations <= args.max_report:
            path = os.path.join(args.dir, 'violation%d.qcow2' % violations)
            with open(path, 'wb') as f:
                f.write(img)
            with open(path + '.json', 'w') as f:
                json.dump(dict(seed=seed, round=g.rnd, geometry=g.gi,
                               base=g.base, log=g.logp,
                               durable_through=b - 1, applied=applied,
                               crash_point=p,
                               torn={k: sorted(v) for k, v in torn.items()}),
                          f)
            print('VIOLATION (seed %d): round %d, geometry %d (%s), %s '
                  'state: %s' % (seed, g.rnd, g.gi, g.geo, what,
                                 describe(g, b, p, applied, torn)))
            for pr in probs:
                print('  ' + pr)
            checker.details(g, path, probs)
            print('  image kept: %s (base %s, log %s, commands %s.ops)'
                  % (path, g.base, g.logp, g.path))
        return True

    rnd = 0
    selftest = []
    while True:
        geos = [Geometry(rnd, i, geo, args, rng, stats)
                for i, geo in enumerate(crash.GEOMETRIES)]
        checker.cache.clear()
        for g in geos:
            g.keep = bool(g.model_errors)
            for m in g.model_errors:
                violations += 1
                print('VIOLATION (seed %d): round %d, geometry %d: %s'
                      % (seed, rnd, g.gi, m))
        if args.self_test:
            for g in geos:
                cn = {'reorder': [0, 0], 'lost': [0, 0], 'zsc': [0, 0]}
                for kind, b, p, applied, op, prev_idx in self_test_states(g):
                    img = build(g, b, applied, {})
                    probs = checker.check(g, img, p)
                    stats['states'] += 1
                    cn[kind][1] += 1
                    if probs:
                        cn[kind][0] += 1
                        if cn[kind][0] == 1:
                            print('self-test %s: round %d, geometry %d, %s '
                                  'op %d: %s, then %s, checked as '
                                  'at entry %d -> caught: %s' % (
                                      kind, rnd, g.gi,
                                      'zsc' if kind == 'zsc' else
                                      'guest flush', op.idx,
                                      'entries 0-%d' % (b - 1) if b
                                      else 'the base image',
                                      'only the table write %s' % applied
                                      if applied and kind == 'reorder' else
                                      'the entries before %r' % op.cmd
                                      if kind == 'zsc' else 'nothing', p,
                                      probs[0]))
                    elif kind == 'zsc':
                        print('self-test zsc: round %d, geometry %d, op %d '
                              '(%s): its condition lost, not caught'
                              % (rnd, g.gi, op.idx, op.cmd))
                    else:
                        # Flushes that only persist finishes (zeroes) or
                        # nothing new escape it
                        since = [o.cmd for o in g.ops[prev_idx + 1:op.idx]
                                 if o.ok and o.kind != 'close']
                        print('self-test %s: round %d, geometry %d, guest '
                              'flush op %d: not caught (commands since the '
                              'previous guest flush: %s)'
                              % (kind, rnd, g.gi, op.idx, since))
                selftest.append(cn)
        else:
            # Every FLUSH entry (and the start)
            start = stats['states']
            for g in geos:
                for b in g.bounds:
                    if b and not g.entries[b - 1].is_flush:
                        continue
                    verdict(g, b, b, [], {}, 'flush')
            # Then random states up to the budget of the round
            kinds = ['prefix', 'subset', 'subset', 'torn']
            while stats['states'] - start < args.states:
                g = rng.choice(geos)
                kind = rng.choice(kinds)
                st = random_state(g, rng, kind, args.no_tear)
                if st:
                    verdict(g, *st, kind)
        for g in geos:
            if not g.keep and not args.keep:
                for f in (g.path, g.base, g.logp, g.path + '.ops'):
                    os.unlink(f)
        rnd += 1
        if time.time() - t0 >= args.seconds:
            break
    if os.path.exists(checker.scratch):
        os.unlink(checker.scratch)
    if args.self_test:
        caught = sum(c for cn in selftest for c, _ in cn.values())
        total = sum(n for cn in selftest for _, n in cn.values())
        # Every lost zone condition is caught, and there were some
        nzsc = sum(cn['zsc'][1] for cn in selftest)
        ok = all(cn[k][0] > 0 for cn in selftest
                 for k in ('reorder', 'lost')) and \
            all(cn['zsc'][0] == cn['zsc'][1] for cn in selftest) and \
            nzsc > 0 and not violations
        print('powerloss self-test (seed %d): %d rounds x %d geometries, %d '
              'broken states replayed, %d caught (per geometry, reordered '
              'table write / lost flush / lost zone condition: %s), %.0f s: '
              '%s'
              % (seed, rnd, len(crash.GEOMETRIES), total, caught,
                 ', '.join('%d/%d %d/%d %d/%d'
                           % tuple(cn['reorder'] + cn['lost'] + cn['zsc'])
                           for cn in selftest),
                 time.time() - t0,
                 'the checks catch broken replays' if ok else
                 'FAILED: a broken replay went unnoticed'))
        return 0 if ok else 1
    print('powerloss (seed %d): %d rounds x %d geometries, %d guest flushes '
          '(%d FLUSH entries in %d log entries, %d commands, %d refused, '
          '%d batches in flight together, %d zone conditions set), '
          '%d states replayed (%d distinct images), %d violations, %.0f s'
          % (seed, rnd, len(crash.GEOMETRIES), stats['guest_flushes'],
             stats['flush_entries'], stats['log_entries'], stats['ops'],
             stats['failed_ops'], stats['batches'], stats['zsc'],
             stats['states'],
             stats['images'],
             violations, time.time() - t0))
    return 1 if violations else 0


if __name__ == '__main__':
    sys.exit(main())
