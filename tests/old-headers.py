#!/usr/bin/env python3
"""Build block/file-posix.c as with Linux headers older than 5.9.

Linux 5.9 added the zone capacity (struct blk_zone.capacity) and the report
flags (struct blk_zone_report.flags, BLK_ZONE_REP_CAPACITY); QEMU's meson
sets HAVE_BLK_ZONE_REP_CAPACITY only when they exist.  This compiles
file-posix.c with the command meson uses, but with a copy of
<linux/blkzoned.h> that lacks them and a config-host.h without the macro,
so the series cannot use either field unguarded again.

Usage: old-headers.py BUILD_DIR; exit status 0 when it builds.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

obj = sys.argv[1]
with open(os.path.join(obj, 'compile_commands.json')) as f:
    entry = [c for c in json.load(f) if c['file'].endswith('block/file-posix.c')][0]

with tempfile.TemporaryDirectory() as tmp:
    os.makedirs(os.path.join(tmp, 'include', 'linux'))
    os.makedirs(os.path.join(tmp, 'config'))
    with open('/usr/include/linux/blkzoned.h') as f:
        hdr = f.read()
    hdr = re.sub(r'\n\s*__u64\s+capacity;[^\n]*', '\n\t__u64\t\t__old_reserved;', hdr)
    hdr = re.sub(r'\n\s*__u32\s+flags;[^\n]*', '\n\t__u32\t\t__old_reserved2;', hdr)
    hdr = hdr.replace('BLK_ZONE_REP_CAPACITY', 'BLK_ZONE_REP_CAPACITY_SINCE_5_9')
    with open(os.path.join(tmp, 'include', 'linux', 'blkzoned.h'), 'w') as f:
        f.write(hdr)
    with open(os.path.join(obj, 'config-host.h')) as f:
        cfg = f.read()
    cfg = re.sub(r'#define HAVE_BLK_ZONE_REP_CAPACITY\b[^\n]*', '', cfg)
    with open(os.path.join(tmp, 'config', 'config-host.h'), 'w') as f:
        f.write(cfg)
    cmd = entry['command']
    cmd = cmd.replace(' -iquote . ', ' -iquote %s/config -iquote . ' % tmp, 1)
    cmd = cmd.replace(' -isystem ', ' -isystem %s/include -isystem ' % tmp, 1)
    cmd = re.sub(r' -MD -MQ \S+ -MF \S+', ' ', cmd)
    cmd = cmd.replace(' -o ' + entry['output'], ' -o %s/file-posix.o' % tmp)
    r = subprocess.run(cmd, shell=True, cwd=entry['directory'],
                       capture_output=True, text=True)
    sys.stdout.write(r.stderr[-3000:])
    sys.exit(r.returncode)
