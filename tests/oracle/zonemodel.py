#!/usr/bin/env python3
"""Reference model of a host-managed zoned block device.

Written from the ZBC-2 / ZNS zone models and Linux's zoned block device
semantics (block/blk-zoned.c, drivers/block/null_blk/zoned.c, used for facts
only), independently of the zoned qcow2 code it is compared with.  The
README of this repo fixes the few choices the specifications leave open
(errno of the three zone rules, least recently written implicit close,
zeroes above the write pointer).

The model is a pure function of (state, operation): `apply()` returns every
outcome the specifications allow, each with the state it leads to.  Where
the specifications allow several behaviours the model returns all of them;
the caller keeps the states whose outcome matches what the device did (so a
later zone report or read can tell the branches apart).

Zone conditions (ZBC-2 4.4.3 / ZNS 2.1.1; numbers as QEMU's BlockZoneState,
the values of the ZBC zone condition field):
  NOT_WP (0, conventional), EMPTY (1), IMPLICIT OPEN (2), EXPLICIT OPEN (3),
  CLOSED (4), READ ONLY (13), FULL (14), OFFLINE (15).
Open zones = implicit + explicit open; active zones = open + closed
(ZNS "active resources").  READ ONLY and OFFLINE are neither.

READ ONLY and OFFLINE are set and cleared by the host (qemu-io zsc, QMP
x-blockdev-set-zone-condition; notes/zone-conditions-interface.md fixes the
rules, set_cond() below): a sequential zone becomes READ ONLY keeping its
write pointer (data below it stays readable, zeroes above) or OFFLINE
(write pointer 0, data gone); back to normal an OFFLINE zone is EMPTY, a
READ ONLY one EMPTY / FULL / CLOSED by its write pointer (refused when
CLOSED would exceed the active limit).  Write, write zeroes, zone append,
open, close, finish and reset of such a zone are refused, reads of an
OFFLINE zone too (the whole read when any byte is in one); a reset of all
zones skips them (ZBC RESET ALL, null_blk), a reset of a range holding one
changes nothing.  Their report write pointer is invalid (ZBC) and not
checked.  They survive a restart.

Refusals and their errno (qemu-io prints strerror()):

  refusal                                   errno         source
  ----------------------------------------  ------------  ------------------
  write not at the write pointer            EINVAL        README (zone rule)
  open limit (no implicitly open zone to    ETOOMANYREFS  README; Linux
    close)                                                BLK_STS_ZONE_OPEN_RESOURCE
  active limit                              EOVERFLOW     README; Linux
                                                          BLK_STS_ZONE_ACTIVE_RESOURCE
  write/append to a FULL zone               EIO           null_blk null_zone_write
                                                          (BLK_STS_IOERR)
  write/append not fitting before the zone  EIO           null_blk null_zone_write
    capacity (incl. crossing the zone end)                (wp + len > start + capacity)
  zone append to a conventional zone        EIO           null_blk null_zone_write
  zone append not at a zone start           EIO           blk-core.c blk_check_zone_append
  zone append longer than max append        EIO           blk_check_zone_append
  open/close/finish/reset of a              EIO           null_blk null_{open,close,
    conventional zone                                     finish,reset}_zone
  open of a FULL zone                       EIO or no-op  null_blk: EIO; ZBC-2: no error
  close of an EMPTY or FULL zone            EIO or no-op  null_blk: EIO; ZBC-2: no error
  zone management range: length 0, start    EINVAL        blk-zoned.c blkdev_zone_mgmt
    not a zone start, length not a zone                   ("Out of range" / alignment)
    multiple (unless it ends at the disk
    end), end beyond the disk
  read/write/append beyond the disk end     EIO           QEMU blk_check_byte_request;
                                                          Linux bio_check_eod
  write/append of a length or offset that   EINVAL        Linux logical block size
    is not a multiple of 512                              checks (direct I/O: EINVAL)
  write/append/open/close/finish/reset of   EROFS         README; Linux EIO: null_blk
    a READ ONLY zone                                      null_zone_write/null_zone_mgmt
  the same and reads of an OFFLINE zone     ENXIO         README; Linux EIO: null_blk
                                                          null_zone_write/null_zone_mgmt,
                                                          reads of OFFLINE zones
  reset of a range holding a READ ONLY or   EROFS/ENXIO   README (the first such zone
    OFFLINE zone: nothing changed                         decides)
  condition change (zsc): beyond the disk   (message)     README; refusals compared by
    end, not a zone start, conventional                   reason (cond-range, cond-align,
    zone, READ ONLY -> normal as CLOSED at                cond-conv, cond-active-limit
    the active limit                                      = EOVERFLOW)
Malformed requests are refused first (EINVAL: unaligned, a write crossing
the zone end, append not at a zone start or too long), then the condition,
then the write pointer rules (README).

Choices where the specifications allow several behaviours (all accepted):
  - explicit open at the open limit while an implicitly open zone exists:
    ETOOMANYREFS (this project's brief) or close the least recently written
    implicitly open zone and open (ZBC-2 "manage open zone resources",
    null_blk null_check_open);
  - finish of an EMPTY zone at the active limit: EOVERFLOW (ZNS; null_blk
    null_finish_zone checks zone resources) or success (the zone never
    becomes active);  finish of an EMPTY or CLOSED zone at the open limit:
    success, success after closing the LRU implicitly open zone, or
    ETOOMANYREFS when there is none (null_blk);
  - a write to a CLOSED zone at the open limit while the active limit is
    reached: close an implicitly open zone and go on, or ETOOMANYREFS
    (null_blk refuses then);
  - an EMPTY zone written when both limits are reached: EOVERFLOW or
    ETOOMANYREFS;
  - zone management over several zones: zones processed in order, stopping
    at the first failure or processing all of them (Linux chains one bio per
    zone, so all are processed and any error is returned);
  - a zone that was opened with its write pointer at the zone start comes
    back EMPTY or CLOSED after a restart;
  - zero-length write/append: success without any state change, EINVAL or
    EIO; zero-length read: success;
  - a write crossing from one conventional zone into another: success (Linux
    splits it) or EINVAL/EIO; a write from a conventional into a sequential
    zone: EINVAL or EIO, nothing written;
  - the write pointer of a FULL zone is reported as zone start + capacity or
    zone start + length (ZBC: invalid for FULL; null_blk: start + length);
    that of a conventional zone is not checked (ZBC: invalid);
  - a zone report starting at or beyond the disk end: no zones, EINVAL or
    EIO.
  - zero-length write, append or read in a READ ONLY or OFFLINE zone:
    as in any zone, or refused with the condition's errno;
  - a zone condition change over a range both beyond the disk end and not
    a zone start: either refusal; a reset of a range holding a
    conventional zone and a READ ONLY/OFFLINE zone: either refusal,
    nothing changed.
Strict choices (the README fixes them): at the open limit a write to an
EMPTY/CLOSED zone closes the *least recently written* implicitly open zone
(ZBC lets the device pick any); reads above the write pointer return zeroes
(ZNS; ZBC with URSWRZ); a restart turns open zones CLOSED; data and write
pointers survive a clean restart.
"""

import errno
import os

SECTOR = 512

NOT_WP, EMPTY, IOPEN, EOPEN, CLOSED, FULL = 0, 1, 2, 3, 4, 14
RDONLY, OFFLINE = 13, 15
COND_NAME = {NOT_WP: 'NOT_WP', EMPTY: 'EMPTY', IOPEN: 'IMP_OPEN',
             EOPEN: 'EXP_OPEN', CLOSED: 'CLOSED', FULL: 'FULL',
             RDONLY: 'READ_ONLY', OFFLINE: 'OFFLINE'}
TYPE_CONV, TYPE_SWR = 1, 2
# Conditions the host sets (zsc): names as qemu-io and QMP take them
SET_CONDS = ('normal', 'read-only', 'offline')

EIO, EINVAL = 'EIO', 'EINVAL'
ETOOMANYREFS, EOVERFLOW = 'ETOOMANYREFS', 'EOVERFLOW'
EROFS, ENXIO = 'EROFS', 'ENXIO'

# Refusal reasons (Refusal.reason) and the errno the model gives them:
REASONS = {
    'range': EIO,             # beyond the disk end
    'zero-length': EINVAL,    # zero-length write/append (success accepted too)
    'unaligned': EINVAL,      # offset/length not a multiple of 512
    'cross-conv': EINVAL,     # write over two conventional zones (ok too)
    'cross-into-seq': EINVAL,  # write from a conventional to a sequential zone
    'full': EIO,              # write/append to a FULL zone
    'not-wp': EINVAL,         # write not at the write pointer (README)
    'capacity': EIO,          # write/append does not fit before the capacity
    'open-limit': ETOOMANYREFS,    # README
    'active-limit': EOVERFLOW,     # README
    'append-conv': EIO,       # zone append to a conventional zone
    'append-not-start': EIO,  # zone append offset not a zone start
    'append-too-long': EIO,   # zone append longer than max_append_bytes
    'mgmt-conv': EIO,         # open/close/finish/reset of a conventional zone
    'mgmt-range': EINVAL,     # bad zone management range
    'open-full': EIO,         # explicit open of a FULL zone (no-op too)
    'close-not-open': EIO,    # close of an EMPTY/FULL zone (no-op too)
    'zone-rdonly': EROFS,     # write/append/mgmt of a READ ONLY zone (README)
    'zone-offline': ENXIO,    # that and reads of an OFFLINE zone (README)
    # zone condition changes (zsc); qemu-io prints a message, the fuzzer
    # maps it to the reason
    'cond-range': EINVAL,     # offset at or beyond the disk end
    'cond-align': EINVAL,     # offset not a zone start
    'cond-conv': EINVAL,      # conventional zone
    'cond-active-limit': EOVERFLOW,   # READ ONLY -> CLOSED at the limit
}

# Errno alternatives accepted besides the one the model names, for device
# choices that were reviewed and judged acceptable: reason -> set of errno
# names (empty: strict).  LENIENT: any of EIO/EINVAL for a refusal the model
# gives EIO or EINVAL (not for the README-fixed zone rules).
#
# Reviewed: QEMU's block layer reports every broken zone rule as EINVAL, not
# EIO as Linux does, because a device model must tell a guest's broken rule
# from an I/O error of the host: virtio-blk completes EINVAL with
# ZONE_UNALIGNED_WP / ZONE_INVALID_CMD and does not apply the werror policy,
# while EIO stops the VM under werror=stop.  A Linux guest sees EIO for both
# (virtio_blk maps ZONE_UNALIGNED_WP to BLK_STS_IOERR), which the guest
# oracle (tests/guest/oracle.sh, null_blk) checks.  Zone management past the
# end of the disk is refused by blk_check_byte_request() with EIO.
ACCEPTED_ALTERNATIVES = {
    'full': {EINVAL},
    'capacity': {EINVAL},
    'append-conv': {EINVAL},
    'append-not-start': {EINVAL},
    'append-too-long': {EINVAL},
    'mgmt-conv': {EINVAL},
    'open-full': {EINVAL},
    'close-not-open': {EINVAL},
    'mgmt-range': {EIO},
    'range': {EINVAL},
}
LENIENT = False
STRICT_REASONS = ('not-wp', 'open-limit', 'active-limit', 'zone-rdonly',
                  'zone-offline', 'cond-range', 'cond-align', 'cond-conv',
                  'cond-active-limit')


class Refusal(str):
    """An errno name (compares and hashes as the plain string) that knows
    why the model refuses."""
    def __new__(cls, name, reason):
        s = str.__new__(cls, name)
        s.reason = reason
        return s

    def __repr__(self):
        return '%s(%s)' % (str(self), self.reason)


def refuse(e, reason, st):
    """[(Refusal, st)] with the accepted alternatives."""
    out = [(Refusal(e, reason), st)]
    alts = set(ACCEPTED_ALTERNATIVES.get(reason, ()))
    if LENIENT and e in (EIO, EINVAL) and reason not in STRICT_REASONS:
        alts |= {EIO, EINVAL}
    for a in sorted(alts):
        if a != e:
            out.append((Refusal(a, reason + ' (accepted)'), st))
    return out

STRERROR = {}
for _name in dir(errno):
    if _name.startswith('E') and isinstance(getattr(errno, _name), int):
        STRERROR.setdefault(os.strerror(getattr(errno, _name)), _name)


def errno_name(message):
    """Errno name for a strerror() text, or the text itself."""
    name = STRERROR.get(message.strip(), message.strip())
    return {'EDEADLOCK': 'EDEADLK', 'EWOULDBLOCK': 'EAGAIN',
            'ENOTSUP': 'EOPNOTSUPP'}.get(name, name)


class Geometry:
    def __init__(self, size, zone_size, capacity=None, conventional=0,
                 max_open=0, max_active=0, max_append=None,
                 cluster_size=65536, extended_l2=False):
        self.size = size
        self.zone_size = zone_size
        self.capacity = zone_size if capacity is None else capacity
        self.conventional = conventional
        self.max_open = max_open
        self.max_active = max_active
        self.max_append = (min(1 << 20, self.capacity) if max_append is None
                           else max_append)
        self.max_append_set = max_append is not None
        self.cluster_size = cluster_size
        self.extended_l2 = extended_l2
        self.nzones = -(-size // zone_size)
        self.zstart = [i * zone_size for i in range(self.nzones)]
        self.zlen = [min(zone_size, size - s) for s in self.zstart]
        self.zcap = [self.zlen[i] if i < conventional
                     else min(self.capacity, self.zlen[i])
                     for i in range(self.nzones)]

    def is_conv(self, z):
        return z < self.conventional

    def zone_of(self, off):
        return off // self.zone_size

    def options(self):
        o = ['zone_model=host-managed', 'zone_size=%d' % self.zone_size,
             'zone_capacity=%d' % self.capacity,
             'conventional_zones=%d' % self.conventional,
             'max_open_zones=%d' % self.max_open,
             'max_active_zones=%d' % self.max_active,
             'cluster_size=%d' % self.cluster_size]
        if self.max_append_set:
            o.append('max_append_bytes=%d' % self.max_append)
        if self.extended_l2:
            o.append('extended_l2=on')
        return ','.join(o)

    def key(self):
        return (self.size, self.zone_size, self.capacity, self.conventional,
                self.max_open, self.max_active, self.max_append,
                self.cluster_size, self.extended_l2)

    def describe(self):
        return ('size=%d %s' % (self.size, self.options()))

    @staticmethod
    def parse(text):
        """Inverse of describe()."""
        kv = {}
        for part in text.replace(',', ' ').split():
            k, _, v = part.partition('=')
            kv[k] = v
        num = lambda k, d=0: int(kv[k]) if k in kv else d
        return Geometry(num('size'), num('zone_size'),
                        num('zone_capacity', None) if 'zone_capacity' in kv
                        else None,
                        num('conventional_zones'), num('max_open_zones'),
                        num('max_active_zones'),
                        num('max_append_bytes') if 'max_append_bytes' in kv
                        else None,
                        num('cluster_size', 65536),
                        kv.get('extended_l2', 'off') == 'on')


class Zone:
    """State of one sequential zone: condition, write pointer (relative),
    data below the write pointer as runs of (length, pattern), and the
    logical time of its last write or implicit open (for the LRU)."""
    __slots__ = ('cond', 'wp', 'runs', 'touch')

    def __init__(self, cond=EMPTY, wp=0, runs=(), touch=0):
        self.cond = cond
        self.wp = wp
        self.runs = runs
        self.touch = touch

    def copy(self):
        return Zone(self.cond, self.wp, self.runs, self.touch)

    def key(self):
        return (self.cond, self.wp, self.runs,
                self.touch if self.cond == IOPEN else 0)


class State:
    """Device state: sequential zones (None for conventional ones), data of
    the conventional area as sorted (start, end, pattern) extents, a clock
    for the LRU."""

    def __init__(self, geo):
        self.geo = geo
        self.zones = [None if geo.is_conv(i) else Zone()
                      for i in range(geo.nzones)]
        self.conv = ()
        self.clock = 0

    def clone(self):
        s = State.__new__(State)
        s.geo = self.geo
        s.zones = list(self.zones)      # zones are copied on write
        s.conv = self.conv
        s.clock = self.clock
        return s

    def mz(self, i):
        """Zone i, made private to this state for modification."""
        z = self.zones[i].copy()
        self.zones[i] = z
        return z

    def key(self):
        # LRU: only the order of the implicitly open zones matters
        order = sorted((z.touch, i) for i, z in enumerate(self.zones)
                       if z is not None and z.cond == IOPEN)
        rank = {i: r for r, (_, i) in enumerate(order)}
        return (tuple(None if z is None else
                      (z.cond, z.wp, z.runs, rank.get(i, -1))
                      for i, z in enumerate(self.zones)), self.conv)

    def n_open(self):
        return sum(1 for z in self.zones
                   if z is not None and z.cond in (IOPEN, EOPEN))

    def n_active(self):
        return sum(1 for z in self.zones
                   if z is not None and z.cond in (IOPEN, EOPEN, CLOSED))

    def lru_iopen(self):
        best = None
        for i, z in enumerate(self.zones):
            if z is not None and z.cond == IOPEN:
                if best is None or z.touch < self.zones[best].touch:
                    best = i
        return best

    def summary(self):
        out = []
        for i, z in enumerate(self.zones):
            if z is None:
                out.append('%d:conv' % i)
            else:
                out.append('%d:%s/wp=%d' % (i, COND_NAME[z.cond], z.wp))
        return ' '.join(out)

    # Data -----------------------------------------------------------------

    def segments(self, off, length):
        """What [off, off+length) reads as: list of (start, len, pattern)."""
        geo = self.geo
        out = []
        end = off + length
        pos = off
        while pos < end:
            zi = geo.zone_of(pos)
            zs = geo.zstart[zi]
            ze = zs + geo.zlen[zi]
            stop = min(end, ze)
            if self.zones[zi] is None:
                p = pos
                for (a, b, pat) in self.conv:
                    if b <= p or a >= stop:
                        continue
                    if a > p:
                        out.append((p, a - p, 0))
                        p = a
                    e = min(b, stop)
                    out.append((p, e - p, pat))
                    p = e
                if p < stop:
                    out.append((p, stop - p, 0))
            else:
                z = self.zones[zi]
                p = zs
                for (ln, pat) in z.runs:
                    a, b = p, p + ln
                    p = b
                    if b <= pos or a >= stop:
                        continue
                    s = max(a, pos)
                    out.append((s, min(b, stop) - s, pat))
                q = max(p, pos)
                if q < stop:
                    out.append((q, stop - q, 0))
            pos = stop
        # merge neighbours with the same pattern
        merged = []
        for s, ln, pat in out:
            if ln <= 0:
                continue
            if merged and merged[-1][2] == pat and \
                    merged[-1][0] + merged[-1][1] == s:
                merged[-1] = (merged[-1][0], merged[-1][1] + ln, pat)
            else:
                merged.append((s, ln, pat))
        return merged

    def conv_write(self, off, length, pat):
        end = off + length
        ext = []
        for (a, b, p) in self.conv:
            if b <= off or a >= end:
                ext.append((a, b, p))
                continue
            if a < off:
                ext.append((a, off, p))
            if b > end:
                ext.append((end, b, p))
        ext.append((off, end, pat))
        ext.sort()
        self.conv = tuple(ext)


def _cond_refusal(st, i):
    """The refusal of any write or zone operation on zone i because of its
    condition (READ ONLY, OFFLINE), or None."""
    z = st.zones[i]
    if z is None:
        return None
    if z.cond == RDONLY:
        return refuse(EROFS, 'zone-rdonly', st)
    if z.cond == OFFLINE:
        return refuse(ENXIO, 'zone-offline', st)
    return None


def _close_zone(st, i):
    """Close zone i (open): CLOSED, or EMPTY when nothing was written."""
    z = st.mz(i)
    z.cond = CLOSED if z.wp > 0 else EMPTY


def _resources(st, i, explicit=False, finish=False):
    """Zone i (EMPTY or CLOSED) is about to be opened (implicitly by a
    write, explicitly, or passed through open by a finish).  Returns a list
    of (errno or None, state) variants; the state has the resources made
    available (an implicitly open zone closed when needed)."""
    geo = st.geo
    z = st.zones[i]
    need_active = z.cond == EMPTY
    mo, ma = geo.max_open, geo.max_active
    active_full = bool(ma) and st.n_active() >= ma
    open_full = bool(mo) and st.n_open() >= mo
    lru = st.lru_iopen()
    out = []
    if need_active and active_full:
        out.append((Refusal(EOVERFLOW, 'active-limit'), None))
        if open_full and lru is None:
            out.append((Refusal(ETOOMANYREFS, 'open-limit'), None))
        if finish:
            out.append((None, st))      # EMPTY -> FULL never becomes active
        return out
    if not open_full:
        return [(None, st)]
    if finish:
        out.append((None, st))
    if lru is not None:
        s2 = st.clone()
        _close_zone(s2, lru)
        out.append((None, s2))
        if explicit or (not need_active and active_full):
            out.append((Refusal(ETOOMANYREFS, 'open-limit'), None))
    else:
        out.append((Refusal(ETOOMANYREFS, 'open-limit'), None))
    return out


def _do_write(st, i, length, pat):
    """Write length bytes at the write pointer of zone i (resources are
    there).  Mutates st."""
    z = st.mz(i)
    st.clock += 1
    z.runs = z.runs + ((length, pat),)
    z.wp += length
    if z.cond in (EMPTY, CLOSED, IOPEN):
        z.cond = IOPEN
        z.touch = st.clock
    if z.wp >= st.geo.zcap[i]:
        z.cond = FULL


def _seq_write(st, i, rel, length, pat, append=False):
    """Write (or append) to sequential zone i at relative offset rel.
    Returns [(outcome, state)], outcome None for success."""
    geo = st.geo
    z = st.zones[i]
    cr = _cond_refusal(st, i)
    if cr:
        if not append and rel + length > geo.zlen[i]:
            # crossing the zone end: malformed, refused before the condition
            return refuse(EIO, 'capacity', st)
        return cr
    if z.cond == FULL:
        return refuse(EIO, 'full', st)
    if not append and rel != z.wp:
        return refuse(EINVAL, 'not-wp', st)
    if z.wp + length > geo.zcap[i]:
        return refuse(EIO, 'capacity', st)
    if z.cond in (EMPTY, CLOSED):
        variants = _resources(st, i)
    else:
        variants = [(None, st)]
    out = []
    for err, s in variants:
        if err:
            out.append((err, st))
            continue
        s2 = s.clone() if s is st else s
        _do_write(s2, i, length, pat)
        out.append((None, s2))
    return out


def write(st, off, length, pat):
    """Returns [(outcome, state)]; outcome None = success, else errno."""
    geo = st.geo
    if off < 0 or off > geo.size or geo.size - off < length:
        return refuse(EIO, 'range', st)
    if length == 0:
        out = [(None, st), (Refusal(EINVAL, 'zero-length'), st),
               (Refusal(EIO, 'zero-length'), st)]
        if off < geo.size:
            out += _cond_refusal(st, geo.zone_of(off)) or []
        return out
    z0 = geo.zone_of(off)
    zl = geo.zone_of(off + length - 1)
    all_conv = all(geo.is_conv(z) for z in range(z0, zl + 1))
    if off % SECTOR or length % SECTOR:
        if all_conv:
            s2 = st.clone()
            s2.conv_write(off, length, pat)
            return refuse(EINVAL, 'unaligned', st) + [(None, s2)]
        return refuse(EINVAL, 'unaligned', st)
    if all_conv:
        s2 = st.clone()
        s2.conv_write(off, length, pat)
        if z0 == zl:
            return [(None, s2)]
        return [(None, s2), (Refusal(EINVAL, 'cross-conv'), st),
                (Refusal(EIO, 'cross-conv'), st)]
    if geo.is_conv(z0):
        return [(Refusal(EINVAL, 'cross-into-seq'), st),
                (Refusal(EIO, 'cross-into-seq'), st)]
    return _seq_write(st, z0, off - geo.zstart[z0], length, pat)


def append(st, off, length):
    """Zone append: returns [(outcome, state)], outcome ('ok', offset) or
    errno."""
    geo = st.geo
    if off < 0 or off >= geo.size or geo.size - off < length:
        return refuse(EIO, 'range', st)
    i = geo.zone_of(off)
    if length == 0:
        out = [(Refusal(EINVAL, 'zero-length'), st),
               (Refusal(EIO, 'zero-length'), st)]
        cr = _cond_refusal(st, i)
        if cr:
            out += cr
        elif not geo.is_conv(i) and st.zones[i].cond != FULL:
            out.append((('ok', geo.zstart[i] + st.zones[i].wp), st))
        return out
    if length % SECTOR:
        return [(Refusal(EINVAL, 'unaligned'), st),
                (Refusal(EIO, 'unaligned'), st)]
    if geo.is_conv(i):
        return refuse(EIO, 'append-conv', st)
    if off != geo.zstart[i]:
        return refuse(EIO, 'append-not-start', st)
    if length > geo.max_append or length > geo.zlen[i]:
        return refuse(EIO, 'append-too-long', st)
    wp = st.zones[i].wp
    out = []
    for err, s in _seq_write(st, i, wp, length, 0xcd, append=True):
        out.append(((('ok', geo.zstart[i] + wp)) if err is None else err, s))
    return out


# Zone management ------------------------------------------------------------

def _zone_open(st, i):
    if st.geo.is_conv(i):
        return refuse(EIO, 'mgmt-conv', st)
    cr = _cond_refusal(st, i)
    if cr:
        return cr
    z = st.zones[i]
    if z.cond == EOPEN:
        return [(None, st)]
    if z.cond == IOPEN:
        s = st.clone()
        s.mz(i).cond = EOPEN
        return [(None, s)]
    if z.cond == FULL:
        return refuse(EIO, 'open-full', st) + [(None, st)]
    out = []
    for err, s in _resources(st, i, explicit=True):
        if err:
            out.append((err, st))
        else:
            s2 = s.clone()
            s2.mz(i).cond = EOPEN
            out.append((None, s2))
    return out


def _zone_close(st, i):
    if st.geo.is_conv(i):
        return refuse(EIO, 'mgmt-conv', st)
    cr = _cond_refusal(st, i)
    if cr:
        return cr
    z = st.zones[i]
    if z.cond in (IOPEN, EOPEN):
        s = st.clone()
        _close_zone(s, i)
        return [(None, s)]
    if z.cond == CLOSED:
        return [(None, st)]
    return refuse(EIO, 'close-not-open', st) + [(None, st)]  # EMPTY, FULL


def _zone_finish(st, i):
    geo = st.geo
    if geo.is_conv(i):
        return refuse(EIO, 'mgmt-conv', st)
    cr = _cond_refusal(st, i)
    if cr:
        return cr
    z = st.zones[i]
    if z.cond == FULL:
        return [(None, st)]
    if z.cond in (IOPEN, EOPEN):
        variants = [(None, st)]
    else:
        variants = _resources(st, i, finish=True)
    out = []
    for err, s in variants:
        if err:
            out.append((err, st))
            continue
        s2 = s.clone()
        zz = s2.mz(i)
        pad = geo.zcap[i] - zz.wp
        if pad > 0:
            zz.runs = zz.runs + ((pad, 0),)
        zz.wp = geo.zcap[i]
        zz.cond = FULL
        out.append((None, s2))
    return out


def _zone_reset(st, i):
    if st.geo.is_conv(i):
        return refuse(EIO, 'mgmt-conv', st)
    cr = _cond_refusal(st, i)
    if cr:
        return cr
    z = st.zones[i]
    if z.cond == EMPTY:
        return [(None, st)]
    s = st.clone()
    s.zones[i] = Zone()
    return [(None, s)]


ZONE_OPS = {'zo': _zone_open, 'zc': _zone_close, 'zf': _zone_finish,
            'zrs': _zone_reset}

MAX_BRANCHES = 64


def mgmt(st, op, off, length):
    """Zone management command (qemu-io zo/zc/zf/zrs off len)."""
    geo = st.geo
    end = off + length
    if length <= 0 or off < 0 or end > geo.size:
        return refuse(EINVAL, 'mgmt-range', st)
    if off % geo.zone_size:
        return refuse(EINVAL, 'mgmt-range', st)
    if length % geo.zone_size and end != geo.size:
        return refuse(EINVAL, 'mgmt-range', st)
    if op == 'zrs' and off == 0 and length == geo.size:
        # Reset all (REQ_OP_ZONE_RESET_ALL): sequential zones only, not
        # READ ONLY or OFFLINE ones (ZBC RESET ALL, null_blk, README)
        s = st.clone()
        for i in range(geo.nzones):
            if s.zones[i] is not None and \
                    s.zones[i].cond not in (EMPTY, RDONLY, OFFLINE):
                s.zones[i] = Zone()
        return [(None, s)]
    fn = ZONE_OPS[op]
    first, last = geo.zone_of(off), geo.zone_of(end - 1)
    if op == 'zrs':
        # A range holding a READ ONLY or OFFLINE zone: the first one's
        # refusal, nothing changed (README); with a conventional zone in
        # the range too, its refusal may come first (nothing changed)
        for i in range(first, last + 1):
            cr = _cond_refusal(st, i)
            if cr:
                if any(geo.is_conv(j) for j in range(first, last + 1)):
                    cr += refuse(EIO, 'mgmt-conv', st)
                return cr
    # paths: (state, errors so far); a path stops at its first error, or
    # goes on with the next zones (both are allowed)
    paths = [(st, ())]
    stopped = []
    for i in range(first, last + 1):
        nxt = []
        for s, errs in paths:
            for e, s2 in fn(s, i):
                if e is None:
                    nxt.append((s2, errs))
                else:
                    if not errs:
                        stopped.append((s, (e,)))
                    nxt.append((s, tuple(sorted(set(errs + (e,))))))
        # fewest errors first: the truncation keeps the plain paths
        nxt.sort(key=lambda p: len(p[1]))
        paths = _dedup_paths(nxt)
    out = []
    for s, errs in _dedup_paths(stopped, 4 * MAX_BRANCHES) + paths:
        if not errs:
            out.append((None, s))
        else:
            # with all zones processed, any of the errors may be returned
            for e in errs:
                out.append((e, s))
    return out


def _dedup_paths(paths, limit=MAX_BRANCHES):
    seen = set()
    out = []
    for s, errs in paths:
        k = (s.key(), errs)
        if k in seen:
            continue
        seen.add(k)
        out.append((s, errs))
    return out[:limit]


def set_cond(st, off, cond):
    """Change the condition of the zone starting at off (qemu-io zsc, QMP
    x-blockdev-set-zone-condition) to 'normal', 'read-only' or 'offline'.
    [(outcome, state)], refusals with the cond-* reasons."""
    geo = st.geo
    out = []
    if off < 0 or off >= geo.size:
        out += refuse(EINVAL, 'cond-range', st)
    if off % geo.zone_size:
        out += refuse(EINVAL, 'cond-align', st)
    if out:
        # beyond the end and not a zone start: either message
        return out
    i = geo.zone_of(off)
    if geo.is_conv(i):
        return refuse(EINVAL, 'cond-conv', st)
    z = st.zones[i]
    if cond == 'read-only':
        if z.cond == RDONLY:
            return [(None, st)]
        s = st.clone()
        zz = s.mz(i)
        if z.cond == OFFLINE:
            zz.wp, zz.runs = 0, ()
        zz.cond = RDONLY            # keeps the write pointer and the data
        zz.touch = 0
        return [(None, s)]
    if cond == 'offline':
        if z.cond == OFFLINE:
            return [(None, st)]
        s = st.clone()
        s.zones[i] = Zone(OFFLINE)  # write pointer 0, data gone
        return [(None, s)]
    if cond != 'normal':
        raise ValueError(cond)
    if z.cond == OFFLINE:
        s = st.clone()
        s.zones[i] = Zone()
        return [(None, s)]
    if z.cond != RDONLY:
        return [(None, st)]
    if z.wp == 0:
        new = EMPTY
    elif z.wp >= geo.zcap[i]:
        new = FULL
    else:
        new = CLOSED
        if geo.max_active and st.n_active() >= geo.max_active:
            return refuse(EOVERFLOW, 'cond-active-limit', st)
    s = st.clone()
    s.mz(i).cond = new
    return [(None, s)]


def reopen(st):
    """A restart: open zones come back CLOSED; those opened with nothing
    written come back EMPTY or CLOSED (the same for all of them); everything
    else persists."""
    outs = []
    for empty_cond in (EMPTY, CLOSED):
        s = st.clone()
        for i, z in enumerate(st.zones):
            if z is None or z.cond not in (IOPEN, EOPEN):
                continue
            zz = s.mz(i)
            zz.cond = CLOSED if z.wp > 0 else empty_cond
            zz.touch = 0
        outs.append(s)
    return dedup(outs)


def read(st, off, length):
    """[(outcome, state)]: ('data', segments) or EIO."""
    geo = st.geo
    if off < 0 or off > geo.size or geo.size - off < length:
        return refuse(EIO, 'range', st)
    data = [(('data', tuple(st.segments(off, length))), st)]
    if length == 0:
        if off < geo.size:
            # no byte is read: success, or the zone's refusal
            cr = _cond_refusal(st, geo.zone_of(off))
            if cr and cr[0][0].reason == 'zone-offline':
                return data + cr
        return data
    for i in range(geo.zone_of(off), geo.zone_of(off + length - 1) + 1):
        z = st.zones[i]
        if z is not None and z.cond == OFFLINE:
            # a read touching an OFFLINE zone fails as a whole (README)
            return refuse(ENXIO, 'zone-offline', st)
    return data


def readable_segments(st, off, length):
    """The segments of [off, off+length) outside OFFLINE zones: what can
    still be checked when a read is refused for one."""
    geo = st.geo
    out = []
    for s, ln, pat in st.segments(off, length):
        pos, end = s, s + ln
        while pos < end:
            i = geo.zone_of(pos)
            stop = min(end, geo.zstart[i] + geo.zlen[i])
            z = st.zones[i]
            if z is None or z.cond != OFFLINE:
                if out and out[-1][2] == pat and \
                        out[-1][0] + out[-1][1] == pos:
                    out[-1] = (out[-1][0], out[-1][1] + stop - pos, pat)
                else:
                    out.append((pos, stop - pos, pat))
            pos = stop
    return out


def report_expect(st, off, n):
    """Expected zone report for 'zrp off n': list of zone descriptors
    (start, len, cap, wp-set or None, cond, type) in bytes, or None when the
    offset is beyond the disk (see accepted outcomes)."""
    geo = st.geo
    if off >= geo.size:
        return None
    out = []
    for i in range(geo.zone_of(off), min(geo.nzones, geo.zone_of(off) + n)):
        s, ln, cap = geo.zstart[i], geo.zlen[i], geo.zcap[i]
        z = st.zones[i]
        if z is None:
            out.append((s, ln, cap, None, NOT_WP, TYPE_CONV))
        elif z.cond in (RDONLY, OFFLINE):
            # write pointer invalid (ZBC); QEMU reports all ones
            out.append((s, ln, cap, None, z.cond, TYPE_SWR))
        elif z.cond == FULL:
            out.append((s, ln, cap, (s + cap, s + ln), FULL, TYPE_SWR))
        else:
            out.append((s, ln, cap, (s + z.wp,), z.cond, TYPE_SWR))
    return out


def report_matches(st, off, n, observed):
    """observed: ('err', errno) or ('zones', [(start, len, cap, wp, cond,
    type)]) in bytes."""
    exp = report_expect(st, off, n)
    if exp is None:
        return observed == ('zones', []) or observed in (
            ('err', EINVAL), ('err', EIO))
    if observed[0] != 'zones' or len(observed[1]) != len(exp):
        return False
    for (s, ln, cap, wps, cond, typ), got in zip(exp, observed[1]):
        gs, gl, gc, gw, gcond, gt = got
        if (gs, gl, gc, gcond, gt) != (s, ln, cap, cond, typ):
            return False
        if wps is not None and gw not in wps:
            return False
    return True


def report_diff(st, off, n, observed):
    """Human-readable lines where the observed report differs."""
    exp = report_expect(st, off, n)
    if exp is None or observed[0] != 'zones':
        return ['expected %s, got %s' % (exp, observed)]
    lines = []
    if len(exp) != len(observed[1]):
        lines.append('expected %d zones, got %d' % (len(exp),
                                                    len(observed[1])))
    for (s, ln, cap, wps, cond, typ), got in zip(exp, observed[1]):
        gs, gl, gc, gw, gcond, gt = got
        bad = (gs, gl, gc, gcond, gt) != (s, ln, cap, cond, typ) or \
            (wps is not None and gw not in wps)
        if bad:
            lines.append(
                'zone @%d: expected len %d cap %d wp %s %s type %d; got '
                'len %d cap %d wp %d %s type %d'
                % (s, ln, cap, '/'.join(str(w) for w in wps) if wps else '*',
                   COND_NAME.get(cond, cond), typ, gl, gc, gw,
                   COND_NAME.get(gcond, gcond), gt))
    return lines


def report_diff_kind(st, off, n, observed):
    """What differs first: 'error', 'count', 'geometry', 'cond' or 'wp'."""
    exp = report_expect(st, off, n)
    if exp is None or observed[0] != 'zones':
        return 'error'
    if len(exp) != len(observed[1]):
        return 'count'
    for (s, ln, cap, wps, cond, typ), got in zip(exp, observed[1]):
        gs, gl, gc, gw, gcond, gt = got
        if (gs, gl, gc, gt) != (s, ln, cap, typ):
            return 'geometry'
        if gcond != cond:
            return 'cond'
        if wps is not None and gw not in wps:
            return 'wp'
    return 'none'


def dedup(states, limit=MAX_BRANCHES):
    seen = set()
    out = []
    for s in states:
        k = s.key()
        if k in seen:
            continue
        seen.add(k)
        out.append(s)
    return out[:limit]


# Self test ---------------------------------------------------------------

def _selftest():
    M = 1 << 20
    g = Geometry(4 * M, M, 1000 * 1024)
    s = State(g)
    (o, s), = write(s, 0, 980 * 1024, 5)
    assert o is None and s.zones[0].cond == IOPEN
    (o, s), = [v for v in mgmt(s, 'zf', 0, M)]
    assert o is None and s.zones[0].cond == FULL and s.zones[0].wp == g.zcap[0]
    assert write(s, 0, 512, 1)[0][0] == EIO
    assert append(s, 5 * M, 4096)[0][0] == EIO
    # open limit with LRU close
    g = Geometry(8 * M, M, M, max_open=2)
    s = State(g)
    for i in (0, 1, 2):
        (o, s), = write(s, i * M, 4096, i + 1)
        assert o is None
    assert s.zones[0].cond == CLOSED and s.zones[1].cond == IOPEN
    # explicit opens fill the limit, then a write fails
    g = Geometry(8 * M, M, M, max_open=1, max_active=2)
    s = State(g)
    (o, s), = _zone_open(s, 0)
    assert o is None and s.zones[0].cond == EOPEN
    assert write(s, M, 512, 1)[0][0] == ETOOMANYREFS
    (o, s), = mgmt(s, 'zc', 0, M)
    assert s.zones[0].cond == EMPTY
    # active limit
    (o, s), = write(s, 0, 512, 1)
    (o, s), = mgmt(s, 'zc', 0, M)
    (o, s), = write(s, M, 512, 2)
    (o, s), = mgmt(s, 'zc', M, M)
    assert s.n_active() == 2
    assert [o for o, _ in write(s, 2 * M, 512, 3)] == [EOVERFLOW]
    # smaller last zone
    g = Geometry(3 * M + 64 * 1024, M, 768 * 1024)
    assert g.nzones == 4 and g.zcap[3] == 64 * 1024 and g.zcap[0] == 768 * 1024
    s = State(g)
    (o, s), = write(s, 3 * M, 64 * 1024, 7)
    assert o is None and s.zones[3].cond == FULL
    assert s.segments(3 * M - 512, 1024) == [(3 * M - 512, 512, 0),
                                             (3 * M, 512, 7)]
    _selftest_conditions()
    print('zonemodel self test passed')


def _selftest_conditions():
    M = 1 << 20
    g = Geometry(6 * M, M, 768 * 1024, conventional=1, max_open=1,
                 max_active=2)
    s = State(g)

    def one(res):
        assert len(res) == 1, res
        return res[0]

    def reasons(res):
        return sorted(o.reason for o, _ in res)

    # refusals
    assert reasons(set_cond(s, 0, 'offline')) == ['cond-conv']
    assert reasons(set_cond(s, M + 512, 'read-only')) == ['cond-align']
    assert reasons(set_cond(s, 6 * M, 'normal')) == ['cond-range']
    assert reasons(set_cond(s, 6 * M + 512, 'offline')) == \
        ['cond-align', 'cond-range']
    # an open zone goes READ ONLY: data kept, open resource freed
    o, s = one(write(s, M, 4096, 3))
    assert o is None and s.zones[1].cond == IOPEN and s.n_open() == 1
    o, s = one(set_cond(s, M, 'read-only'))
    assert o is None and s.zones[1].cond == RDONLY and s.zones[1].wp == 4096
    assert s.n_open() == 0 and s.n_active() == 0
    assert s.segments(M, 8192) == [(M, 4096, 3), (M + 4096, 4096, 0)]
    o, _ = one(set_cond(s, M, 'read-only'))
    assert o is None
    assert [o for o, _ in write(s, M + 4096, 512, 1)] == [EROFS]
    assert write(s, M + 4096, 512, 1)[0][0].reason == 'zone-rdonly'
    assert write(s, M + 4096, 1000, 1)[0][0] == EINVAL     # unaligned first
    assert write(s, 2 * M - 512, 1024, 1)[0][0].reason == 'capacity'
    assert [o for o, _ in append(s, M, 512)] == [EROFS]
    assert [o for o, _ in append(s, M + 512, 512)] == [EIO, EINVAL]
    for op in ('zo', 'zc', 'zf', 'zrs'):
        assert {o for o, _ in mgmt(s, op, M, M)} == {EROFS}, op
    assert read(s, M, 8192)[0][0][0] == 'data'
    # other zones open freely now (max_open 1)
    o, s = one(write(s, 2 * M, 512, 4))
    o, s = one(write(s, 3 * M, 512, 5))
    assert s.zones[2].cond == CLOSED and s.zones[3].cond == IOPEN
    assert s.n_active() == 2
    # back to normal as CLOSED at the active limit: refused, nothing changed
    o, s2 = one(set_cond(s, M, 'normal'))
    assert o == EOVERFLOW and o.reason == 'cond-active-limit' and s2 is s
    o, s = one(mgmt(s, 'zf', 3 * M, M))
    o, s = one(set_cond(s, M, 'normal'))
    assert o is None and s.zones[1].cond == CLOSED and s.zones[1].wp == 4096
    # offline: data gone, reads refused as a whole, report wp not checked
    o, s = one(set_cond(s, 2 * M, 'offline'))
    assert s.zones[2].cond == OFFLINE and s.zones[2].wp == 0
    assert s.n_active() == 1
    assert [o for o, _ in read(s, 2 * M - 512, 1024)] == [ENXIO]
    assert [o for o, _ in write(s, 2 * M, 512, 1)] == [ENXIO]
    assert {o for o, _ in mgmt(s, 'zo', 2 * M, M)} == {ENXIO}
    assert readable_segments(s, M, 2 * M + 512) == \
        [(M, 4096, 3), (M + 4096, M - 4096, 0), (3 * M, 512, 5)]
    rep = report_expect(s, 2 * M, 1)
    assert rep[0][4] == OFFLINE and rep[0][3] is None
    assert report_matches(s, 2 * M, 1, ('zones', [(2 * M, M, 768 * 1024,
                                                   (1 << 63) - 512,
                                                   OFFLINE, TYPE_SWR)]))
    # offline -> read-only: wp 0; -> normal: EMPTY
    o, s = one(set_cond(s, 2 * M, 'read-only'))
    assert s.zones[2].cond == RDONLY and s.zones[2].wp == 0
    o, s = one(set_cond(s, 4 * M, 'read-only'))
    # reset all skips READ ONLY and OFFLINE zones
    o, s = one(set_cond(s, 5 * M, 'offline'))
    o, s3 = one(mgmt(s, 'zrs', 0, 6 * M))
    assert s3.zones[2].cond == RDONLY and s3.zones[5].cond == OFFLINE
    assert s3.zones[1].cond == EMPTY and s3.zones[3].cond == EMPTY
    # a range reset holding one changes nothing, the first one decides
    res = mgmt(s, 'zrs', M, 5 * M)
    assert [(o, o.reason) for o, _ in res] == [(EROFS, 'zone-rdonly')]
    assert res[0][1] is s
    # a range reset with a conventional zone too: either refusal
    assert sorted(mgmt(s, 'zrs', 0, 3 * M)[i][0] for i in range(3)) == \
        [EINVAL, EIO, EROFS]
    o, s = one(set_cond(s, 2 * M, 'normal'))
    assert s.zones[2].cond == EMPTY and s.segments(2 * M, 512) == \
        [(2 * M, 512, 0)]
    # read-only with wp at the capacity -> FULL
    o, s = one(mgmt(s, 'zf', 3 * M, M))
    o, s = one(set_cond(s, 3 * M, 'read-only'))
    o, s = one(set_cond(s, 3 * M, 'normal'))
    assert s.zones[3].cond == FULL
    # conditions survive a restart
    for s4 in reopen(s):
        assert s4.zones[4].cond == RDONLY and s4.zones[5].cond == OFFLINE


if __name__ == '__main__':
    _selftest()
