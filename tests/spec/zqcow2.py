#!/usr/bin/env python3
"""Independent reader of zoned qcow2 images, written from the qcow2 spec
(docs/interop/qcow2.rst with the "Zoned extension" / "Zoned images" text).

Commands:
  zqcow2.py info IMG                 geometry and zone counts as JSON
  zqcow2.py report [--writer] IMG    zones as JSON (--writer: also apply what a
                                     writer does when it opens the image)
  zqcow2.py dump [--offline-zero] IMG OUT.raw
                                     the virtual disk as a reader sees it
                                     (refused if a zone is OFFLINE, unless
                                     --offline-zero: such zones as zeroes)
  zqcow2.py read IMG OFFSET LENGTH   guest bytes to stdout (exit 3 if the
                                     range touches an OFFLINE zone)
  zqcow2.py check IMG                spec-level constraints; exit 0 if they hold,
                                     else print each violation and exit 1

Exit status 2 means the image was refused (a reader must not open it); the
message names the field and its value.  Python 3 stdlib only.
"""

import json
import struct
import sys
import zlib

QCOW_MAGIC = b"QFI\xfb"
EXT_END = 0x00000000
EXT_BACKING_FMT = 0xE2792ACA
EXT_FEATURE_TABLE = 0x6803F857
EXT_BITMAPS = 0x23852875
EXT_FDE = 0x0537BE77
EXT_DATA_FILE = 0x44415441
EXT_ZONED = 0x007A6264

INCOMPAT_DIRTY = 1 << 0
INCOMPAT_CORRUPT = 1 << 1
INCOMPAT_DATA_FILE = 1 << 2
INCOMPAT_COMPRESSION = 1 << 3
INCOMPAT_EXTL2 = 1 << 4
INCOMPAT_ZONED = 1 << 5
INCOMPAT_KNOWN = 0x3F

AUTOCLEAR_BITMAPS = 1 << 0
AUTOCLEAR_DATA_FILE_RAW = 1 << 1

ZONED_EXT_MIN_LEN = 48

# write pointer table entry
WPE_CONV = 1 << 63
WPE_RESERVED = 0x7 << 60            # bits 60-62
WPE_COND_SHIFT = 58                 # bits 58-59: zone condition
COND_NORMAL, COND_RDONLY, COND_OFFLINE, COND_INVALID = 0, 1, 2, 3
WPE_OPEN_SHIFT = 56                 # bits 56-57
WPE_WP_MASK = (1 << 56) - 1         # bits 0-55
OPEN_NONE, OPEN_IMPLICIT, OPEN_EXPLICIT, OPEN_INVALID = 0, 1, 2, 3

L1E_OFFSET_MASK = 0x00FFFFFFFFFFFE00   # bits 9-55
L1E_RESERVED = 0x7F000000000001FF     # bits 0-8, 56-62
L2E_OFFSET_MASK = 0x00FFFFFFFFFFFE00
L2E_STD_RESERVED = 0x3F000000000001FE  # bits 1-8, 56-61
L2E_COMPRESSED = 1 << 62
COPIED = 1 << 63
RT_OFFSET_MASK = 0xFFFFFFFFFFFFFE00    # refcount table entry: bits 9-63
RT_RESERVED = 0x1FF


class Refused(Exception):
    """The reader must not (or cannot) open the image."""


class ReadError(Exception):
    """A guest read cannot be served (corrupt metadata)."""


def be(fmt, buf, off):
    return struct.unpack_from(">" + fmt, buf, off)[0]


class Zone:
    __slots__ = ("index", "start", "length", "capacity", "conventional",
                 "wp", "open_bits", "zcond", "cond", "entry")

    def as_dict(self):
        d = {
            "index": self.index,
            "start": self.start,
            "length": self.length,
            "capacity": self.capacity,
            "type": "conventional" if self.conventional else "sequential",
            "condition": self.cond,
            # READ ONLY / OFFLINE zones have no valid write pointer; bits
            # 0-55 of a READ ONLY entry still say what reads return
            "write_pointer": None if self.conventional or self.zcond
            else self.wp,
            "entry": "0x%016x" % self.entry,
        }
        if self.zcond == COND_RDONLY:
            d["stored_write_pointer"] = self.wp
        return d


class Image:
    def __init__(self, path):
        self.path = path
        self.f = open(path, "rb")
        self.f.seek(0, 2)
        self.file_size = self.f.tell()
        self.violations = []   # spec constraints broken, image still readable
        self.warnings = []
        self._parse_header()
        self._parse_extensions()
        self._check_features()
        self._parse_zoned_ext()
        self._load_l1()
        self._parse_zone_table()
        self._compute_conditions()

    # ------------------------------------------------------------------ io
    def pread(self, off, n):
        """Read n bytes at off; the part beyond the end of file reads as 0."""
        self.f.seek(off)
        d = self.f.read(n)
        if len(d) < n:
            d += bytes(n - len(d))
        return d

    def violation(self, msg):
        self.violations.append(msg)

    # -------------------------------------------------------------- header
    def _parse_header(self):
        h = self.pread(0, 104)
        if self.file_size < 72 or h[0:4] != QCOW_MAGIC:
            raise Refused("magic %r is not QFI\\xfb" % h[0:4])
        self.version = be("I", h, 4)
        if self.version not in (2, 3):
            raise Refused("version %d is not 2 or 3" % self.version)
        if self.version != 3:
            raise Refused("version %d: a zoned image is a version 3 image "
                          "(a version 2 image cannot set incompatible feature "
                          "bit 5)" % self.version)
        if self.file_size < 104:
            raise Refused("file is %d bytes, shorter than the 104 byte v3 "
                          "header" % self.file_size)
        self.backing_file_offset = be("Q", h, 8)
        self.backing_file_size = be("I", h, 16)
        self.cluster_bits = be("I", h, 20)
        self.size = be("Q", h, 24)
        self.crypt_method = be("I", h, 32)
        self.l1_size = be("I", h, 36)
        self.l1_table_offset = be("Q", h, 40)
        self.refcount_table_offset = be("Q", h, 48)
        self.refcount_table_clusters = be("I", h, 56)
        self.nb_snapshots = be("I", h, 60)
        self.snapshots_offset = be("Q", h, 64)
        self.incompatible_features = be("Q", h, 72)
        self.compatible_features = be("Q", h, 80)
        self.autoclear_features = be("Q", h, 88)
        self.refcount_order = be("I", h, 96)
        self.header_length = be("I", h, 100)

        if self.cluster_bits < 9:
            raise Refused("cluster_bits %d is less than 9" % self.cluster_bits)
        if self.cluster_bits > 30:
            # Not a spec limit; protects this reader's memory use.
            raise Refused("cluster_bits %d is larger than this reader "
                          "supports (30)" % self.cluster_bits)
        self.cs = 1 << self.cluster_bits
        if self.header_length < 104:
            raise Refused("header_length %d is less than 104"
                          % self.header_length)
        if self.header_length % 8:
            raise Refused("header_length %d is not a multiple of 8"
                          % self.header_length)
        if self.header_length > self.cs:
            raise Refused("header_length %d exceeds the first cluster (%d)"
                          % (self.header_length, self.cs))
        if self.refcount_order > 6:
            raise Refused("refcount_order %d exceeds 6" % self.refcount_order)
        self.hdr = self.pread(0, self.cs)
        if self.header_length > 104:
            self.compression_type = self.hdr[104]
            pad = self.hdr[105:self.header_length]
            # 105..111 is padding; any bytes of an unknown longer header are
            # "unknown additional fields", which may be ignored.
            if any(self.hdr[105:112]):
                self.violation("header padding bytes 105-111 are not zero: %s"
                               % self.hdr[105:112].hex())
            del pad
        else:
            self.compression_type = 0

    def _parse_extensions(self):
        self.extensions = []
        off = self.header_length
        seen = {}
        while True:
            if off + 8 > self.cs:
                raise Refused("header extension at offset %d runs past the "
                              "first cluster" % off)
            typ = be("I", self.hdr, off)
            ln = be("I", self.hdr, off + 4)
            if typ == EXT_END:
                self.ext_end = off + 8
                break
            if off + 8 + ln > self.cs:
                raise Refused("header extension 0x%08x at offset %d with length"
                              " %d runs past the first cluster"
                              % (typ, off, ln))
            data = self.hdr[off + 8:off + 8 + ln]
            self.extensions.append((typ, off, data))
            seen[typ] = seen.get(typ, 0) + 1
            off += 8 + ((ln + 7) & ~7)
        self.zoned_ext = None
        self.bitmaps_ext = None
        for typ, n in seen.items():
            if n > 1 and typ in (EXT_ZONED, EXT_BITMAPS, EXT_FDE,
                                 EXT_BACKING_FMT, EXT_DATA_FILE,
                                 EXT_FEATURE_TABLE):
                msg = ("header extension 0x%08x appears %d times; each header "
                       "extension type shall appear at most once" % (typ, n))
                if typ == EXT_ZONED:
                    raise Refused(msg)
                self.violation(msg)
        for typ, off, data in self.extensions:
            if typ == EXT_ZONED:
                self.zoned_ext = (off, data)
            elif typ == EXT_BITMAPS:
                self.bitmaps_ext = (off, data)
            elif typ == EXT_DATA_FILE:
                raise Refused("external data file name extension present: a "
                              "zoned image has no external data file")
            elif typ == EXT_FDE:
                raise Refused("full disk encryption header extension present: "
                              "a zoned image has no encryption")

    def _check_features(self):
        inc = self.incompatible_features
        unknown = inc & ~INCOMPAT_KNOWN
        if unknown:
            raise Refused("incompatible_features 0x%x has unknown bits 0x%x set"
                          % (inc, unknown))
        zoned = bool(inc & INCOMPAT_ZONED)
        if zoned and self.zoned_ext is None:
            raise Refused("incompatible_features bit 5 (zoned) is set but the "
                          "Zoned header extension is missing")
        if not zoned and self.zoned_ext is not None:
            raise Refused("Zoned header extension present but "
                          "incompatible_features bit 5 (zoned) is not set")
        if not zoned:
            raise Refused("incompatible_features 0x%x: bit 5 (zoned) is not "
                          "set; not a zoned image" % inc)
        if inc & INCOMPAT_DATA_FILE:
            raise Refused("incompatible_features bit 2 (external data file) is"
                          " set: a zoned image has no external data file")
        if self.autoclear_features & AUTOCLEAR_DATA_FILE_RAW:
            self.violation("autoclear_features bit 1 (raw external data) is set"
                           " without an external data file")
        if self.backing_file_offset != 0:
            raise Refused("backing_file_offset 0x%x is not 0: a zoned image has"
                          " no backing file" % self.backing_file_offset)
        if self.crypt_method != 0:
            raise Refused("crypt_method %d is not 0: a zoned image has no "
                          "encryption" % self.crypt_method)
        if self.nb_snapshots != 0:
            raise Refused("nb_snapshots %d is not 0: a zoned image has no "
                          "internal snapshots" % self.nb_snapshots)
        self.extended_l2 = bool(inc & INCOMPAT_EXTL2)
        if self.extended_l2 and self.cluster_bits < 14:
            raise Refused("cluster_bits %d is less than 14 with extended L2 "
                          "entries" % self.cluster_bits)
        if inc & INCOMPAT_COMPRESSION:
            if self.header_length <= 104 or self.compression_type == 0:
                raise Refused("incompatible_features bit 3 (compression type) "
                              "is set but compression_type is %s"
                              % ("absent" if self.header_length <= 104
                                 else "0"))
        elif self.compression_type != 0:
            raise Refused("compression_type %d is non-zero but "
                          "incompatible_features bit 3 is clear"
                          % self.compression_type)
        if self.compression_type not in (0, 1):
            raise Refused("compression_type %d is unknown"
                          % self.compression_type)
        if self.autoclear_features & AUTOCLEAR_BITMAPS and \
                self.bitmaps_ext is None:
            self.violation("autoclear_features bit 0 (bitmaps) is set without "
                           "the bitmaps extension")
        for name, off in (("l1_table_offset", self.l1_table_offset),
                          ("refcount_table_offset",
                           self.refcount_table_offset)):
            if off % self.cs:
                raise Refused("%s 0x%x is not aligned to a cluster boundary"
                              % (name, off))
        if self.refcount_table_offset == 0:
            raise Refused("refcount_table_offset is 0")
        self.l2_entry_size = 16 if self.extended_l2 else 8
        self.l2_entries = self.cs // self.l2_entry_size
        self.sc_size = self.cs // 32 if self.extended_l2 else self.cs

    # --------------------------------------------------------- zoned ext
    def _parse_zoned_ext(self):
        off, d = self.zoned_ext
        if len(d) < ZONED_EXT_MIN_LEN:
            raise Refused("Zoned extension length %d is less than %d"
                          % (len(d), ZONED_EXT_MIN_LEN))
        self.zone_model = be("I", d, 0)
        self.nr_zones = be("I", d, 4)
        self.zone_size = be("Q", d, 8)
        self.zone_capacity = be("Q", d, 16)
        self.max_open_zones = be("I", d, 24)
        self.max_active_zones = be("I", d, 28)
        self.max_append_bytes = be("I", d, 32)
        self.zoned_reserved = be("I", d, 36)
        self.zone_table_offset = be("Q", d, 40)
        if self.zone_model != 1:
            raise Refused("zone_model %d is reserved (only 1, host-managed, "
                          "is defined)" % self.zone_model)
        zs = self.zone_size
        if zs == 0 or zs & (zs - 1):
            raise Refused("zone_size %d is not a power of two" % zs)
        if zs % self.cs:
            raise Refused("zone_size %d is not a multiple of the cluster size "
                          "%d" % (zs, self.cs))
        if self.size % 512:
            raise Refused("virtual disk size %d is not a multiple of 512"
                          % self.size)
        expect = (self.size + zs - 1) // zs
        if self.nr_zones != expect:
            raise Refused("nr_zones %d is not the virtual disk size %d divided"
                          " by zone_size %d rounded up (%d)"
                          % (self.nr_zones, self.size, zs, expect))
        if self.nr_zones < 1:
            raise Refused("nr_zones %d is less than 1 (virtual disk size %d)"
                          % (self.nr_zones, self.size))
        zc = self.zone_capacity
        if zc == 0 or zc % 512 or zc > zs:
            raise Refused("zone_capacity %d must be a non-zero multiple of 512 "
                          "not exceeding zone_size %d" % (zc, zs))
        ma = self.max_append_bytes
        if ma == 0 or ma % 512 or ma > zc:
            raise Refused("max_append_bytes %d must be a non-zero multiple of "
                          "512 not exceeding zone_capacity %d" % (ma, zc))
        if self.zoned_reserved:
            raise Refused("Zoned extension reserved bytes 36-39 are 0x%x, must"
                          " be zero" % self.zoned_reserved)
        if (self.max_open_zones and self.max_active_zones and
                self.max_open_zones > self.max_active_zones):
            raise Refused("max_open_zones %d exceeds max_active_zones %d"
                          % (self.max_open_zones, self.max_active_zones))
        to = self.zone_table_offset
        if to % self.cs:
            raise Refused("zone_table_offset 0x%x is not aligned to a cluster "
                          "boundary" % to)
        if to == 0:
            raise Refused("zone_table_offset 0 points at the header cluster")
        self.zone_table_bytes = self.nr_zones * 8
        self.zone_table_clusters = -(-self.zone_table_bytes // self.cs)
        end = to + self.zone_table_clusters * self.cs
        if to + self.zone_table_bytes > self.file_size:
            raise Refused("zone_table_offset 0x%x: the %d-byte write pointer "
                          "table ends beyond the end of the file (%d bytes)"
                          % (to, self.zone_table_bytes, self.file_size))
        del end

    def zone_geometry(self, i):
        start = i * self.zone_size
        length = min(self.zone_size, self.size - start)
        return start, length

    def _parse_zone_table(self):
        raw = self.pread(self.zone_table_offset,
                         self.zone_table_clusters * self.cs)
        self.zones = []
        for i in range(self.nr_zones):
            e = be("Q", raw, 8 * i)
            z = Zone()
            z.index = i
            z.entry = e
            z.start, z.length = self.zone_geometry(i)
            z.conventional = bool(e & WPE_CONV)
            z.open_bits = (e >> WPE_OPEN_SHIFT) & 3
            z.zcond = (e >> WPE_COND_SHIFT) & 3
            z.wp = e & WPE_WP_MASK
            if e & WPE_RESERVED:
                raise Refused("write pointer table entry %d (0x%016x): "
                              "reserved bits 60-62 are set" % (i, e))
            if z.conventional:
                z.capacity = z.length
                if e & ~WPE_CONV:
                    raise Refused("write pointer table entry %d (0x%016x): "
                                  "conventional zone with bits 0-62 not zero"
                                  % (i, e))
            else:
                z.capacity = min(self.zone_capacity, z.length)
                if z.zcond == COND_INVALID:
                    raise Refused("write pointer table entry %d (0x%016x): "
                                  "zone condition 3 (bits 58-59) is invalid"
                                  % (i, e))
                if z.zcond and z.open_bits:
                    raise Refused("write pointer table entry %d (0x%016x): "
                                  "a READ ONLY or OFFLINE zone (bits 58-59 "
                                  "= %d) with open condition %d (bits 56-57)"
                                  % (i, e, z.zcond, z.open_bits))
                if z.zcond == COND_OFFLINE and z.wp:
                    raise Refused("write pointer table entry %d (0x%016x): "
                                  "OFFLINE zone with bits 0-55 not zero"
                                  % (i, e))
                # READ ONLY: bits 0-55 follow the write pointer rules
                if z.wp % 512 or z.wp > z.capacity:
                    raise Refused("write pointer table entry %d (0x%016x): "
                                  "write pointer %d is not a multiple of 512 "
                                  "not exceeding the zone capacity %d"
                                  % (i, e, z.wp, z.capacity))
                ob = z.open_bits
                if ob == OPEN_INVALID or (ob and z.wp == z.capacity) or \
                        (ob == OPEN_IMPLICIT and z.wp == 0):
                    raise Refused("write pointer table entry %d (0x%016x): "
                                  "open condition %d is invalid with write "
                                  "pointer %d (capacity %d)"
                                  % (i, e, ob, z.wp, z.capacity))
            self.zones.append(z)
        tail = raw[self.zone_table_bytes:]
        if any(tail):
            nz = next(k for k, b in enumerate(tail) if b)
            self.violation("write pointer table: byte %d after the last entry "
                           "(file offset 0x%x) is not zero"
                           % (self.zone_table_bytes + nz,
                              self.zone_table_offset + self.zone_table_bytes
                              + nz))
        self.nr_conv = sum(1 for z in self.zones if z.conventional)
        self.nr_seq = self.nr_zones - self.nr_conv
        if self.nr_seq == 0:
            raise Refused("all %d zones are conventional; at least one zone "
                          "must be sequential" % self.nr_zones)
        if self.max_open_zones > self.nr_seq:
            raise Refused("max_open_zones %d exceeds the number of sequential "
                          "zones %d" % (self.max_open_zones, self.nr_seq))
        if self.max_active_zones > self.nr_seq:
            raise Refused("max_active_zones %d exceeds the number of sequential"
                          " zones %d" % (self.max_active_zones, self.nr_seq))

    def _compute_conditions(self):
        """Zone conditions as a reader sees them when it opens the image.

        Stored: EMPTY (wp 0), FULL (wp == capacity), CLOSED (in between),
        READ_ONLY / OFFLINE (bits 58-59 = 1 / 2), which are neither open nor
        active.
        Bits 56-57 (hand-over): zones whose write pointer is between 0 and
        the capacity are active whatever their open bits say, so they are
        all counted first; if they alone exceed max_active_zones, no zone is
        opened again.  Otherwise, in zone order, a zone with open bits is
        opened if that keeps the number of open zones within max_open_zones
        and the number of active zones within max_active_zones (0 = no
        limit).
        """
        mo, ma = self.max_open_zones, self.max_active_zones
        active = 0
        for z in self.zones:
            if z.conventional:
                z.cond = "NOT_WP"
            elif z.zcond == COND_RDONLY:
                z.cond = "READ_ONLY"        # neither open nor active
            elif z.zcond == COND_OFFLINE:
                z.cond = "OFFLINE"
            elif z.wp == 0:
                z.cond = "EMPTY"
            elif z.wp == z.capacity:
                z.cond = "FULL"
            else:
                z.cond = "CLOSED"
                active += 1
        nopen = 0
        for z in self.zones:
            if ma and active > ma:
                break
            if z.conventional or not z.open_bits:
                continue
            becomes_active = z.wp == 0
            if mo and nopen + 1 > mo:
                continue
            if becomes_active and ma and active + 1 > ma:
                continue
            nopen += 1
            if becomes_active:
                active += 1
            z.cond = "IMPLICIT_OPEN" if z.open_bits == OPEN_IMPLICIT \
                else "EXPLICIT_OPEN"
        self.nr_active = active
        if ma and active > ma:
            self.violation(
                "%d zones are active (open or closed), more than "
                "max_active_zones %d allows (a writer finishes %d CLOSED "
                "zones when it opens the image)" % (active, ma, active - ma))

    def writer_open(self):
        """Apply what a writer does on open: finish excess CLOSED zones,
        highest write pointer first (ties: lowest zone index -- a guess,
        the spec does not say)."""
        ma = self.max_active_zones
        active = sum(1 for z in self.zones if z.cond in
                     ("CLOSED", "IMPLICIT_OPEN", "EXPLICIT_OPEN"))
        while ma and active > ma:
            closed = [z for z in self.zones if z.cond == "CLOSED"]
            if not closed:
                break
            z = max(closed, key=lambda z: (z.wp, -z.index))
            z.wp = z.capacity
            z.cond = "FULL"
            active -= 1
        self.nr_active = active

    # ------------------------------------------------------- L1 / L2
    def _load_l1(self):
        n = self.l1_size
        if n * 8 > 32 * 1024 * 1024 * 8:
            raise Refused("l1_size %d is too large for this reader" % n)
        raw = self.pread(self.l1_table_offset, n * 8)
        self.l1 = list(struct.unpack(">%dQ" % n, raw)) if n else []
        self._l2_cache = {}

    def l2_table(self, l2off):
        t = self._l2_cache.get(l2off)
        if t is None:
            raw = self.pread(l2off, self.cs)
            t = struct.unpack(">%dQ" % (self.cs // 8), raw)
            self._l2_cache[l2off] = t
        return t

    def l2_entry(self, gcluster):
        """(l2 entry, bitmap) for guest cluster; None if no L2 table."""
        l1i, l2i = divmod(gcluster, self.l2_entries)
        if l1i >= len(self.l1):
            return None
        l1e = self.l1[l1i]
        l2off = l1e & L1E_OFFSET_MASK
        if l2off == 0:
            return None
        if l2off % self.cs:
            raise ReadError("L1 entry %d (0x%016x): L2 table offset 0x%x is "
                            "not cluster aligned" % (l1i, l1e, l2off))
        t = self.l2_table(l2off)
        if self.extended_l2:
            return t[2 * l2i], t[2 * l2i + 1]
        return t[l2i], 0

    def compressed_params(self, e):
        x = 62 - (self.cluster_bits - 8)
        coff = e & ((1 << x) - 1)
        nsec = ((e >> x) & ((1 << (62 - x)) - 1)) + 1
        # spans from the sector containing coff over nsec sectors
        end = (coff & ~511) + nsec * 512
        return coff, end

    def decompress(self, e):
        coff, end = self.compressed_params(e)
        data = self.pread(coff, end - coff)
        if self.compression_type == 0:
            d = zlib.decompressobj(-15)
            out = d.decompress(data, self.cs)
        else:
            raise ReadError("compressed cluster uses compression_type %d "
                            "(zstd), which this stdlib-only reader cannot "
                            "decompress" % self.compression_type)
        if len(out) < self.cs:
            raise ReadError("compressed cluster at 0x%x decompresses to %d "
                            "bytes, less than a cluster" % (coff, len(out)))
        return out[:self.cs]

    def read_cluster(self, gc):
        """Guest cluster gc before the zoned read rule (full cluster)."""
        cs = self.cs
        r = self.l2_entry(gc)
        if r is None:
            return None
        e, bm = r
        if e & L2E_COMPRESSED:
            return self.decompress(e)
        off = e & L2E_OFFSET_MASK
        if not self.extended_l2:
            if e & 1:
                return None
            if off == 0:
                if e & COPIED:
                    raise ReadError("L2 entry for guest cluster %d (0x%016x): "
                                    "host offset 0 with bit 63 set and no "
                                    "external data file" % (gc, e))
                return None
            if off % cs:
                raise ReadError("L2 entry for guest cluster %d (0x%016x): host"
                                " cluster offset 0x%x is not cluster aligned"
                                % (gc, e, off))
            return self.pread(off, cs)
        alloc = bm & 0xFFFFFFFF
        zero = bm >> 32
        if alloc & zero:
            raise ReadError("extended L2 entry for guest cluster %d: bitmap "
                            "0x%016x marks subclusters both allocated and zero"
                            % (gc, bm))
        if alloc == 0:
            return None
        if off == 0 or off % cs:
            raise ReadError("extended L2 entry for guest cluster %d (0x%016x):"
                            " allocated subclusters but host offset 0x%x is "
                            "not a valid cluster offset" % (gc, e, off))
        host = self.pread(off, cs)
        if alloc == 0xFFFFFFFF:
            return host
        out = bytearray(cs)
        sc = self.sc_size
        for i in range(32):
            if alloc >> i & 1:
                out[i * sc:(i + 1) * sc] = host[i * sc:(i + 1) * sc]
        return bytes(out)

    def virtual_cluster(self, gc, offline_zero=False):
        """Guest cluster gc as a guest reads it (zoned read rule).  An
        OFFLINE zone "is neither read nor written": ReadError, or zeroes
        with offline_zero (what a copy that skips unreadable zones sees)."""
        cs = self.cs
        voff = gc * cs
        n = min(cs, self.size - voff)
        z = self.zones[voff // self.zone_size]   # zones are whole clusters
        if z.zcond == COND_OFFLINE:
            if offline_zero:
                return bytes(n)
            raise ReadError("guest offset 0x%x is in zone %d, which is "
                            "OFFLINE (entry 0x%016x)" % (voff, z.index,
                                                         z.entry))
        # READ ONLY zones read as usual: data below the stored write pointer
        limit = n if z.conventional else \
            max(0, min(n, z.start + z.wp - voff))
        if limit == 0:
            return bytes(n)
        d = self.read_cluster(gc)
        if d is None:
            return bytes(n)
        if limit < n:
            d = d[:limit] + bytes(n - limit)
        return d[:n]

    def iter_virtual(self, offline_zero=False):
        """Yield (offset, bytes) chunks of the whole virtual disk."""
        for gc in range(-(-self.size // self.cs)):
            yield gc * self.cs, self.virtual_cluster(gc, offline_zero)

    def read(self, off, length):
        """Guest bytes [off, off + length); a read that touches any byte of
        an OFFLINE zone is refused as a whole."""
        if off < 0 or length < 0 or off + length > self.size:
            raise ReadError("read of %d bytes at %d is beyond the virtual "
                            "disk size %d" % (length, off, self.size))
        if length == 0:
            return b""
        zs = self.zone_size
        for zi in range(off // zs, (off + length - 1) // zs + 1):
            z = self.zones[zi]
            if z.zcond == COND_OFFLINE:
                raise ReadError("the read of %d bytes at %d touches zone %d, "
                                "which is OFFLINE" % (length, off, zi))
        cs = self.cs
        out = bytearray()
        for gc in range(off // cs, (off + length - 1) // cs + 1):
            out += self.virtual_cluster(gc)
        skip = off - (off // cs) * cs
        return bytes(out[skip:skip + length])

    # ----------------------------------------------------------- report
    def info(self):
        cnt = {}
        for z in self.zones:
            cnt[z.cond] = cnt.get(z.cond, 0) + 1
        d = {
            "filename": self.path,
            "version": self.version,
            "virtual_size": self.size,
            "cluster_size": self.cs,
            "extended_l2": self.extended_l2,
            "subcluster_size": self.sc_size,
            "refcount_bits": 1 << self.refcount_order,
            "compression_type": ["deflate", "zstd"][self.compression_type],
            "incompatible_features": self.incompatible_features,
            "zone_model": "host-managed",
            "nr_zones": self.nr_zones,
            "zone_size": self.zone_size,
            "zone_capacity": self.zone_capacity,
            "last_zone_size": self.zones[-1].length,
            "last_zone_capacity": self.zones[-1].capacity,
            "max_open_zones": self.max_open_zones,
            "max_active_zones": self.max_active_zones,
            "max_append_bytes": self.max_append_bytes,
            "zone_table_offset": self.zone_table_offset,
            "zone_table_clusters": self.zone_table_clusters,
            "conventional_zones": self.nr_conv,
            "sequential_zones": self.nr_seq,
            "empty_zones": cnt.get("EMPTY", 0),
            "full_zones": cnt.get("FULL", 0),
            "closed_zones": cnt.get("CLOSED", 0),
            "implicit_open_zones": cnt.get("IMPLICIT_OPEN", 0),
            "explicit_open_zones": cnt.get("EXPLICIT_OPEN", 0),
            "active_zones": self.nr_active,
        }
        # Present only when not zero, as QEMU's read-only-zones and
        # offline-zones
        for key, cond in (("read_only_zones", "READ_ONLY"),
                          ("offline_zones", "OFFLINE")):
            if cnt.get(cond):
                d[key] = cnt[cond]
        return d

    # ------------------------------------------------------------ check
    def check(self):
        """Spec-level consistency: table entries, L1/L2, refcounts."""
        cs = self.cs
        v = self.violation
        refs = {}   # host cluster index -> references

        def ref(off, length=None, what=""):
            length = cs if length is None else length
            first = off // cs
            last = (off + length - 1) // cs
            for c in range(first, last + 1):
                refs[c] = refs.get(c, 0) + 1
            # The file may end inside the last cluster (QEMU writes only
            # the allocated subclusters); a cluster that starts at or after
            # the end of the file is not in the file at all.
            if (off // cs) * cs >= self.file_size or \
                    (last + 1) * cs - self.file_size >= cs:
                v("%s at 0x%x (+%d) lies beyond the end of the file (%d "
                  "bytes)" % (what, off, length, self.file_size))

        ref(0, cs, "header cluster")
        # L1
        if self.l1_table_offset == 0 and self.l1_size:
            v("l1_table_offset is 0 with l1_size %d" % self.l1_size)
        need_l1 = -(-self.size // (cs * self.l2_entries))
        if self.l1_size < need_l1:
            v("l1_size %d is smaller than the %d entries the virtual disk "
              "needs" % (self.l1_size, need_l1))
        if self.l1_size:
            ref(self.l1_table_offset, self.l1_size * 8, "L1 table")
        # refcount table
        rt_len = self.refcount_table_clusters * cs
        ref(self.refcount_table_offset, rt_len, "refcount table")
        rt_raw = self.pread(self.refcount_table_offset, rt_len)
        rt = struct.unpack(">%dQ" % (rt_len // 8), rt_raw)
        rbits = 1 << self.refcount_order
        rb_entries = cs * 8 // rbits
        rblocks = {}
        for i, e in enumerate(rt):
            if e & RT_RESERVED:
                v("refcount table entry %d (0x%016x): reserved bits 0-8 set"
                  % (i, e))
            off = e & RT_OFFSET_MASK
            if off == 0:
                continue
            if off % cs:
                v("refcount table entry %d (0x%016x): refcount block offset "
                  "not cluster aligned" % (i, e))
                continue
            ref(off, cs, "refcount block %d" % i)
            rblocks[i] = self.pread(off, cs)

        def refcount(c):
            ti, bi = divmod(c, rb_entries)
            blk = rblocks.get(ti)
            if blk is None:
                return 0
            if rbits >= 8:
                w = rbits // 8
                return int.from_bytes(blk[bi * w:(bi + 1) * w], "big")
            per = 8 // rbits
            byte = blk[bi // per]
            return (byte >> ((bi % per) * rbits)) & ((1 << rbits) - 1)

        # zone table
        ref(self.zone_table_offset, self.zone_table_clusters * cs,
            "write pointer table")
        # L1/L2/data
        l2_seen = set()
        copied_checks = []
        for l1i, l1e in enumerate(self.l1):
            if l1e & L1E_RESERVED:
                v("L1 entry %d (0x%016x): reserved bits set" % (l1i, l1e))
            l2off = l1e & L1E_OFFSET_MASK
            if l2off == 0:
                continue
            if l2off % cs:
                v("L1 entry %d (0x%016x): L2 offset not cluster aligned"
                  % (l1i, l1e))
                continue
            ref(l2off, cs, "L2 table (L1 index %d)" % l1i)
            copied_checks.append(("L1 entry %d" % l1i, l1e, l2off))
            if l2off in l2_seen:
                continue
            l2_seen.add(l2off)
            t = self.l2_table(l2off)
            for l2i in range(self.l2_entries):
                gc = l1i * self.l2_entries + l2i
                if self.extended_l2:
                    e, bm = t[2 * l2i], t[2 * l2i + 1]
                else:
                    e, bm = t[l2i], 0
                where = "L2 entry for guest cluster %d (0x%016x)" % (gc, e)
                if gc * cs >= self.size and (e or bm):
                    v("%s: maps a cluster beyond the virtual disk size" % where)
                if e & L2E_COMPRESSED:
                    if e & COPIED:
                        v("%s: compressed cluster with bit 63 set" % where)
                    if bm:
                        v("%s: compressed cluster with non-zero subcluster "
                          "bitmap 0x%016x" % (where, bm))
                    coff, end = self.compressed_params(e)
                    ref(coff, end - coff, "compressed cluster")
                    continue
                if e & L2E_STD_RESERVED:
                    v("%s: reserved bits set" % where)
                off = e & L2E_OFFSET_MASK
                if self.extended_l2:
                    if e & 1:
                        v("%s: bit 0 (zero flag) set with extended L2 entries"
                          % where)
                    alloc, zero = bm & 0xFFFFFFFF, bm >> 32
                    if alloc & zero:
                        v("%s: subcluster bitmap 0x%016x has subclusters both "
                          "allocated and reading as zeros" % (where, bm))
                    if alloc and off == 0:
                        v("%s: allocated subclusters without host offset"
                          % where)
                if off == 0:
                    if e & COPIED:
                        v("%s: host offset 0 with bit 63 set and no external "
                          "data file" % where)
                    continue
                if off % cs:
                    v("%s: host cluster offset 0x%x not cluster aligned"
                      % (where, off))
                    continue
                ref(off, cs, "data cluster (guest cluster %d)" % gc)
                copied_checks.append((where, e, off))
        # bitmaps
        if self.bitmaps_ext is not None and \
                self.autoclear_features & AUTOCLEAR_BITMAPS:
            self._check_bitmaps(ref)
        # compare
        stored = {}
        for ti, blk in rblocks.items():
            step = 4096
            for base in range(0, len(blk), step):
                if not any(blk[base:base + step]):
                    continue
                first = base * 8 // rbits
                for bi in range(first, (base + step) * 8 // rbits):
                    c = ti * rb_entries + bi
                    rc = refcount(c)
                    if rc:
                        stored[c] = rc
        leaks = 0
        for c in sorted(set(refs) | set(stored)):
            r = refs.get(c, 0)
            rc = stored.get(c, 0)
            if rc == r:
                continue
            if r == 0:
                leaks += 1
                continue
            if rc > r:
                # More references counted than exist: space is wasted, the
                # spec does not call it an error in general (a refcount
                # above 1 only forces COW).  The write pointer table's
                # "refcount 1" is checked separately below.
                self.warnings.append("host cluster %d (offset 0x%x): "
                                     "refcount %d exceeds its %d references"
                                     % (c, c * cs, rc, r))
                continue
            v("host cluster %d (offset 0x%x): refcount %d but %d references"
              % (c, c * cs, rc, r))
        if leaks:
            self.warnings.append("%d leaked clusters (refcount > 0, no "
                                 "reference)" % leaks)
        for where, e, off in copied_checks:
            rc = refcount(off // cs)
            if bool(e & COPIED) != (rc == 1):
                v("%s: bit 63 (copied) is %d but refcount is %d"
                  % (where, 1 if e & COPIED else 0, rc))
        # The write pointer table is "refcounted like any other metadata
        # cluster": a refcount of 0 is a violation (above), one above its
        # single reference wastes space like for any other cluster.
        return self.violations

    def _check_bitmaps(self, ref):
        cs = self.cs
        off, d = self.bitmaps_ext
        v = self.violation
        if len(d) < 24:
            v("bitmaps extension length %d is less than 24" % len(d))
            return
        nb = be("I", d, 0)
        dsize = be("Q", d, 8)
        doff = be("Q", d, 16)
        if be("I", d, 4):
            v("bitmaps extension reserved bytes 4-7 are not zero")
        if nb < 1:
            v("bitmaps extension nb_bitmaps is 0")
        if doff % cs:
            v("bitmap_directory_offset 0x%x not cluster aligned" % doff)
            return
        ref(doff, max(dsize, 1), "bitmap directory")
        dirb = self.pread(doff, dsize)
        p = 0
        for i in range(nb):
            if p + 24 > len(dirb):
                v("bitmap directory entry %d is truncated" % i)
                return
            toff = be("Q", dirb, p)
            tsize = be("I", dirb, p + 8)
            name_size = be("H", dirb, p + 18)
            extra = be("I", dirb, p + 20)
            if toff % cs:
                v("bitmap %d: bitmap_table_offset 0x%x not cluster aligned"
                  % (i, toff))
            elif tsize:
                ref(toff, tsize * 8, "bitmap table %d" % i)
                tab = struct.unpack(">%dQ" % tsize, self.pread(toff, tsize * 8))
                for e in tab:
                    o = e & 0x00FFFFFFFFFFFE00
                    if o:
                        ref(o, cs, "bitmap data cluster")
            p += (24 + extra + name_size + 7) & ~7


# ---------------------------------------------------------------- main
def open_or_die(path):
    try:
        return Image(path)
    except Refused as e:
        sys.stderr.write("zqcow2: %s: refused: %s\n" % (path, e))
        sys.exit(2)
    except OSError as e:
        sys.stderr.write("zqcow2: %s: %s\n" % (path, e))
        sys.exit(2)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    cmd = argv[1]
    if cmd == "info":
        img = open_or_die(argv[2])
        print(json.dumps(img.info(), indent=2))
        return 0
    if cmd == "report":
        writer = "--writer" in argv[2:]
        path = [a for a in argv[2:] if a != "--writer"][0]
        img = open_or_die(path)
        if writer:
            img.writer_open()
        print(json.dumps([z.as_dict() for z in img.zones], indent=1))
        return 0
    if cmd == "dump":
        offline_zero = "--offline-zero" in argv[2:]
        rest = [a for a in argv[2:] if a != "--offline-zero"]
        if len(rest) != 2:
            sys.stderr.write(__doc__)
            return 2
        img = open_or_die(rest[0])
        try:
            off_zones = [z.index for z in img.zones
                         if z.zcond == COND_OFFLINE]
            if off_zones and not offline_zero:
                raise ReadError("zones %s are OFFLINE: they cannot be read"
                                % off_zones)
            with open(rest[1], "wb") as out:
                for off, data in img.iter_virtual(offline_zero):
                    if any(data):
                        out.seek(off)
                        out.write(data)
                out.truncate(img.size)
        except ReadError as e:
            sys.stderr.write("zqcow2: %s: read error: %s\n" % (rest[0], e))
            return 3
        return 0
    if cmd == "read":
        if len(argv) != 5:
            sys.stderr.write(__doc__)
            return 2
        img = open_or_die(argv[2])
        try:
            data = img.read(int(argv[3], 0), int(argv[4], 0))
        except ReadError as e:
            sys.stderr.write("zqcow2: %s: read error: %s\n" % (argv[2], e))
            return 3
        sys.stdout.buffer.write(data)
        return 0
    if cmd == "check":
        try:
            img = Image(argv[2])
        except Refused as e:
            print("refused: %s" % e)
            return 1
        viol = img.check()
        for w in img.warnings:
            print("warning: %s" % w)
        for m in viol:
            print("violation: %s" % m)
        if viol:
            return 1
        print("no violations")
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
