#!/usr/bin/env python3
"""Hostile zoned qcow2 images.

Mutates the Zoned header extension, the write pointer table (entries,
among them their zone condition bits 58-59: normal, READ ONLY, OFFLINE and
the invalid 3, alone or with other bits) and the surrounding qcow2 header
of valid zoned images, and runs qemu-img info, qemu-img check and qemu-io
(open, zone report, write, append, finish, reset, zone conditions set and
cleared with zsc, a read of a zone that may be offline) on each mutant,
normally built with AddressSanitizer and UndefinedBehaviorSanitizer.  A run
fails on a crash (signal), a hang (see below), any sanitizer report, or a
refusal without a message.  Images that found a problem are saved under
--save (regression tests: --replay runs them first, each through every
command), and each problem is printed with the command that reproduces it
on the saved image.

Hangs are judged by the child's CPU time, not by the wall clock, so that a
loaded machine (other builds, 2 cores) cannot turn a slow run into a
failure, while a real hang is still caught:

  - stuck: the process (all its threads) got no CPU time and did not wait
    for a CPU or the disk (no thread runnable or in a disk wait, no change
    in /proc/PID/task/*/schedstat) for --idle-limit seconds (default 60): it
    sleeps on something that will not come (a deadlock, a lost wakeup);
  - runaway: it used more CPU time than --cpu-factor (20) times what the
    same command takes on the unmutated seed images (measured at start), and
    at least --cpu-limit seconds of it (default 60).  Some hostile headers
    make upstream qcow2 legitimately slow: nb_snapshots = 2,476,453,442
    (or 2^32 - 1) costs qemu-img check -r all 2-6 s of CPU under ASan,
    mostly in the kernel (25 s of wall clock beside six busy loops on 2
    cores), far below the floor; an endless loop reaches it;
  - last resort, the wall clock: at --wall-limit seconds (default 300) a
    process that is still neither stuck nor runaway is killed.  It is a hang
    when it spent most of that time asleep (CPU time, run queue delay and
    the time seen in a disk wait below 10 %: a loop that wakes up now and
    then but never ends); else the machine was too busy to give it its CPU
    budget in that time, and the run is counted as "inconclusive" (printed,
    not a failure).

CPU time is utime + stime of /proc/PID/stat while the process runs and
os.wait4()'s resource usage when it has ended; waiting uses a pidfd, so a
command that ends is seen at once.

Prints one summary line: images tried, opened, refused, crashes, hangs,
sanitizer reports, silent refusals, inconclusive (too slow to judge) runs.
"""

import argparse
import glob
import os
import random
import select
import shlex
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


COND_SHIFT = 58                 # bits 58-59: 0 normal, 1 READ ONLY,
WP_MASK = (1 << 56) - 1         # 2 OFFLINE, 3 invalid


def mutate_cond(old, rng):
    """A write pointer table entry with its zone condition (bits 58-59) set
    to one of the four values, mostly on the entry as it is (valid READ ONLY
    and OFFLINE zones, OFFLINE with a write pointer), else combined with a
    write pointer of 0, open bits 56-57, the conventional bit or reserved
    bits 60-62."""
    cond = rng.choice([0, 1, 1, 1, 2, 2, 2, 3])
    e = old & ~(3 << COND_SHIFT)
    how = rng.random()
    if how < 0.5:
        if cond == 2 and rng.random() < 0.6:
            e &= ~WP_MASK                               # valid OFFLINE
    elif how < 0.7:
        e &= ~WP_MASK
    elif how < 0.8:
        e |= rng.randrange(1, 4) << 56                  # + open bits
    elif how < 0.87:
        e |= 1 << 63                                    # + conventional
    elif how < 0.93:
        e |= rng.randrange(1, 8) << 60                  # + reserved bits
    else:
        e = rng.getrandbits(56)                         # any write pointer
    return e | cond << COND_SHIFT


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
            if pos + 8 <= len(data) and rng.random() < 0.4:
                # The condition of an existing zone, mostly
                nr = struct.unpack('>I', data[ext + 4:ext + 8])[0]
                if 0 < nr < 16 and i >= nr and rng.random() < 0.8:
                    pos = table + 8 * rng.randrange(nr)
                data[pos:pos + 8] = mutate_cond(
                    int.from_bytes(data[pos:pos + 8], 'big'),
                    rng).to_bytes(8, 'big')
            elif pos + 8 <= len(data):
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


CLK_TCK = os.sysconf('SC_CLK_TCK')


def proc_sample(pid):
    """(CPU seconds, (run ns, run queue delay ns) of its threads, run queue
    delay seconds, a thread is runnable (R) or in a disk wait (D), thread
    states) of a running process, or None when it is gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            st = f.read()
        # Fields after the command name (which may hold spaces): state is
        # field 3, utime and stime fields 14 and 15.
        rest = st[st.rindex(')') + 2:].split()
        cpu = (int(rest[11]) + int(rest[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None
    wait = 0.0
    sched = []
    runnable = False
    states = []
    for task in glob.glob('/proc/%d/task/*' % pid):
        try:
            with open(task + '/stat') as f:
                t = f.read()
            state = t[t.rindex(')') + 2:].split()[0]
            wchan = ''
            try:
                with open(task + '/wchan') as f:
                    wchan = f.read().strip()
            except OSError:
                pass
            states.append(state + ('/' + wchan if wchan not in ('', '0')
                                   else ''))
            runnable = runnable or state in ('R', 'D')
            with open(task + '/schedstat') as f:
                run_ns, wait_ns = f.read().split()[:2]
            sched.append((int(run_ns), int(wait_ns)))
            wait += int(wait_ns) / 1e9
        except (OSError, ValueError, IndexError):
            continue
    return cpu, sorted(sched), wait, runnable, states


def read_text(path):
    with open(path, encoding='utf-8', errors='replace') as f:
        return f.read()


class Limits:
    def __init__(self, args):
        self.cpu_limit = args.cpu_limit
        self.cpu_factor = args.cpu_factor
        self.idle = args.idle_limit
        self.wall = args.wall_limit

    def cpu_budget(self, ref):
        return max(self.cpu_limit, self.cpu_factor * ref)


def run(cmd, env, limits, ref_cpu, tmpdir):
    """Runs cmd; returns (rc, out, err, cpu, wall, verdict, why): verdict
    None, or 'hang' (stuck or runaway) or 'slow' (wall clock limit,
    inconclusive), in which case the process (group) was killed and rc is
    None.  ref_cpu: CPU seconds the command takes on an unmutated image."""
    paths = [os.path.join(tmpdir, 'out'), os.path.join(tmpdir, 'err')]
    with open(paths[0], 'wb') as fo, open(paths[1], 'wb') as fe:
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe,
                             stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True)
    budget = limits.cpu_budget(ref_cpu)
    t0 = time.monotonic()
    try:
        pidfd = os.pidfd_open(p.pid)
    except (AttributeError, OSError):
        pidfd = None
    poller = None
    if pidfd is not None:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
    verdict = why = None
    last = None             # (cpu, sched) at the last sample
    active_at = t0          # last moment the process ran or wanted to
    sampled_at = t0 + 1
    in_disk_wait = 0.0      # time between samples that saw a thread in D
    delay = 0.001
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if poller is not None:
            poller.poll(500)
        else:
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        now = time.monotonic()
        if now - t0 < 1:
            continue        # nearly every command ends within a second
        sample = proc_sample(p.pid)
        if sample is None:
            continue        # ended meanwhile: reaped above
        cpu, sched, wait, runnable, states = sample
        if any(x.startswith('D') for x in states):
            in_disk_wait += now - sampled_at
        sampled_at = now
        # Active: it ran (or a thread wanted a CPU) since the last sample
        if last is None or cpu > last[0] or sched != last[1] or runnable:
            active_at = now
        last = (cpu, sched)
        if cpu > budget:
            verdict = 'hang'
            why = ('runaway: %.1f s of CPU time (the unmutated images need '
                   '%.2f s; limit %.0f s)' % (cpu, ref_cpu, budget))
        elif now - active_at >= limits.idle:
            verdict = 'hang'
            why = ('stuck: no CPU time, no wait for a CPU or the disk for '
                   '%.0f s (%.1f s of CPU in all; threads %s)'
                   % (now - active_at, cpu, ' '.join(states)))
        elif now - t0 >= limits.wall:
            what = ('%.0f s of wall clock, %.1f s of CPU, %.1f s waiting for '
                    'a CPU, about %.0f s in disk waits'
                    % (now - t0, cpu, wait, in_disk_wait))
            if cpu + wait + in_disk_wait < 0.1 * (now - t0):
                verdict = 'hang'
                why = 'mostly asleep: %s (threads %s)' % (what,
                                                          ' '.join(states))
            else:
                verdict = 'slow'
                why = ('inconclusive: still running after %s (machine too '
                       'busy)' % what)
        if verdict:
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
            pid, status, ru = os.wait4(p.pid, 0)
            break
    if pidfd is not None:
        os.close(pidfd)
    p.returncode = os.waitstatus_to_exitcode(status)
    cpu = ru.ru_utime + ru.ru_stime
    wall = time.monotonic() - t0
    out, err = (read_text(x) for x in paths)
    if verdict:
        return None, out, err, cpu, wall, verdict, why
    return p.returncode, out, err, cpu, wall, None, None


# zsc: conditions changed on hostile images too (zone starts of every
# geometry; refusals are fine), then the read of a zone that may be offline
ZONE_CMDS = ['zrp 0 16', 'write -P 7 1048576 4096', 'zap -p 1048576 4096',
             'read 0 65536', 'zf 2097152 1048576', 'zrs 1048576 1048576',
             'zsc 4194304 read-only', 'zsc 6291456 offline',
             'read 6291456 4096', 'zsc 6291456 normal', 'zsc 4194304 normal',
             'zrs 0 1G', 'flush']


def commands(args, path):
    """kind -> command line of every command the fuzzer runs on an image"""
    return {
        'qemu-io': [args.qemu_io, '-f', 'qcow2'] +
        sum([['-c', c] for c in ZONE_CMDS], []) + [path],
        'check': [args.qemu_img, 'check', path],
        'info': [args.qemu_img, 'info', '--output=json', path],
        'check -r all': [args.qemu_img, 'check', '-r', 'all', path],
    }


def reference_cpu(args, env, seeds, limits, tmpdir):
    """kind -> the most CPU time a command takes on the unmutated seeds"""
    ref = {}
    path = os.path.join(tmpdir, 'ref.qcow2')
    for data in seeds:
        for kind, cmd in commands(args, path).items():
            with open(path, 'wb') as f:
                f.write(data)
            # No hang judgement yet: the budget is what is being measured
            rc, out, err, cpu, wall, verdict, why = run(cmd, env, limits,
                                                       1e9, tmpdir)
            ref[kind] = max(ref.get(kind, 0.0), cpu)
    os.unlink(path)
    return ref


def check_one(path, args, env, stats, rng, limits, ref, tmpdir, every):
    """Run the tools on one image; returns a list of (problem, command)."""
    problems = []
    cmds = commands(args, path)
    kinds = ['qemu-io', 'check']
    r_info, r_repair = rng.random(), rng.random()   # drawn in any case
    if every or r_info < 0.4:
        kinds.append('info')
    if every or r_repair < 0.3:
        kinds.append('check -r all')
    for kind in kinds:
        cmd = cmds[kind]
        rc, out, err, cpu, wall, verdict, why = run(cmd, env, limits,
                                                    ref[kind], tmpdir)
        name = os.path.basename(cmd[0])
        if kind != 'qemu-io':
            name += ' ' + kind
        if not verdict and wall > 10:
            print('NOTE %s: slow, not hung: %.1f s, %.1f s of CPU'
                  % (name, wall, cpu))
        if verdict == 'hang':
            stats['hangs'] += 1
            problems.append(('%s: hang: %s' % (name, why), cmd))
            continue
        if verdict == 'slow':
            stats['inconclusive'] += 1
            print('NOTE %s, %s' % (name, why))
            continue
        if rc < 0:
            stats['crashes'] += 1
            problems.append(('%s: killed by signal %d\n%s'
                             % (name, -rc, err[-2000:]), cmd))
            continue
        if any(m in err or m in out for m in SAN_MARKERS):
            stats['sanitizer'] += 1
            problems.append(('%s: sanitizer report\n%s' % (name, err[-4000:]),
                             cmd))
            continue
        if cmd[0] == args.qemu_io:
            if 'can\'t open device' in err or 'Could not open' in err:
                stats['refused'] += 1
                msg = err.strip().splitlines()[-1] if err.strip() else ''
                # A refusal must say why: "...: <reason>"
                if not msg or msg.endswith(':') or len(msg) < 20:
                    stats['silent'] += 1
                    problems.append(('%s: refused without a reason: %r'
                                     % (name, msg), cmd))
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
    ap.add_argument('--cpu-limit', type=float, default=60,
                    help='CPU seconds a command may always use (default 60)')
    ap.add_argument('--cpu-factor', type=float, default=20,
                    help='... or this many times what it uses on the '
                    'unmutated images, when more (default 20)')
    ap.add_argument('--idle-limit', type=float, default=60,
                    help='seconds without CPU time and without waiting for '
                    'a CPU that make a hang (default 60)')
    ap.add_argument('--wall-limit', type=float, default=300,
                    help='wall clock seconds after which a command is '
                    'killed: a hang if mostly asleep, else inconclusive '
                    '(default 300)')
    ap.add_argument('--save', help='directory for images that found bugs')
    ap.add_argument('--replay', help='directory of saved images to run first')
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    os.makedirs(args.dir, exist_ok=True)
    env = dict(os.environ)
    env.setdefault('ASAN_OPTIONS', 'detect_leaks=0:abort_on_error=0')
    env.setdefault('UBSAN_OPTIONS', 'print_stacktrace=1')
    limits = Limits(args)
    tmpdir = os.path.join(args.dir, 'run')
    os.makedirs(tmpdir, exist_ok=True)

    seeds = []
    for i, (opts, size, prep) in enumerate(GEOMETRIES):
        path = os.path.join(args.dir, 'seed%d.qcow2' % i)
        # Some zones written, closed, full: a realistic table
        for cmd in ([args.create_img or args.qemu_img, 'create', '-q',
                     '-f', 'qcow2', '-o', opts, path, str(size)],
                    [args.qemu_io, '-f', 'qcow2'] +
                    sum([['-c', c] for c in prep], []) + [path]):
            rc, out, err, cpu, wall, verdict, why = run(cmd, env, limits, 0,
                                                        tmpdir)
            if rc != 0:
                print('fuzz: making the seed images failed: %s: %s\n%s%s'
                      % (shlex.join(cmd), why or 'exit %s' % rc, out, err))
                return 1
        with open(path, 'rb') as f:
            seeds.append(f.read())
        os.unlink(path)
    ref = reference_cpu(args, env, seeds, limits, tmpdir)
    print('fuzz: CPU time on the unmutated images: %s; a hang: more CPU '
          'than %s s, or %.0f s without CPU time' % (
              ', '.join('%s %.2f s' % kv for kv in ref.items()),
              '/'.join('%.0f' % limits.cpu_budget(v) for v in ref.values()),
              limits.idle))

    stats = dict(images=0, opened=0, refused=0, crashes=0, hangs=0,
                 sanitizer=0, silent=0, inconclusive=0)
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
        problems = check_one(work, args, env, stats, rng, limits, ref,
                             tmpdir, i < len(replay))
        if problems:
            failures += 1
            print('FAIL %s (seed %d):' % (label, seed))
            saved = None
            if i < len(replay):
                saved = replay[i]
            elif args.save:
                os.makedirs(args.save, exist_ok=True)
                saved = os.path.join(args.save, 'fuzz-%d-%d.qcow2' % (seed, i))
                with open(saved, 'wb') as f:
                    f.write(data)
            for p, cmd in problems:
                print('    ' + p.replace('\n', '\n    '))
                if saved:
                    cmd = [saved if a == work else a for a in cmd]
                    print('    reproduce: %s' % shlex.join(cmd))
                else:
                    print('    (image not saved: use --save) %s'
                          % shlex.join(cmd))
        i += 1
    if os.path.exists(work):
        os.unlink(work)
    shutil.rmtree(tmpdir, ignore_errors=True)
    print('fuzz (seed %d): %d images tried (%d replayed), %d opened, '
          '%d refused, %d crashes, %d hangs, %d sanitizer reports, '
          '%d refusals without a reason, %d inconclusive (too slow to '
          'judge), %d failing images, %.0f s'
          % (seed, stats['images'], len(replay), stats['opened'],
             stats['refused'], stats['crashes'], stats['hangs'],
             stats['sanitizer'], stats['silent'], stats['inconclusive'],
             failures, time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
