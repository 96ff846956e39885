#!/usr/bin/env python3
"""Crash test of zoned qcow2 images.

Runs mixed writes, zone appends, finishes, resets and flushes on zoned
images (several geometries) in a qemu-io process that is killed with SIGKILL
at a random moment, then checks the image:

  - it opens, and qemu-img check finds no error;
  - every write pointer is inside its zone (the open checks it, the zone
    report shows it);
  - the data below every write pointer reads back exactly as written: it is
    a prefix of what the zone held at some moment since the last
    acknowledged flush (or the last acknowledged reset);
  - every write acknowledged before the last acknowledged flush is there:
    the write pointer is at least where it was at that flush, unless a reset
    of the zone was issued after it.

qemu-io runs with unbuffered output and a zone report after every command,
so its output tells which commands completed and what they did.  Each
verified image state is the starting point of the next run on that image.

Prints one summary line: runs, kills, ops, flushes, violations.
"""

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import time

SECTOR = 512

GEOMETRIES = [
    # size, zone_size, capacity, conventional zones, max open, max active
    dict(size=16 << 20, zone=1 << 20, cap=1 << 20, conv=0, mo=0, ma=0),
    dict(size=(15 << 20) + (512 << 10), zone=1 << 20, cap=768 << 10, conv=2,
         mo=3, ma=4),
    dict(size=32 << 20, zone=4 << 20, cap=3 << 20, conv=1, mo=2, ma=0),
]

ZRP_RE = re.compile(r'^start: (0x[0-9a-f]+), len (0x[0-9a-f]+), '
                    r'cap (0x[0-9a-f]+), wptr (0x[0-9a-f]+), zcond:(\d+)')


class Zone:
    def __init__(self, idx, length, cap, data):
        self.idx = idx
        self.length = length
        self.cap = cap
        self.data = bytearray(data)     # content below the write pointer
        # Contents this zone may show after a crash: (bytes, min_wp) pairs,
        # min_wp being how much of it a flush has made durable.
        self.history = []
        self.min_wp = 0


class Image:
    def __init__(self, path, geo, args):
        self.path = path
        self.geo = geo
        self.args = args
        opts = ('zone_model=host-managed,zone_size=%d,zone_capacity=%d,'
                'conventional_zones=%d,max_open_zones=%d,max_active_zones=%d'
                % (geo['zone'], geo['cap'], geo['conv'], geo['mo'], geo['ma']))
        subprocess.run([args.qemu_img, 'create', '-q', '-f', 'qcow2', '-o',
                        opts, path, str(geo['size'])], check=True)
        self.nzones = -(-geo['size'] // geo['zone'])
        self.zones = []
        for i in range(self.nzones):
            length = min(geo['zone'], geo['size'] - i * geo['zone'])
            self.zones.append(Zone(i, length, min(geo['cap'], length), b''))

    def start(self, z):
        return z.idx * self.geo['zone']


def zone_report(line):
    m = ZRP_RE.match(line)
    if not m:
        return None
    start, _, _, wp, cond = m.groups()
    return int(start, 16) * SECTOR, int(wp, 16) * SECTOR, int(cond)


def rel_wp(img, z, wp_abs, cond):
    # A FULL zone reports its end; its write pointer is its capacity
    if cond == 14:
        return z.cap
    return wp_abs - img.start(z)


def make_ops(img, rng, n):
    """A random command sequence; zones are chosen among a few."""
    seq = [z for z in img.zones if z.idx >= img.geo['conv']]
    hot = rng.sample(seq, min(len(seq), max(2, img.geo['mo'] or 4)))
    ops = []
    for _ in range(n):
        z = rng.choice(hot if rng.random() < 0.85 else seq)
        r = rng.random()
        if r < 0.55:
            ops.append(('write', z, rng.choice([4, 8, 16, 64, 128]) << 10,
                        rng.randrange(1, 255)))
        elif r < 0.70:
            ops.append(('append', z, rng.choice([4, 32, 64]) << 10, 0xcd))
        elif r < 0.82:
            ops.append(('flush', None, 0, 0))
        elif r < 0.92:
            ops.append(('reset', z, 0, 0))
        else:
            ops.append(('finish', z, 0, 0))
    return ops


def run_once(img, rng, stats, verbose):
    """One qemu-io process, killed at a random moment; returns violations."""
    ops = make_ops(img, rng, rng.randrange(20, 120))
    # The write pointer each write must use follows the model; failures
    # (limits, a zone filled by an earlier op) are read from the output.
    wps = {z.idx: len(z.data) for z in img.zones}
    cmds = []
    planned = []
    for kind, z, length, pat in ops:
        if kind in ('write', 'append') and wps[z.idx] >= z.cap:
            # A full zone: start it over rather than writing to the next one
            kind = 'reset'
        if kind == 'write':
            off = img.start(z) + wps[z.idx]
            length = min(length, z.cap - wps[z.idx])
            cmds += ['-c', 'write -P %d %d %d' % (pat, off, length)]
            wps[z.idx] += length
        elif kind == 'append':
            cmds += ['-c', 'zap -p %d %d' % (img.start(z), length)]
            if wps[z.idx] + length <= z.cap:
                wps[z.idx] += length
        elif kind == 'flush':
            cmds += ['-c', 'flush']
        elif kind == 'reset':
            cmds += ['-c', 'zrs %d %d' % (img.start(z), z.length)]
            wps[z.idx] = 0
        else:
            cmds += ['-c', 'zf %d %d' % (img.start(z), z.length)]
            wps[z.idx] = z.cap
        # The zone report after each command says what it did
        cmds += ['-c', 'zrp %d 1' % (img.start(z) if z else 0)]
        planned.append((kind, z, length, pat))
    ops = planned
    out_path = img.path + '.out'
    with open(out_path, 'w') as out:
        proc = subprocess.Popen(
            ['stdbuf', '-o0', '-e0', img.args.qemu_io, '-f', 'qcow2',
             '-t', 'writeback',
             # resets free the zone's clusters, or leave them to the zone
             '-d', 'ignore' if stats['runs'] % 2 else 'unmap']
            + cmds + [img.path],
            stdout=out, stderr=subprocess.STDOUT)
        # Kill at a random moment of the run (ops take about 1-3 ms)
        time.sleep(rng.uniform(0.004, 0.004 + len(ops) * 0.0006))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    stats['runs'] += 1
    stats['kills'] += 1 if proc.returncode == -signal.SIGKILL else 0
    with open(out_path) as f:
        lines = [l.rstrip('\n') for l in f]
    os.unlink(out_path)

    # Replay the output: each completed op ends with its zone report line
    for z in img.zones:
        z.min_wp = len(z.data)
        z.history = [(bytes(z.data), z.min_wp)]
    li = 0
    done = 0
    for kind, z, length, pat in ops:
        # Find the report that ends this op
        end = None
        j = li
        while j < len(lines):
            if zone_report(lines[j]):
                end = j
                break
            j += 1
        if end is None:
            break                       # killed during this op
        body = lines[li:end]
        rep = zone_report(lines[end])
        li = end + 1
        done += 1
        stats['ops'] += 1
        if kind == 'flush':
            stats['flushes'] += 1
            # Everything up to here is durable: the zones may no longer go
            # back to anything older
            for zz in img.zones:
                zz.min_wp = len(zz.data)
                zz.history = [(bytes(zz.data), zz.min_wp)]
            continue
        wp = rel_wp(img, z, rep[1], rep[2])
        if kind == 'write' and any(l.startswith('wrote ') for l in body):
            z.data += bytes([pat]) * length
        elif kind == 'append' and any('append sector' in l for l in body):
            z.data += bytes([pat]) * length
        elif kind == 'finish' and wp == z.cap:
            z.data += bytes(z.cap - len(z.data))
        elif kind == 'reset' and wp == 0:
            z.data = bytearray()
            # An acknowledged reset is durable before it returns
            z.history = []
            z.min_wp = 0
        if len(z.data) != wp:
            print('VIOLATION: zone %d after %s: expected write pointer %d, '
                  'the zone report says %d' % (z.idx, kind, len(z.data), wp))
            stats['model_errors'] += 1
            z.data = z.data[:wp]
        z.history.append((bytes(z.data), z.min_wp))
    # The op in flight at the kill may or may not have happened
    if done < len(ops):
        kind, z, length, pat = ops[done]
        if z is not None and kind != 'flush':
            if kind in ('write', 'append'):
                cand = bytes(z.data) + bytes([pat]) * length
            elif kind == 'finish':
                cand = bytes(z.data) + bytes(max(0, z.cap - len(z.data)))
            else:
                cand = b''
            z.history.append((cand, z.min_wp if cand else 0))
    return verify(img, stats, verbose)


def verify(img, stats, verbose):
    violations = 0
    chk = subprocess.run([img.args.qemu_img, 'check', img.path],
                         capture_output=True, text=True)
    if chk.returncode == 3:
        stats['leaks'] += 1
    elif chk.returncode != 0:
        print('VIOLATION: qemu-img check:\n' + chk.stdout + chk.stderr)
        return 1
    rep = subprocess.run([img.args.qemu_io, '-f', 'qcow2', '-r', '-c',
                          'zrp 0 %d' % img.nzones, img.path],
                         capture_output=True, text=True)
    reports = [zone_report(l) for l in rep.stdout.splitlines()]
    reports = [r for r in reports if r]
    if rep.returncode != 0 or len(reports) != img.nzones:
        print('VIOLATION: image does not open or report:\n' + rep.stdout +
              rep.stderr)
        return 1
    raw = img.path + '.raw'
    subprocess.run([img.args.qemu_img, 'convert', '-O', 'raw', img.path, raw],
                   check=True)
    with open(raw, 'rb') as f:
        disk = f.read()
    os.unlink(raw)
    for z, (start, wp_abs, cond) in zip(img.zones, reports):
        if z.idx < img.geo['conv']:
            continue
        wp = rel_wp(img, z, wp_abs, cond)
        if wp < 0 or wp > z.cap:
            print('VIOLATION: zone %d write pointer %d outside the zone'
                  % (z.idx, wp))
            violations += 1
            continue
        got = disk[img.start(z):img.start(z) + wp]
        ok = False
        for content, min_wp in z.history:
            if wp >= min_wp and wp <= len(content) and content[:wp] == got:
                ok = True
                break
        if not ok:
            violations += 1
            print('VIOLATION: zone %d: write pointer %d and data match no '
                  'state since the last flush (candidates: %s)'
                  % (z.idx, wp, [(len(c), m) for c, m in z.history]))
        # What the image holds now is the start of the next run
        z.data = bytearray(got)
        z.history = []
    return violations


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--qemu-img', required=True)
    ap.add_argument('--qemu-io', required=True)
    ap.add_argument('--dir', required=True)
    ap.add_argument('--kills', type=int, default=50)
    ap.add_argument('--seconds', type=float, default=0,
                    help='run at least this long (soak)')
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    os.makedirs(args.dir, exist_ok=True)
    images = [Image(os.path.join(args.dir, 'crash%d.qcow2' % i), g, args)
              for i, g in enumerate(GEOMETRIES)]
    stats = dict(runs=0, kills=0, ops=0, flushes=0, leaks=0, model_errors=0)
    violations = 0
    t0 = time.time()
    i = 0
    while stats['kills'] < args.kills or time.time() - t0 < args.seconds:
        violations += run_once(images[i % len(images)], rng, stats,
                               args.verbose)
        i += 1
    violations += stats['model_errors']
    for img in images:
        os.unlink(img.path)
    print('crash test (seed %d): %d runs, %d kills, %d ops completed, '
          '%d flushes, %d images with leaked clusters, %d violations, %.0f s'
          % (seed, stats['runs'], stats['kills'], stats['ops'],
             stats['flushes'], stats['leaks'], violations, time.time() - t0))
    return 1 if violations else 0


if __name__ == '__main__':
    sys.exit(main())
