#!/usr/bin/env python3
"""Hostile zoned qcow2 images.

Mutates the Zoned header extension, the write pointer table and the
surrounding qcow2 header of valid zoned images, and runs qemu-img info,
qemu-img check and qemu-io (open, zone report, write, append, finish,
reset) on each mutant, normally built with AddressSanitizer and
UndefinedBehaviorSanitizer.  A run fails on a crash (signal), a hang
(timeout), any sanitizer report, or a refusal without a message.  Images
that found a problem are saved under --save (regression tests: --replay
runs them first).

Prints one summary line: images tried, opened, refused, crashes, hangs,
sanitizer reports, silent refusals.
"""

import argparse
import os
import random
import shutil
import struct
import subprocess
import sys
import time

ZONED_MAGIC = 0x007a6264
# Options, size, and qemu-io commands that leave zones closed and full
GEOMETRIES = [
    ('zone_model=host-managed,zone_size=1M,conventional_zones=1,'
     'max_open_zones=2,max_active_zones=3', 8 << 20,
     ['write 1M 4k', 'write 2M 64k', 'zf 3M 1M', 'write 0 4k']),
    ('zone_model=host-managed,zone_size=1M,zone_capacity=768k', 7 << 20,
     ['write 0 768k', 'write 1M 4k', 'zap -p 2M 8k']),
    ('zone_model=host-managed,zone_size=64k,cluster_size=64k', 2 << 20,
     ['write 0 4k', 'write 64k 64k', 'write 1M 512']),
    ('zone_model=host-managed,zone_size=2M,cluster_size=4k,'
     'conventional_zones=2', (15 << 20) + 4096,
     ['write 4M 4k', 'write 14M 4k', 'zf 6M 2M', 'write 1M 4k']),
]
SAN_MARKERS = ('ERROR: AddressSanitizer', 'runtime error:',
               'ERROR: LeakSanitizer', 'SUMMARY: UndefinedBehaviorSanitizer')


def find_ext(data):
    """Offset of the Zoned extension's data, or None."""
    if len(data) < 104:
        return None
    off = struct.unpack('>I', data[100:104])[0]
    end = min(len(data), 1 << 16)
    while off + 8 <= end:
        magic, length = struct.unpack('>II', data[off:off + 8])
        if magic == 0:
            return None
        if magic == ZONED_MAGIC:
            return off + 8
        off += 8 + ((length + 7) & ~7)
    return None


def mutate(data, rng):
    data = bytearray(data)
    ext = find_ext(data)
    table = None
    if ext is not None and ext + 48 <= len(data):
        table = struct.unpack('>Q', data[ext + 40:ext + 48])[0]
    for _ in range(rng.choice([1, 1, 1, 1, 1, 1, 2, 2, 2, 3])):
        r = rng.random()
        if r < 0.35 and ext is not None:
            # A field of the extension: interesting values
            pos, size = rng.choice([(0, 4), (4, 4), (8, 8), (16, 8), (24, 4),
                                    (28, 4), (32, 4), (36, 4), (40, 8)])
            val = rng.choice([0, 1, 2, 511, 512, 4096, 65536, 1 << 20,
                              (1 << 31), (1 << 32) - 1, (1 << 63),
                              (1 << 64) - 1, rng.getrandbits(size * 8)])
            val &= (1 << (size * 8)) - 1
            data[ext + pos:ext + pos + size] = val.to_bytes(size, 'big')
        elif r < 0.6 and table is not None and table < len(data) - 8:
            # A write pointer table entry
            i = rng.randrange(0, 16)
            pos = table + 8 * i
            if pos + 8 <= len(data):
                val = rng.choice([1 << 63, (1 << 63) | 4096, 1 << 56,
                                  4096, 4097, 1 << 20, (1 << 20) + 512,
                                  (1 << 56) - 1, rng.getrandbits(64)])
                data[pos:pos + 8] = val.to_bytes(8, 'big')
        elif r < 0.75:
            # The extension's length or magic
            if ext is not None:
                pos = ext - 4 if rng.random() < 0.7 else ext - 8
                data[pos:pos + 4] = rng.choice(
                    [0, 8, 47, 48, 56, 4096, 0xffffffff,
                     rng.getrandbits(32)]).to_bytes(4, 'big')
        elif r < 0.9:
            # A field of the qcow2 header
            pos, size = rng.choice([(20, 4), (24, 8), (36, 4), (40, 8),
                                    (48, 8), (56, 4), (60, 4), (72, 8),
                                    (80, 8), (88, 8), (96, 4), (100, 4)])
            val = rng.getrandbits(size * 8) if rng.random() < 0.5 else \
                rng.choice([0, 1, 0x20, 1 << 5, 0xffff])
            data[pos:pos + size] = val.to_bytes(size, 'big')
        else:
            # Random bytes in the first clusters
            for _ in range(rng.randrange(1, 8)):
                pos = rng.randrange(0, min(len(data), 1 << 18))
                data[pos] = rng.randrange(256)
    return bytes(data)


def run(cmd, timeout, env):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout, env=env, errors='replace')
        return p.returncode, p.stdout, p.stderr, False
    except subprocess.TimeoutExpired as e:
        return None, '', str(e), True


def check_one(path, args, env, stats, rng):
    """Run the tools on one image; returns a list of problems."""
    problems = []
    zone_cmds = ['zrp 0 16', 'write -P 7 1048576 4096', 'zap -p 1048576 4096',
                 'read 0 65536', 'zf 2097152 1048576', 'zrs 1048576 1048576',
                 'zrs 0 1G', 'flush']
    runs = [[args.qemu_io, '-f', 'qcow2'] +
            sum([['-c', c] for c in zone_cmds], []) + [path],
            [args.qemu_img, 'check', path]]
    if rng.random() < 0.4:
        runs.append([args.qemu_img, 'info', '--output=json', path])
    if rng.random() < 0.3:
        runs.append([args.qemu_img, 'check', '-r', 'all', path])
    for cmd in runs:
        rc, out, err, hung = run(cmd, args.timeout, env)
        name = os.path.basename(cmd[0]) + ' ' + cmd[1]
        if hung:
            stats['hangs'] += 1
            problems.append('%s: hang (> %d s)' % (name, args.timeout))
            continue
        if rc < 0:
            stats['crashes'] += 1
            problems.append('%s: killed by signal %d\n%s' % (name, -rc,
                                                              err[-2000:]))
            continue
        if any(m in err or m in out for m in SAN_MARKERS):
            stats['sanitizer'] += 1
            problems.append('%s: sanitizer report\n%s' % (name, err[-4000:]))
            continue
        if cmd[0] == args.qemu_io:
            if 'can\'t open device' in err or 'Could not open' in err:
                stats['refused'] += 1
                msg = err.strip().splitlines()[-1] if err.strip() else ''
                # A refusal must say why: "...: <reason>"
                if not msg or msg.endswith(':') or len(msg) < 20:
                    stats['silent'] += 1
                    problems.append('%s: refused without a reason: %r'
                                    % (name, msg))
            elif rc in (0, 1):
                stats['opened'] += 1
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--qemu-img', required=True)
    ap.add_argument('--qemu-io', required=True)
    ap.add_argument('--create-img', help='qemu-img used to create the '
                    'seed images (default: --qemu-img)')
    ap.add_argument('--dir', required=True)
    ap.add_argument('--images', type=int, default=500)
    ap.add_argument('--seconds', type=float, default=0)
    ap.add_argument('--seed', type=int)
    ap.add_argument('--timeout', type=int, default=20)
    ap.add_argument('--save', help='directory for images that found bugs')
    ap.add_argument('--replay', help='directory of saved images to run first')
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    os.makedirs(args.dir, exist_ok=True)
    env = dict(os.environ)
    env.setdefault('ASAN_OPTIONS', 'detect_leaks=0:abort_on_error=0')
    env.setdefault('UBSAN_OPTIONS', 'print_stacktrace=1')

    seeds = []
    for i, (opts, size, prep) in enumerate(GEOMETRIES):
        path = os.path.join(args.dir, 'seed%d.qcow2' % i)
        subprocess.run([args.create_img or args.qemu_img, 'create', '-q',
                        '-f', 'qcow2', '-o', opts, path, str(size)],
                       check=True, capture_output=True, env=env)
        # Some zones written, closed, full: a realistic table
        subprocess.run([args.qemu_io, '-f', 'qcow2'] +
                       sum([['-c', c] for c in prep], []) + [path],
                       check=True, capture_output=True, env=env)
        with open(path, 'rb') as f:
            seeds.append(f.read())
        os.unlink(path)

    stats = dict(images=0, opened=0, refused=0, crashes=0, hangs=0,
                 sanitizer=0, silent=0)
    failures = 0
    work = os.path.join(args.dir, 'mutant.qcow2')
    t0 = time.time()

    replay = []
    if args.replay and os.path.isdir(args.replay):
        replay = sorted(os.path.join(args.replay, f)
                        for f in os.listdir(args.replay)
                        if f.endswith('.qcow2'))
    i = 0
    while (i < len(replay) + args.images or
           time.time() - t0 < args.seconds):
        if i < len(replay):
            shutil.copyfile(replay[i], work)
            label = os.path.basename(replay[i])
        else:
            with open(work, 'wb') as f:
                f.write(mutate(rng.choice(seeds), rng))
            label = 'image %d' % i
        with open(work, 'rb') as f:
            data = f.read()
        stats['images'] += 1
        problems = check_one(work, args, env, stats, rng)
        if problems:
            failures += 1
            print('FAIL %s (seed %d):' % (label, seed))
            for p in problems:
                print('    ' + p.replace('\n', '\n    '))
            if args.save and i >= len(replay):
                os.makedirs(args.save, exist_ok=True)
                with open(os.path.join(args.save, 'fuzz-%d-%d.qcow2'
                                       % (seed, i)), 'wb') as f:
                    f.write(data)
        i += 1
    if os.path.exists(work):
        os.unlink(work)
    print('fuzz (seed %d): %d images tried (%d replayed), %d opened, '
          '%d refused, %d crashes, %d hangs, %d sanitizer reports, '
          '%d refusals without a reason, %d failing images, %.0f s'
          % (seed, stats['images'], len(replay), stats['opened'],
             stats['refused'], stats['crashes'], stats['hangs'],
             stats['sanitizer'], stats['silent'], failures,
             time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
