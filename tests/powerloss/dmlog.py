"""Reader and replayer for QEMU's blklogwrites logs (dm-log-writes format).

The format, as block/blklogwrites.c writes it (taken from Linux's
drivers/md/dm-log-writes.c); all fields little-endian, S = the log sector
size (option log-sector-size, 512 by default, a power of two):

  sector 0 (S bytes): the super block
      u64 magic       0x6a736677736872
      u64 version     1
      u64 nr_entries  entries logged so far; QEMU rewrites (and flushes) the
                      super block only at a FLUSH entry and every
                      log-super-update-interval (4096) entries, and not at
                      close, so entries after the last flush may be missing
                      from the count: the reader walks the entries instead
      u32 sectorsize  S
      zero padding to S bytes
  then one entry after the other, from sector 1 on:
      header (S bytes):
          u64 sector      first sector written, in units of S, in the file
                          under the blklogwrites node (the qcow2 image file)
          u64 nr_sectors  length in units of S
          u64 flags       1 = FLUSH, 2 = FUA, 4 = DISCARD, 8 = MARK
          u64 data_len    0 (only Linux's MARK entries use it)
          zero padding to S bytes
      data: nr_sectors * S bytes of what was written, except for DISCARD
          entries, which have none.  A write-zeroes request is logged as a
          plain write whose data are zeroes.  A FLUSH entry has sector 0,
          nr_sectors 0 and no data.

QEMU logs a request after the request to the image file has completed and
before it completes to the layer above, one entry at a time, so the entries
are in completion order and a FLUSH entry comes after every write that
completed before the flush was issued.  QEMU never sets FUA (the block layer
emulates FUA with a write and a FLUSH) nor MARK, but the reader accepts them.
A header of all zeroes, the end of the file, or a truncated entry ends the
log.
"""

import struct

MAGIC = 0x6a736677736872
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8
SUPER = struct.Struct('<QQQI')
ENTRY = struct.Struct('<QQQQ')


class Entry:
    __slots__ = ('idx', 'offset', 'length', 'flags', 'data')

    def __init__(self, idx, offset, length, flags, data):
        self.idx = idx
        self.offset = offset        # bytes, in the image file
        self.length = length        # bytes
        self.flags = flags
        self.data = data            # bytes (None for FLUSH, DISCARD, MARK)

    @property
    def is_flush(self):
        return bool(self.flags & FLUSH)

    @property
    def is_write(self):
        return not self.flags & (FLUSH | DISCARD | MARK)

    @property
    def is_discard(self):
        return bool(self.flags & DISCARD)

    def __repr__(self):
        if self.is_flush:
            return '#%d FLUSH' % self.idx
        return '#%d %s %#x+%#x%s' % (
            self.idx, 'DISCARD' if self.is_discard else 'WRITE', self.offset,
            self.length, ' FUA' if self.flags & FUA else '')


def read_super(buf):
    magic, version, nr, ssize = SUPER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise ValueError('not a dm-log-writes log (magic %#x)' % magic)
    if version != 1:
        raise ValueError('unsupported log version %d' % version)
    if ssize < ENTRY.size or ssize & (ssize - 1):
        raise ValueError('bad log sector size %d' % ssize)
    return nr, ssize


def count_entries(path, start=None, ssize=512):
    """Complete entries in a log that is still being written, for a caller
    that notes where each command's entries begin and end.  start: a
    (position, count) pair from an earlier call, to go on from there."""
    pos, n = start or (ssize, 0)
    with open(path, 'rb') as f:
        f.seek(0, 2)
        size = f.tell()
        while pos + ssize <= size:
            f.seek(pos)
            hdr = f.read(ENTRY.size)
            sector, nr, flags, _ = ENTRY.unpack(hdr)
            if not (sector or nr or flags):
                break
            end = pos + ssize + (0 if flags & DISCARD else nr * ssize)
            if end > size:
                break
            pos, n = end, n + 1
    return pos, n


def read_log(path):
    """All entries of a log, in order; returns (entries, nr_entries in the
    super block, sector size)."""
    with open(path, 'rb') as f:
        buf = f.read()
    nr_super, ssize = read_super(buf)
    entries = []
    pos = ssize
    while pos + ssize <= len(buf):
        sector, nr, flags, _ = ENTRY.unpack_from(buf, pos)
        if not (sector or nr or flags):
            break
        if flags & ~(FLUSH | FUA | DISCARD | MARK):
            raise ValueError('log entry %d at %#x: bad flags %#x'
                             % (len(entries), pos, flags))
        pos += ssize
        data = None
        if not flags & (DISCARD | FLUSH | MARK):
            if pos + nr * ssize > len(buf):
                break                           # truncated entry
            data = buf[pos:pos + nr * ssize]
            pos += nr * ssize
        elif flags & MARK and not flags & DISCARD:
            pos += nr * ssize
        entries.append(Entry(len(entries), sector * ssize, nr * ssize, flags,
                             data))
    return entries, nr_super, ssize


def apply(img, e, sectors=None, ssize=512):
    """Apply entry e to the bytearray img (an image file's content).  A
    DISCARD is applied as zeroes (a hole punched in the file).  sectors: a
    set of sector indexes within the entry to apply (a torn write), or None
    for all of it."""
    if not (e.is_write or e.is_discard) or not e.length:
        return
    end = e.offset + e.length
    if len(img) < end:
        if e.is_discard:
            end = len(img)              # nothing to punch beyond the end
            if end <= e.offset:
                return
        else:
            img.extend(bytes(end - len(img)))
    if sectors is None:
        if e.is_discard:
            img[e.offset:end] = bytes(end - e.offset)
        else:
            img[e.offset:end] = e.data
        return
    for s in sectors:
        a = e.offset + s * ssize
        if a >= end:
            continue
        b = min(a + ssize, end)
        img[a:b] = bytes(b - a) if e.is_discard else \
            e.data[s * ssize:s * ssize + (b - a)]
