/*
 * zoracle: compare a zoned virtio-blk disk (a zoned qcow2 image) with the
 * kernel's own zoned emulation (null_blk, memory backed, same geometry) as
 * an oracle, from inside the guest (tests/guest/oracle.sh).  Any zoned block
 * device will do as DEV_A: tests/guest/nvme2.sh compares an NVMe zoned
 * namespace on a zoned qcow2 image (/dev/nvmeXnY; its sysfs queue
 * attributes are read by the disk's name like a virtio disk's; it has no
 * conventional zones, and max_sectors_kb is 512 from the controller's MDTS).
 *
 *   zoracle geometry DEV            print the geometry as null_blk configfs
 *                                   attributes (sizes in MiB), one a line
 *   zoracle oracle DEV_A DEV_B SEED NOPS [LABEL]
 *                                   a seeded random op sequence on both
 *   zoracle merge DEV TRIES         fill a zone to one sector short of its
 *                                   end, then a 1 KiB O_DIRECT write across
 *                                   the boundary; counts the failed tries
 *
 * oracle: each op is applied to DEV_A, then to DEV_B (never concurrently
 * between the devices); then the results (bytes or -errno), the zone
 * reports (type, cond, wp, capacity, len, flags) and the data of the zones
 * the op touched (all zones every 50 ops and at the end) are compared:
 * equal below the write pointer; from the write pointer of a zone that is not
 * FULL on, A must read zeroes and null_blk 0x00 or 0xff (6.12's null_blk
 * fills unwritten sectors of zoned devices with 0xff: the device's choice).
 * Ops are biased to the edges: the write pointer, +-512, capacity, zone end,
 * disk end and past it, zero and unaligned lengths, ranges over several
 * zones, 512 B..1 MiB and more; single pwrite()s, batches
 * of 2-8 writes in flight at once (io_submit through syscall(2): no libaio
 * needed), the zone ioctls on single zones, misaligned and multi-zone ranges
 * and the whole disk, reads, and zone reports at odd sectors.
 *
 * Each difference is one line "DIFF seed=S op=N <op>: <what>"; the last line
 * is "ORACLE label=L seed=S ops=N compared=N diffs=N allowed=N".
 *
 * Where the devices may legitimately differ, the set of allowed outcomes is
 * accepted: counted per kind on the "allowed differences:" line, each shown
 * as an "ALLOWED(kind)" line with ZORACLE_VERBOSE=1:
 *  victim       at the open limit a write (or explicit open) closes an
 *               implicitly open zone; which one is the device's choice
 *               (null_blk: round robin, qcow2: least recently written): IMP_OPEN
 *               on one device, CLOSED on the other, same write pointer, same
 *               number of zones in each condition.
 *  order        ops in flight to two or more sequential zones at once (a
 *               batch, one write split at a zone boundary, a zone op on a
 *               range: the kernel sends one request per zone) reach the
 *               device in any order; under open/active limits which of them
 *               gets the resource error (or EIO, when the kernel split it) and
 *               which zones end up open, closed or written may differ.
 *               Overlapping writes in flight to a conventional zone likewise.
 *  partial      a write that failed on both devices may have been written in
 *               part: the kernel splits it at max_sectors_kb (1280 KiB
 *               virtio-blk, 127 KiB null_blk) and the parts before the failing
 *               one are written.  Each write pointer must lie between its old
 *               position and the end of the failed write, and the data below
 *               the lower one must be the same.
 *  merged-with-failed  the kernel merges writes queued for one zone into one
 *               request up to max_sectors_kb; a request that crosses the zone
 *               capacity fails as a whole, so good writes merged with a bad
 *               one fail on the device with the larger max_sectors_kb only.
 *  split-errno  a write the kernel sends as several requests fails with the
 *               error of whichever failed request completes first (the others
 *               of that zone are aborted with EIO).
 *  behind-failed  writes in flight behind a failed write to the same zone
 *               fail at the device, are aborted by the kernel (EIO), or are
 *               written when they match the write pointer the kernel reads
 *               back: it depends on timing.
 *  close-empty-full  closing an EMPTY or FULL zone: qcow2 through virtio-blk
 *               succeeds and changes nothing (ZBC), null_blk fails with EIO
 *               (ZNS: invalid transition; so does an NVMe zoned namespace).
 *  finish-resources  finishing an EMPTY or CLOSED zone: null_blk needs open
 *               (and active) resources, at the open limit it closes an
 *               implicitly open zone or fails with ETOOMANYREFS/EOVERFLOW
 *               (ZBC); qcow2 needs none (ZNS).
 *  nullblk-open-closed  null_blk (null_check_open()) closes an implicitly
 *               open zone to open another only while fewer than max_active
 *               zones are active, even when the zone to open is CLOSED, i.e.
 *               already active: at both limits it refuses the write or open
 *               of a CLOSED zone (ETOOMANYREFS, EIO when split) that qcow2
 *               accepts by closing an implicitly open zone (the active count
 *               does not change).
 *  The write pointer of FULL and conventional zones is not defined
 *  (ZBC/ZNS); it is not compared.  Beyond the write pointer (and beyond the
 *  capacity of a FULL zone) null_blk reads 0xff; qcow2 must read zeroes.
 * After any difference (allowed or not) the differing zones are brought back
 * in line on both devices (close both if only IMP_OPEN vs CLOSED, else reset
 * both; conventional zones get A's data), so one defect is reported once and
 * the sequence goes on.  ZORACLE_SELFTEST=1 (two null_blk devices) lets A
 * read 0xff beyond the write pointer too: a test of this tool, which must
 * find no difference.
 *
 * Build (static, the guest has no compiler): gcc -O2 -static -o zoracle zoracle.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/aio_abi.h>
#include <linux/blkzoned.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef uint64_t u64;
#define MAXZ 512
#define MAXBUF (8u << 20)
#define MAXB 8
#define MAXOUT 300

struct dev {
    const char *path;
    char name[64];
    int fd;
    u64 size;
    unsigned nz;
    struct blk_zone z[MAXZ];
    aio_context_t ctx;
};

static struct dev A, B;
static u64 seed;
static int opno, verbose, ndiff, nallowed, nout;
static char opdesc[256];
static char *bufw, *bufa, *bufb;
static unsigned max_open, max_active, nconv;
static u64 zsize; /* bytes */
static u64 maxio_a, maxio_b; /* max_sectors_kb, in bytes */

/* ------------------------------------------------------------ helpers */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "zoracle: ");
    vfprintf(stdout, fmt, ap);
    fprintf(stdout, "\n");
    va_end(ap);
    exit(2);
}

static u64 rs;
static u64 rnd(void)
{
    /* splitmix64 */
    u64 z = (rs += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static u64 rn(u64 n) { return n ? rnd() % n : 0; }
static int chance(int pct) { return (int)rn(100) < pct; }

static const char *ename(long r)
{
    static char b[4][48];
    static int i;
    i = (i + 1) % 4;
    if (r >= 0) {
        snprintf(b[i], sizeof(b[i]), "%ld", r);
    } else {
        const char *n = "";
        switch (-r) {
        case EIO: n = "EIO"; break;
        case EINVAL: n = "EINVAL"; break;
        case ENOSPC: n = "ENOSPC"; break;
        case ETOOMANYREFS: n = "ETOOMANYREFS"; break;
        case EOVERFLOW: n = "EOVERFLOW"; break;
        case EAGAIN: n = "EAGAIN"; break;
        case ENOTTY: n = "ENOTTY"; break;
        case EOPNOTSUPP: n = "EOPNOTSUPP"; break;
        case ENXIO: n = "ENXIO"; break;
        case EFBIG: n = "EFBIG"; break;
        case EBADF: n = "EBADF"; break;
        default: n = "E?"; break;
        }
        snprintf(b[i], sizeof(b[i]), "-%ld(%s)", -r, n);
    }
    return b[i];
}

static struct blk_zone before[MAXZ];
static int selftest;

static void diff(const char *fmt, ...)
{
    va_list ap;
    int imp = 0, exp = 0, closed = 0;
    ndiff++;
    if (++nout > MAXOUT) {
        if (nout == MAXOUT + 1)
            printf("(further differences not shown)\n");
        return;
    }
    printf("DIFF seed=%" PRIu64 " op=%d %s: ", seed, opno, opdesc);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    /* the open and active zones before the op (the same on both devices) */
    for (unsigned i = 0; opno > 0 && i < MAXZ; i++) {
        imp += before[i].cond == BLK_ZONE_COND_IMP_OPEN;
        exp += before[i].cond == BLK_ZONE_COND_EXP_OPEN;
        closed += before[i].cond == BLK_ZONE_COND_CLOSED;
    }
    if (opno > 0)
        printf(" [before: %d implicitly open, %d explicitly open, %d closed]", imp, exp, closed);
    printf("\n");
    fflush(stdout);
}

static unsigned sysfs_u(const char *dev, const char *attr)
{
    char p[256], buf[64];
    const char *b = strrchr(dev, '/');
    FILE *f;
    unsigned v = 0;
    snprintf(p, sizeof(p), "/sys/block/%s/queue/%s", b ? b + 1 : dev, attr);
    f = fopen(p, "r");
    if (!f)
        return (unsigned)-1;
    if (fgets(buf, sizeof(buf), f))
        v = strtoul(buf, NULL, 10);
    fclose(f);
    return v;
}

/* ---------------------------------------------------------- device ops */

static void dev_open(struct dev *d, const char *path)
{
    memset(d, 0, sizeof(*d));
    d->path = path;
    snprintf(d->name, sizeof(d->name), "%s", path);
    d->fd = open(path, O_RDWR | O_DIRECT);
    if (d->fd < 0)
        die("open %s: %s", path, strerror(errno));
    if (ioctl(d->fd, BLKGETSIZE64, &d->size) < 0)
        die("BLKGETSIZE64 %s: %s", path, strerror(errno));
    if (syscall(SYS_io_setup, 64, &d->ctx) < 0)
        die("io_setup: %s", strerror(errno));
}

/* BLKREPORTZONE from sector, up to nr zones; returns 0 or -errno */
static long report(struct dev *d, u64 sector, unsigned nr, struct blk_zone *out,
                   unsigned *got, unsigned *flags)
{
    size_t sz = sizeof(struct blk_zone_report) + (size_t)nr * sizeof(struct blk_zone);
    struct blk_zone_report *r = calloc(1, sz);
    long rc;
    r->sector = sector;
    r->nr_zones = nr;
    if (ioctl(d->fd, BLKREPORTZONE, r) < 0) {
        rc = -errno;
        *got = 0;
    } else {
        rc = 0;
        *got = r->nr_zones;
        if (out)
            memcpy(out, r->zones, r->nr_zones * sizeof(struct blk_zone));
    }
    if (flags)
        *flags = r->flags;
    free(r);
    return rc;
}

static void refresh(struct dev *d)
{
    unsigned got;
    long rc = report(d, 0, MAXZ, d->z, &got, NULL);
    if (rc < 0)
        die("report %s: %s", d->path, ename(rc));
    d->nz = got;
}

static long do_pwrite(struct dev *d, u64 off, size_t len, const void *buf)
{
    ssize_t r = pwrite(d->fd, buf, len, off);
    return r < 0 ? -errno : r;
}

static long do_pread(struct dev *d, u64 off, size_t len, void *buf)
{
    ssize_t r = pread(d->fd, buf, len, off);
    return r < 0 ? -errno : r;
}

/* n writes in flight at once (one io_submit); results in res[] */
static void do_batch(struct dev *d, int n, const u64 *off, const size_t *len,
                     char *const *bufs, long *res)
{
    struct iocb cb[MAXB], *cbp[MAXB];
    struct io_event ev[MAXB];
    int i, done = 0;
    memset(cb, 0, sizeof(cb));
    for (i = 0; i < n; i++) {
        cb[i].aio_fildes = d->fd;
        cb[i].aio_lio_opcode = IOCB_CMD_PWRITE;
        cb[i].aio_buf = (u64)(uintptr_t)bufs[i];
        cb[i].aio_nbytes = len[i];
        cb[i].aio_offset = off[i];
        cb[i].aio_data = i;
        cbp[i] = &cb[i];
        res[i] = -EAGAIN;
    }
    while (done < n) {
        long s = syscall(SYS_io_submit, d->ctx, n - done, cbp + done);
        if (s < 0) { /* this iocb was refused at submission */
            res[done++] = -errno;
            continue;
        }
        long got = 0;
        while (got < s) {
            long e = syscall(SYS_io_getevents, d->ctx, 1, s - got, ev, NULL);
            if (e < 0) {
                if (errno == EINTR)
                    continue;
                die("io_getevents: %s", strerror(errno));
            }
            for (long k = 0; k < e; k++)
                res[ev[k].data] = ev[k].res;
            got += e;
        }
        done += s;
    }
}

static long do_zmgmt(struct dev *d, unsigned long req, u64 sec, u64 nr)
{
    struct blk_zone_range r = { .sector = sec, .nr_sectors = nr };
    return ioctl(d->fd, req, &r) < 0 ? -errno : 0;
}

/* ------------------------------------------------------------ compare */

static const char *cname(int c)
{
    switch (c) {
    case BLK_ZONE_COND_NOT_WP: return "NOT_WP";
    case BLK_ZONE_COND_EMPTY: return "EMPTY";
    case BLK_ZONE_COND_IMP_OPEN: return "IMP_OPEN";
    case BLK_ZONE_COND_EXP_OPEN: return "EXP_OPEN";
    case BLK_ZONE_COND_CLOSED: return "CLOSED";
    case BLK_ZONE_COND_READONLY: return "READONLY";
    case BLK_ZONE_COND_FULL: return "FULL";
    case BLK_ZONE_COND_OFFLINE: return "OFFLINE";
    }
    return "?";
}

static int wp_defined(const struct blk_zone *z)
{
    return z->type != BLK_ZONE_TYPE_CONVENTIONAL &&
           (z->cond == BLK_ZONE_COND_EMPTY || z->cond == BLK_ZONE_COND_IMP_OPEN ||
            z->cond == BLK_ZONE_COND_EXP_OPEN || z->cond == BLK_ZONE_COND_CLOSED);
}

static int zone_eq(const struct blk_zone *a, const struct blk_zone *b)
{
    return a->start == b->start && a->len == b->len && a->type == b->type &&
           a->cond == b->cond && a->capacity == b->capacity &&
           a->non_seq == b->non_seq && a->reset == b->reset &&
           (!wp_defined(a) || a->wp == b->wp);
}

static const char *zstr(const struct blk_zone *z)
{
    static char b[4][160];
    static int i;
    i = (i + 1) % 4;
    snprintf(b[i], sizeof(b[i]), "{start 0x%llx len 0x%llx cap 0x%llx wp +0x%llx %s type %d%s%s}",
             (unsigned long long)z->start, (unsigned long long)z->len,
             (unsigned long long)z->capacity, (unsigned long long)(z->wp - z->start),
             cname(z->cond), z->type, z->non_seq ? " non_seq" : "", z->reset ? " reset" : "");
    return b[i];
}

static int is_open(int c) { return c == BLK_ZONE_COND_IMP_OPEN || c == BLK_ZONE_COND_EXP_OPEN; }
static int is_active(int c) { return is_open(c) || c == BLK_ZONE_COND_CLOSED; }

/*
 * Compare what both devices read at [off, off + len) (bufa, bufb), zone by
 * zone with the current reports.  Below the write pointer (and in
 * conventional and FULL zones) the data must be the same.  From the write
 * pointer of a sequential zone on, the zoned qcow2 disk (A) must read zeroes;
 * null_blk (B) reads 0xff there (6.12 fills unwritten sectors of a zoned
 * device with 0xff: a device's choice in ZBC/ZNS), or zeroes.  Reports the
 * first problem per zone when report_it; returns 1 if all is well.
 */
static int data_cmp(u64 off, u64 len, const char *what, int report_it)
{
    int ok = 1;
    u64 end = off + len;
    for (unsigned i = 0; i < A.nz; i++) {
        const struct blk_zone *za = &A.z[i], *zb = &B.z[i];
        u64 zs = za->start * 512, ze = zs + za->len * 512;
        u64 s = off > zs ? off : zs, e = end < ze ? end : ze;
        if (s >= e)
            continue;
        /* where each device's written data end: the zone end for
         * conventional zones, the capacity for FULL ones (beyond it null_blk
         * reads 0xff too), else the write pointer */
        u64 wpa = ze, wpb = ze;
        if (za->type != BLK_ZONE_TYPE_CONVENTIONAL)
            wpa = za->cond == BLK_ZONE_COND_FULL ? zs + za->capacity * 512 : za->wp * 512;
        if (zb->type != BLK_ZONE_TYPE_CONVENTIONAL)
            wpb = zb->cond == BLK_ZONE_COND_FULL ? zs + zb->capacity * 512 : zb->wp * 512;
        u64 same = wpa < wpb ? wpa : wpb;
        for (u64 k = s; k < e; k++) {
            unsigned char a = bufa[k - off], b = bufb[k - off];
            const char *why = NULL;
            if (k < same) {
                if (a != b)
                    why = "data differ";
            } else if (k >= wpa && a != 0 && !(selftest && a == 0xff)) {
                why = "A reads non-zero beyond its write pointer";
            } else if (k >= wpb && b != 0 && b != 0xff) {
                why = "B reads neither 0x00 nor 0xff beyond its write pointer";
            } else if (k < wpa && k < wpb && a != b) {
                why = "data differ";
            }
            if (why) {
                if (report_it)
                    diff("%s: zone %u: %s at disk offset 0x%llx (zone +0x%llx, wp A +0x%llx "
                         "B +0x%llx): A=%02x B=%02x", what, i, why, (unsigned long long)k,
                         (unsigned long long)(k - zs), (unsigned long long)(wpa - zs),
                         (unsigned long long)(wpb - zs), a, b);
                ok = 0;
                break;
            }
        }
    }
    return ok;
}

/* read zone i of both devices and compare; returns 1 if equal */
static int zone_data_eq(unsigned i, int report_it)
{
    struct blk_zone *za = &A.z[i];
    u64 off = za->start * 512, len = za->len * 512;
    long ra = do_pread(&A, off, len, bufa), rb = do_pread(&B, off, len, bufb);
    if (ra != rb || ra != (long)len) {
        if (report_it)
            diff("read of zone %u (0x%llx+0x%llx): A=%s B=%s", i, (unsigned long long)off,
                 (unsigned long long)len, ename(ra), ename(rb));
        return 0;
    }
    return data_cmp(off, len, "zone read", report_it);
}

/* ------------------------------------------------------- op generation */

static u64 disk_bytes(void) { return A.size; }

static int pick_zone(void)
{
    int r = rn(100);
    if (r < 30) {
        int idx[MAXZ], n = 0;
        for (unsigned i = 0; i < A.nz; i++)
            if (is_active(A.z[i].cond))
                idx[n++] = i;
        if (n)
            return idx[rn(n)];
    }
    if (r < 45)
        return A.nz - 1;
    if (r < 52 && nconv)
        return rn(nconv);
    if (r < 58)
        return nconv < A.nz ? nconv : 0;
    return rn(A.nz);
}

static u64 zwp_bytes(const struct blk_zone *z)
{
    if (z->type == BLK_ZONE_TYPE_CONVENTIONAL)
        return (z->start + rn(z->len)) * 512;
    if (z->cond == BLK_ZONE_COND_FULL)
        return (z->start + z->capacity) * 512;
    return z->wp * 512;
}

static u64 pick_off(int zi)
{
    struct blk_zone *z = &A.z[zi];
    u64 s = z->start * 512, len = z->len * 512, cap = z->capacity * 512;
    u64 wp = zwp_bytes(z), off;
    switch (rn(18)) {
    case 0: case 1: case 2: case 3: case 4: case 5: off = wp; break;
    case 6: off = wp > s ? wp - 512 : wp + 512; break;
    case 7: off = wp + 512; break;
    case 8: off = wp + 4096; break;
    case 9: off = s; break;
    case 10: off = s + cap - 512; break;
    case 11: off = s + cap; break;
    case 12: off = s + len - 512; break;
    case 13: off = s + len; break;
    case 14: off = disk_bytes() - 512 * rn(3); break;
    case 15: off = disk_bytes() + 4096 * rn(2); break;
    default: off = s + rn(len / 512) * 512; break;
    }
    if (chance(2))
        off += 100; /* not sector aligned */
    return off;
}

static size_t pick_len(int zi, u64 off)
{
    struct blk_zone *z = &A.z[zi];
    u64 s = z->start * 512, len = z->len * 512, cap = z->capacity * 512;
    long long l;
    switch (rn(16)) {
    case 0: l = chance(40) ? 0 : 512; break;
    case 1: l = 512; break;
    case 2: l = 1024; break;
    case 3: l = 4096; break;
    case 4: l = 65536; break;
    case 5: l = 131072; break;
    case 6: l = 1 << 20; break;
    case 7: case 8: l = (1 + rn(2048)) * 512; break;
    case 9: l = (long long)(s + cap) - (long long)off; break;
    case 10: l = (long long)(s + cap) - (long long)off + 512; break;
    case 11: l = (long long)(s + len) - (long long)off; break;
    case 12: case 13: l = (long long)(s + len) - (long long)off + 512 * (1 + rn(16)); break;
    case 14: l = (long long)(s + len) - (long long)off + (1 + rn(4)) * 65536; break;
    default: l = (long long)disk_bytes() - (long long)off + 512 * rn(2); break;
    }
    if (l <= 0)
        l = 512;
    if (l > (long long)(MAXBUF / 2))
        l = MAXBUF / 2;
    if (chance(1))
        l += 100; /* not a multiple of the sector size */
    return l;
}

static void fill(char *buf, size_t len, u64 tag)
{
    u64 save = rs, *p = (u64 *)buf;
    rs = tag * 0x9e3779b97f4a7c15ULL + seed;
    for (size_t i = 0; i < len / 8; i++)
        p[i] = rnd();
    for (size_t i = len / 8 * 8; i < len; i++)
        buf[i] = rnd();
    rs = save;
}

/* zones [first, last] that the byte range touches (clamped to the disk) */
static void zones_of(u64 off, u64 len, unsigned *first, unsigned *last)
{
    u64 end = off + (len ? len : 1);
    if (off >= disk_bytes()) {
        *first = 1;
        *last = 0;
        return;
    }
    if (end > disk_bytes())
        end = disk_bytes();
    *first = off / zsize;
    *last = (end - 1) / zsize;
}

/* ----------------------------------------------------------- one step */

/* per zone, this step: 1 touched by the op (compare its data); 2 diverged in
 * an allowed way or data differ: reset (or copy) on both after the step;
 * 3: compare the data (below the lower write pointer), then reset */
static unsigned char touched[MAXZ];

/* what the current step did, for judging differences */
#define MAXW (MAXB + 2)
static struct step {
    int nondet;    /* ops in flight to several sequential zones, with limits */
    int may_close; /* may implicitly close a zone: write, open, finish */
    int all;       /* compare the data of all zones */
    int nw;        /* writes: range and results on A and B */
    u64 woff[MAXW], wlen[MAXW];
    long wa[MAXW], wb[MAXW];
    int zop;       /* zone op: index in zreqs[], or -1 */
    u64 zsec, znr;
    long za, zb;
} st;

enum { AL_VICTIM, AL_ORDER, AL_PARTIAL, AL_BEHIND, AL_SPLIT, AL_MERGED, AL_CLOSE, AL_FINISH,
       AL_NBACTIVE, AL_N };
static const char *al_names[AL_N] = { "victim", "order", "partial", "behind-failed",
                                      "split-errno", "merged-with-failed", "close-empty-full",
                                      "finish-resources", "nullblk-open-closed" };
/* zones null_blk refused to open this step (see nb_refuses()) */
static unsigned char nbq[MAXZ];

/*
 * null_blk (null_check_open()) closes an implicitly open zone to open
 * another only while fewer than max_active zones are active, even when the
 * zone to open is CLOSED, i.e. already active: at both limits it fails the
 * write (or explicit open) of a CLOSED zone with the open resource error
 * (split writes: EIO) where qcow2 closes an implicitly open zone and goes
 * on (the active count does not change), as ZBC and ZNS do.  Writes behind
 * the refused one in the same zone then fail on null_blk only.
 */
static int nb_refuses(unsigned zone)
{
    int imp = 0, open = 0, active = 0;
    if (zone >= A.nz || before[zone].cond != BLK_ZONE_COND_CLOSED || !max_open || !max_active)
        return 0;
    for (unsigned i = 0; i < A.nz; i++) {
        imp += before[i].cond == BLK_ZONE_COND_IMP_OPEN;
        open += is_open(before[i].cond);
        active += is_active(before[i].cond);
    }
    return imp > 0 && (unsigned)open >= max_open && (unsigned)active >= max_active;
}
static int al_count[AL_N];

static void allow(int kind, const char *fmt, ...)
{
    va_list ap;
    nallowed++;
    al_count[kind]++;
    if (!verbose)
        return;
    printf("ALLOWED(%s) seed=%" PRIu64 " op=%d %s: ", al_names[kind], seed, opno, opdesc);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static void touch(u64 off, u64 len)
{
    unsigned f, l;
    zones_of(off, len, &f, &l);
    for (unsigned i = f; i <= l && i < A.nz; i++)
        touched[i] = 1;
}

/* number of sequential zones in the range */
static int seq_zones(u64 off, u64 len)
{
    unsigned f, l;
    int n = 0;
    zones_of(off, len, &f, &l);
    for (unsigned i = f; i <= l && i < A.nz; i++)
        n += A.z[i].type != BLK_ZONE_TYPE_CONVENTIONAL;
    return n;
}

static int resource_err(long r) { return r == -ETOOMANYREFS || r == -EOVERFLOW; }
static int limits(void) { return max_open || max_active; }

static int range_has_zone(u64 off, u64 len, unsigned i)
{
    unsigned f, l;
    zones_of(off, len, &f, &l);
    return i >= f && i <= l;
}

/* how far a zone is written: the capacity when FULL, else the write pointer */
static u64 progress(const struct blk_zone *z)
{
    return z->cond == BLK_ZONE_COND_FULL ? z->start + z->capacity : z->wp;
}

static void reconcile(void)
{
    int again = 0;
    for (unsigned i = 0; i < A.nz; i++) {
        struct blk_zone *za = &A.z[i], *zb = &B.z[i];
        if (zone_eq(za, zb) && touched[i] < 2)
            continue;
        again = 1;
        if (za->type == BLK_ZONE_TYPE_CONVENTIONAL) {
            u64 off = za->start * 512, len = za->len * 512;
            if (do_pread(&A, off, len, bufa) == (long)len)
                do_pwrite(&B, off, len, bufa);
        } else if (touched[i] < 2 && za->wp == zb->wp &&
                   (za->cond == BLK_ZONE_COND_IMP_OPEN || za->cond == BLK_ZONE_COND_CLOSED) &&
                   (zb->cond == BLK_ZONE_COND_IMP_OPEN || zb->cond == BLK_ZONE_COND_CLOSED)) {
            do_zmgmt(&A, BLKCLOSEZONE, za->start, za->len);
            do_zmgmt(&B, BLKCLOSEZONE, zb->start, zb->len);
        } else {
            do_zmgmt(&A, BLKRESETZONE, za->start, za->len);
            do_zmgmt(&B, BLKRESETZONE, zb->start, zb->len);
        }
    }
    if (!again)
        return;
    refresh(&A);
    refresh(&B);
    for (unsigned i = 0; i < A.nz; i++) {
        if (!zone_eq(&A.z[i], &B.z[i]))
            die("seed=%" PRIu64 " op=%d: zone %u still differs after reconciling: A=%s B=%s",
                seed, opno, i, zstr(&A.z[i]), zstr(&B.z[i]));
        if (touched[i] >= 2 && !zone_data_eq(i, 1))
            die("seed=%" PRIu64 " op=%d: zone %u data still differ after reconciling", seed, opno, i);
    }
}

/* the same number of zones in each condition on both devices */
static int same_counts(void)
{
    int n[16] = { 0 };
    for (unsigned i = 0; i < A.nz; i++) {
        n[A.z[i].cond & 15]++;
        n[B.z[i].cond & 15]--;
    }
    for (int k = 0; k < 16; k++)
        if (n[k])
            return 0;
    return 1;
}

/* Is the difference in zone i after this step one of the allowed outcomes? */
static int zone_allowed(unsigned i)
{
    struct blk_zone *za = &A.z[i], *zb = &B.z[i], *z0 = &before[i];
    if (za->start != zb->start || za->len != zb->len || za->capacity != zb->capacity ||
        za->type != zb->type)
        return 0;
    /* which implicitly open zone is closed to make room is the device's
     * choice (but both close one) */
    if (st.may_close && max_open && z0->cond == BLK_ZONE_COND_IMP_OPEN && za->wp == zb->wp &&
        same_counts() &&
        ((za->cond == BLK_ZONE_COND_IMP_OPEN && zb->cond == BLK_ZONE_COND_CLOSED) ||
         (za->cond == BLK_ZONE_COND_CLOSED && zb->cond == BLK_ZONE_COND_IMP_OPEN))) {
        allow(AL_VICTIM, "zone %u: A=%s B=%s", i, zstr(za), zstr(zb));
        return 1;
    }
    /* ops in flight to several zones under limits: any order */
    if (st.nondet && (touched[i] || z0->cond == BLK_ZONE_COND_IMP_OPEN)) {
        allow(AL_ORDER, "zone %u: A=%s B=%s", i, zstr(za), zstr(zb));
        touched[i] = 2;
        return 1;
    }
    /* a write that failed on both devices may have been written in part:
     * the kernel splits it at each device's max_sectors_kb, and the parts
     * before the failing one are written; and the kernel merges writes
     * queued for the same zone into one request up to max_sectors_kb, so
     * writes before a failing one may fail with it on one device only.
     * Each device's write pointer must lie between where it was and the end
     * of the failed write; the data below the lower one must be the same. */
    for (int w = 0; w < st.nw; w++) {
        u64 e = (st.woff[w] + st.wlen[w] + 511) / 512;
        u64 pa = progress(za), pb = progress(zb), p0 = progress(z0);
        if (st.wa[w] >= 0 || st.wb[w] >= 0 || !range_has_zone(st.woff[w], st.wlen[w], i))
            continue;
        if (e > za->start + za->capacity)
            e = za->start + za->capacity;
        if (pa < p0 || pa > e || pb < p0 || pb > e)
            continue;
        allow(AL_PARTIAL, "zone %u: write 0x%llx+0x%llx failed (A=%s B=%s) after A=%s B=%s", i,
              (unsigned long long)st.woff[w], (unsigned long long)st.wlen[w],
              ename(st.wa[w]), ename(st.wb[w]), zstr(za), zstr(zb));
        touched[i] = 3;
        return 1;
    }
    if (nbq[i] && zone_eq(zb, z0) &&
        (is_open(za->cond) || za->cond == BLK_ZONE_COND_FULL)) {
        allow(AL_NBACTIVE, "zone %u: A=%s B=%s", i, zstr(za), zstr(zb));
        touched[i] = 3;
        return 1;
    }
    /* ... and qcow2 closed an implicitly open zone for it, null_blk not */
    int refused = 0;
    for (unsigned k = 0; k < A.nz; k++)
        refused |= nbq[k];
    if (refused && z0->cond == BLK_ZONE_COND_IMP_OPEN && za->cond == BLK_ZONE_COND_CLOSED &&
        zone_eq(zb, z0) && za->wp == zb->wp) {
        allow(AL_NBACTIVE, "zone %u: A=%s B=%s", i, zstr(za), zstr(zb));
        return 1;
    }
    /* null_blk needs open (and active) resources to finish an EMPTY or
     * CLOSED zone (ZBC's manage-open-zones: at the open limit it closes an
     * implicitly open zone, or fails), qcow2 does not (ZNS) */
    if (st.zop == 2 && st.za == 0 && st.zb == 0 && z0->cond == BLK_ZONE_COND_IMP_OPEN &&
        za->cond == BLK_ZONE_COND_IMP_OPEN && zb->cond == BLK_ZONE_COND_CLOSED &&
        za->wp == zb->wp) {
        allow(AL_FINISH, "zone %u: A=%s B=%s", i, zstr(za), zstr(zb));
        return 1;
    }
    if (st.zop == 2 && st.za == 0 && resource_err(st.zb) &&
        range_has_zone(st.zsec * 512, st.znr * 512, i) &&
        za->cond == BLK_ZONE_COND_FULL && zone_eq(zb, z0)) {
        allow(AL_FINISH, "zone %u: A=%s B=%s", i, zstr(za), zstr(zb));
        touched[i] = 2;
        return 1;
    }
    return 0;
}

static void compare_state(void)
{
    refresh(&A);
    refresh(&B);
    if (A.nz != B.nz)
        die("seed=%" PRIu64 " op=%d: zone count differs: A=%u B=%u", seed, opno, A.nz, B.nz);
    for (unsigned i = 0; i < A.nz; i++)
        if (!zone_eq(&A.z[i], &B.z[i]) && !zone_allowed(i))
            diff("zone %u: A=%s B=%s (before %s)", i, zstr(&A.z[i]), zstr(&B.z[i]),
                 zstr(&before[i]));
    for (unsigned i = 0; i < A.nz; i++)
        if ((st.all || touched[i] == 1 || touched[i] == 3) && touched[i] != 2 &&
            !zone_data_eq(i, 1))
            touched[i] = 2;
    reconcile();
}

static void step_begin(void)
{
    memcpy(before, A.z, sizeof(before));
    memset(touched, 0, sizeof(touched));
    memset(&st, 0, sizeof(st));
    memset(nbq, 0, sizeof(nbq));
    st.zop = -1;
}

/* judge the results of write w of this step */
static void judge_write(int w)
{
    long a = st.wa[w], b = st.wb[w];
    if (a == b)
        return;
    /* (a write sent as several requests fails with EIO instead, see below) */
    unsigned f0, l0;
    zones_of(st.woff[w], st.wlen[w], &f0, &l0);
    int split_a = st.wlen[w] > maxio_a || f0 != l0, split_b = st.wlen[w] > maxio_b || f0 != l0;
    /* with writes in flight to several zones, the zone may have been closed
     * by another write of the step, then written again */
    if (a >= 0 && (b == -ETOOMANYREFS || b == -EIO) &&
        (nb_refuses(f0) || nbq[f0] || (st.nondet && max_open && max_active))) {
        nbq[f0] = 1;
        allow(AL_NBACTIVE, "write %d (0x%llx+0x%llx): A=%s B=%s", w,
              (unsigned long long)st.woff[w], (unsigned long long)st.wlen[w], ename(a), ename(b));
        return;
    }
    if (st.nondet &&
        (resource_err(a) || resource_err(b) || (a == -EIO && split_a) || (b == -EIO && split_b)) &&
        (a >= 0 || resource_err(a) || a == -EIO) && (b >= 0 || resource_err(b) || b == -EIO)) {
        allow(AL_ORDER, "write %d (0x%llx+0x%llx): A=%s B=%s", w,
              (unsigned long long)st.woff[w], (unsigned long long)st.wlen[w], ename(a), ename(b));
        return;
    }
    /* behind a write that failed on both in the same zone, a write in flight
     * fails at the device, or is aborted by the kernel (EIO), or, when it is
     * at the write pointer the kernel reads back after the failure, is
     * written: that depends on when it reaches the kernel's zone write plug */
    if ((a < 0 && b < 0) || (a == -EIO && b >= 0) || (b == -EIO && a >= 0))
        for (int k = 0; k < w; k++) {
            unsigned f, l;
            zones_of(st.woff[w], st.wlen[w], &f, &l);
            if (st.wa[k] < 0 && st.wb[k] < 0 && range_has_zone(st.woff[k], st.wlen[k], f)) {
                allow(AL_BEHIND, "write %d (0x%llx+0x%llx): A=%s B=%s", w,
                      (unsigned long long)st.woff[w], (unsigned long long)st.wlen[w],
                      ename(a), ename(b));
                return;
            }
        }
    /* a write the kernel sends as several requests (longer than a device's
     * max_sectors_kb, or across a zone boundary) fails with the error of
     * whichever failed request completes first; the kernel fails the other
     * requests of the zone with EIO */
    if (a < 0 && b < 0 && (a == -EIO || resource_err(a)) && (b == -EIO || resource_err(b))) {
        unsigned f, l;
        zones_of(st.woff[w], st.wlen[w], &f, &l);
        if (st.wlen[w] > maxio_a || st.wlen[w] > maxio_b || f != l) {
            allow(AL_SPLIT, "write %d (0x%llx+0x%llx): A=%s B=%s", w,
                  (unsigned long long)st.woff[w], (unsigned long long)st.wlen[w],
                  ename(a), ename(b));
            return;
        }
    }
    /* merged by the kernel with the later writes of the same zone into one
     * request of at most max_sectors_kb, which failed as a whole (see
     * zone_allowed) */
    if ((a < 0) != (b < 0) && (a == -EIO || b == -EIO)) {
        u64 maxio = a < 0 ? maxio_a : maxio_b, sum = st.wlen[w];
        for (int j = w + 1; j < st.nw && st.woff[j] == st.woff[j - 1] + st.wlen[j - 1]; j++) {
            sum += st.wlen[j];
            if (st.wa[j] < 0 && st.wb[j] < 0 && sum - st.wlen[j] < maxio) {
                allow(AL_MERGED, "write %d (0x%llx+0x%llx): A=%s B=%s, merged with write %d", w,
                      (unsigned long long)st.woff[w], (unsigned long long)st.wlen[w],
                      ename(a), ename(b), j);
                return;
            }
        }
    }
    char ra[160] = "", rb[160] = "";
    for (int k = 0; k < st.nw && st.nw > 1; k++) {
        snprintf(ra + strlen(ra), sizeof(ra) - strlen(ra), " %s", ename(st.wa[k]));
        snprintf(rb + strlen(rb), sizeof(rb) - strlen(rb), " %s", ename(st.wb[k]));
    }
    diff("write %d (0x%llx+0x%llx): A=%s B=%s%s%s%s%s%s", w, (unsigned long long)st.woff[w],
         (unsigned long long)st.wlen[w], ename(a), ename(b), st.nw > 1 ? " (all: A=[" : "", ra,
         st.nw > 1 ? " ] B=[" : "", rb, st.nw > 1 ? " ])" : "");
}

static void add_write(u64 off, u64 len)
{
    st.woff[st.nw] = off;
    st.wlen[st.nw] = len;
    st.nw++;
    touch(off, len);
}

static void op_write(void)
{
    int zi = pick_zone();
    u64 off = pick_off(zi);
    size_t len = pick_len(zi, off);
    fill(bufw, len, opno);
    snprintf(opdesc, sizeof(opdesc), "pwrite 0x%llx+0x%zx (zone %d %s wp +0x%llx)",
             (unsigned long long)off, len, zi, cname(A.z[zi].cond),
             (unsigned long long)(A.z[zi].wp - A.z[zi].start) * 512);
    st.nondet = seq_zones(off, len) > 1 && limits();
    st.may_close = 1;
    add_write(off, len);
    st.wa[0] = do_pwrite(&A, off, len, bufw);
    st.wb[0] = do_pwrite(&B, off, len, bufw);
    judge_write(0);
}

static void op_batch(void)
{
    size_t len[MAXB];
    char *bufs[MAXB];
    int n = 2 + rn(MAXB - 1), zi = pick_zone(), nseq = 0;
    size_t total = 0;
    unsigned char seen[MAXZ] = { 0 };
    int chain = chance(70);
    u64 cur = chance(75) ? zwp_bytes(&A.z[zi]) : pick_off(zi);
    char *p = opdesc;
    p += snprintf(p, 64, "batch%s n=%d", chain ? "(chain)" : "(zones)", n);
    for (int i = 0; i < n; i++) {
        size_t l;
        if (!chain && i) {
            zi = pick_zone();
            cur = chance(80) ? zwp_bytes(&A.z[zi]) : pick_off(zi);
        }
        switch (rn(8)) {
        case 0: l = 512; break;
        case 1: l = 4096; break;
        case 2: l = 65536; break;
        case 3: l = 131072; break;
        case 4: l = (1 + rn(512)) * 512; break;
        case 5: /* to the zone end, or just across it */
            l = (cur / zsize + 1) * zsize - cur + (chance(50) ? 512 * rn(3) : 0);
            break;
        default: l = (1 + rn(64)) * 512; break;
        }
        if (!l)
            l = 512;
        if (l > (1u << 20))
            l = 1u << 20;
        if (total + l > MAXBUF / 2)
            l = 512;
        len[i] = l;
        bufs[i] = bufw + total;
        total += (l + 4095) & ~4095ul;
        fill(bufs[i], l, (u64)opno * 16 + i);
        unsigned f, la;
        zones_of(cur, l, &f, &la);
        for (unsigned k = f; k <= la && k < A.nz; k++)
            if (A.z[k].type != BLK_ZONE_TYPE_CONVENTIONAL && !seen[k]) {
                seen[k] = 1;
                nseq++;
            }
        add_write(cur, l);
        if (p - opdesc < (long)sizeof(opdesc) - 40)
            p += snprintf(p, opdesc + sizeof(opdesc) - p, " 0x%llx+0x%zx",
                          (unsigned long long)cur, l);
        cur += l;
    }
    st.nondet = nseq > 1 && limits();
    st.may_close = 1;
    do_batch(&A, n, st.woff, len, bufs, st.wa);
    do_batch(&B, n, st.woff, len, bufs, st.wb);
    for (int i = 0; i < n; i++)
        judge_write(i);
    /* overlapping writes in flight to a conventional zone: either may land
     * last */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            u64 s0 = st.woff[i] > st.woff[j] ? st.woff[i] : st.woff[j];
            u64 e0 = st.woff[i] + len[i] < st.woff[j] + len[j] ? st.woff[i] + len[i]
                                                              : st.woff[j] + len[j];
            unsigned f, l;
            if (s0 >= e0)
                continue;
            zones_of(s0, e0 - s0, &f, &l);
            for (unsigned k = f; k <= l && k < A.nz; k++)
                if (A.z[k].type == BLK_ZONE_TYPE_CONVENTIONAL && touched[k] != 2) {
                    allow(AL_ORDER, "zone %u: writes %d and %d overlap", k, i, j);
                    touched[k] = 2;
                }
        }
}

static const unsigned long zreqs[] = { BLKOPENZONE, BLKCLOSEZONE, BLKFINISHZONE, BLKRESETZONE };
static const char *znames[] = { "open", "close", "finish", "reset" };

static void op_zone(void)
{
    int k = rn(4), zi = pick_zone();
    struct blk_zone *z = &A.z[zi];
    u64 sec = z->start, nr = z->len, cap = disk_bytes() / 512;
    switch (rn(22)) {
    case 0: sec += 1; break;                               /* misaligned start */
    case 1: nr = 0; break;
    case 2: if ((unsigned)zi + 1 < A.nz) nr += A.z[zi + 1].len; break; /* two zones */
    case 3: sec = 0; nr = cap; break;                      /* the whole disk */
    case 4: nr = z->len - 1; break;                        /* not a zone multiple */
    case 5: sec = cap; nr = z->len; break;                 /* past the end */
    case 6: sec = zi ? A.z[zi - 1].start : 0; nr = cap - sec; break; /* to the end */
    case 7: nr = z->len * 3; break;                        /* three zones (maybe past end) */
    case 8: sec = nconv < A.nz ? A.z[nconv].start : 0; nr = cap - sec; break; /* all sequential */
    default: break;
    }
    snprintf(opdesc, sizeof(opdesc), "%s sector=0x%llx nr=0x%llx (zone %d %s)", znames[k],
             (unsigned long long)sec, (unsigned long long)nr, zi, cname(z->cond));
    st.zop = k;
    st.zsec = sec;
    st.znr = nr;
    st.may_close = k == 0 || k == 2; /* open and finish may close a zone */
    /* the kernel sends one request per zone, all in flight at once */
    st.nondet = seq_zones(sec * 512, nr * 512) > 1 && limits() && k != 3;
    if (nr > 3 * zsize / 512)
        st.all = 1;
    touch(sec * 512, nr * 512);
    long ra = st.za = do_zmgmt(&A, zreqs[k], sec, nr);
    long rb = st.zb = do_zmgmt(&B, zreqs[k], sec, nr);
    if (ra == rb)
        return;
    int empty_full = 0;
    for (unsigned i = 0; i < A.nz; i++)
        if (range_has_zone(sec * 512, nr * 512, i) && (before[i].cond == BLK_ZONE_COND_EMPTY ||
                                                       before[i].cond == BLK_ZONE_COND_FULL))
            empty_full = 1;
    int refused = 0;
    for (unsigned i = 0; k == 0 && i < A.nz; i++)
        if (range_has_zone(sec * 512, nr * 512, i) && nb_refuses(i))
            refused = nbq[i] = 1;
    /* ZBC: closing an EMPTY or FULL zone does nothing (qcow2); ZNS: an
     * invalid transition (null_blk: EIO) */
    if (k == 1 && ra == 0 && rb == -EIO && empty_full)
        allow(AL_CLOSE, "result A=%s B=%s", ename(ra), ename(rb));
    else if (k == 0 && ra == 0 && rb == -ETOOMANYREFS && refused)
        allow(AL_NBACTIVE, "result A=%s B=%s", ename(ra), ename(rb));
    /* see zone_allowed() */
    else if (k == 2 && ra == 0 && resource_err(rb) && limits())
        allow(AL_FINISH, "result A=%s B=%s", ename(ra), ename(rb));
    else if (st.nondet && (resource_err(ra) || resource_err(rb)))
        allow(AL_ORDER, "result A=%s B=%s", ename(ra), ename(rb));
    else
        diff("result A=%s B=%s", ename(ra), ename(rb));
}

static void op_read(void)
{
    int zi = pick_zone();
    u64 off = pick_off(zi);
    size_t len = pick_len(zi, off);
    snprintf(opdesc, sizeof(opdesc), "pread 0x%llx+0x%zx", (unsigned long long)off, len);
    memset(bufa, 0xa5, len);
    memset(bufb, 0x5a, len);
    long ra = do_pread(&A, off, len, bufa);
    long rb = do_pread(&B, off, len, bufb);
    if (ra != rb)
        diff("result A=%s B=%s", ename(ra), ename(rb));
    else if (ra > 0)
        data_cmp(off, ra, "pread", 1);
}

static void op_report(void)
{
    static struct blk_zone za[8], zb[8];
    u64 sec;
    unsigned nr = rn(4), ga, gb, fa, fb;
    switch (rn(5)) {
    case 0: sec = disk_bytes() / 512; break;
    case 1: sec = disk_bytes() / 512 - 1; break;
    case 2: sec = rn(disk_bytes() / 512); break;
    default: sec = A.z[pick_zone()].start; break;
    }
    snprintf(opdesc, sizeof(opdesc), "report sector=0x%llx nr=%u", (unsigned long long)sec, nr);
    long ra = report(&A, sec, nr, za, &ga, &fa);
    long rb = report(&B, sec, nr, zb, &gb, &fb);
    if (ra != rb || ga != gb || fa != fb) {
        diff("result A=%s zones=%u flags=%u B=%s zones=%u flags=%u", ename(ra), ga, fa,
             ename(rb), gb, fb);
        return;
    }
    for (unsigned i = 0; i < ga; i++)
        if (!zone_eq(&za[i], &zb[i]))
            diff("entry %u: A=%s B=%s", i, zstr(&za[i]), zstr(&zb[i]));
}

/* the known merge case as an op: fill a zone to one sector short of its
 * end, then 1 KiB across the boundary */
static void op_cross(void)
{
    int zi = nconv + rn(A.nz - nconv);
    if ((unsigned)zi + 1 >= A.nz || A.z[zi].capacity != A.z[zi].len ||
        A.z[zi].cond == BLK_ZONE_COND_FULL) {
        op_write();
        return;
    }
    struct blk_zone *z = &A.z[zi];
    u64 wp = z->wp * 512, end = (z->start + z->len) * 512;
    snprintf(opdesc, sizeof(opdesc), "cross zone %d: fill 0x%llx+0x%llx, then 0x%llx+0x400", zi,
             (unsigned long long)wp, (unsigned long long)(end - 512 - wp),
             (unsigned long long)(end - 512));
    st.nondet = limits();
    st.may_close = 1;
    if (end - 512 > wp) {
        fill(bufw, end - 512 - wp, opno);
        add_write(wp, end - 512 - wp);
        st.wa[0] = do_pwrite(&A, wp, end - 512 - wp, bufw);
        st.wb[0] = do_pwrite(&B, wp, end - 512 - wp, bufw);
        judge_write(0);
    }
    fill(bufw, 1024, opno + 1000000);
    int w = st.nw;
    add_write(end - 512, 1024);
    st.wa[w] = do_pwrite(&A, end - 512, 1024, bufw);
    st.wb[w] = do_pwrite(&B, end - 512, 1024, bufw);
    judge_write(w);
}

static void trace_step(void)
{
    if (verbose < 2)
        return;
    printf("op %d %s:", opno, opdesc);
    for (int w = 0; w < st.nw; w++)
        printf(" %s/%s", ename(st.wa[w]), ename(st.wb[w]));
    if (st.zop >= 0)
        printf(" %s/%s", ename(st.za), ename(st.zb));
    printf("\n");
    for (unsigned i = 0; i < A.nz; i++)
        if (touched[i] || !zone_eq(&A.z[i], &B.z[i]))
            printf("    zone %u before %s\n", i, zstr(&before[i]));
}

/* ------------------------------------------------------------- modes */

static void geometry(const char *path)
{
    struct dev d;
    dev_open(&d, path);
    refresh(&d);
    unsigned conv = 0;
    u64 cap = 0;
    for (unsigned i = 0; i < d.nz; i++) {
        if (d.z[i].type == BLK_ZONE_TYPE_CONVENTIONAL)
            conv++;
        else if (!cap)
            cap = d.z[i].capacity;
    }
    u64 zs = d.z[0].len * 512;
    printf("size %llu\n", (unsigned long long)(d.size >> 20));
    printf("zone_size %llu\n", (unsigned long long)(zs >> 20));
    printf("zone_capacity %llu\n", (unsigned long long)((cap ? cap * 512 : zs) >> 20));
    printf("zone_nr_conv %u\n", conv);
    printf("zone_max_open %u\n", sysfs_u(path, "max_open_zones"));
    printf("zone_max_active %u\n", sysfs_u(path, "max_active_zones"));
    /* what null_blk cannot express */
    if ((d.size & ((1 << 20) - 1)) || (zs & ((1 << 20) - 1)) || ((cap * 512) & ((1 << 20) - 1)))
        printf("# not a multiple of 1 MiB: size %llu zone %llu cap %llu\n",
               (unsigned long long)d.size, (unsigned long long)zs,
               (unsigned long long)cap * 512);
}

static int merge(const char *path, int tries)
{
    struct dev d;
    int failed = 0, pairs = 0, first = -1;
    dev_open(&d, path);
    refresh(&d);
    for (unsigned i = 0; i + 1 < d.nz; i++)
        if (d.z[i].type != BLK_ZONE_TYPE_CONVENTIONAL && d.z[i].capacity == d.z[i].len &&
            d.z[i + 1].type != BLK_ZONE_TYPE_CONVENTIONAL) {
            if (first < 0)
                first = i;
            pairs++;
        }
    if (first < 0)
        die("%s: no two adjacent sequential zones of full capacity", path);
    char *buf;
    if (posix_memalign((void **)&buf, 4096, 1 << 20))
        die("out of memory");
    memset(buf, 0x5c, 1 << 20);
    for (int t = 0; t < tries; t++) {
        unsigned zi = first + t % pairs;
        while (d.z[zi].type == BLK_ZONE_TYPE_CONVENTIONAL || d.z[zi].capacity != d.z[zi].len)
            zi++;
        u64 s = d.z[zi].start * 512, end = s + d.z[zi].len * 512;
        long r = do_zmgmt(&d, BLKRESETZONE, d.z[zi].start, d.z[zi].len + d.z[zi + 1].len);
        if (r < 0)
            die("%s: reset zones %u-%u: %s", path, zi, zi + 1, ename(r));
        for (u64 o = s; o < end - 512; ) {
            u64 l = end - 512 - o > (1 << 20) ? (1 << 20) : end - 512 - o;
            r = do_pwrite(&d, o, l, buf);
            if (r != (long)l)
                die("%s: fill 0x%llx+0x%llx: %s", path, (unsigned long long)o,
                    (unsigned long long)l, ename(r));
            o += l;
        }
        r = do_pwrite(&d, end - 512, 1024, buf);
        if (r != 1024) {
            failed++;
            printf("merge %s try %d: 1 KiB at 0x%llx (zone %u end - 512): %s\n", path, t,
                   (unsigned long long)(end - 512), zi, ename(r));
        }
    }
    do_zmgmt(&d, BLKRESETZONE, 0, d.size / 512);
    printf("MERGE dev=%s tries=%d failed=%d\n", path, tries, failed);
    return failed ? 1 : 0;
}

static int oracle(const char *pa, const char *pb, u64 s, int nops, const char *label)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    seed = s;
    rs = s;
    dev_open(&A, pa);
    dev_open(&B, pb);
    if (posix_memalign((void **)&bufw, 4096, MAXBUF) || posix_memalign((void **)&bufa, 4096, MAXBUF) ||
        posix_memalign((void **)&bufb, 4096, MAXBUF))
        die("out of memory");
    snprintf(opdesc, sizeof(opdesc), "setup");
    if (A.size != B.size)
        diff("size A=%llu B=%llu", (unsigned long long)A.size, (unsigned long long)B.size);
    static const char *attrs[] = { "zoned", "nr_zones", "chunk_sectors", "max_open_zones",
                                   "max_active_zones", "logical_block_size" };
    for (unsigned i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
        unsigned va = sysfs_u(pa, attrs[i]), vb = sysfs_u(pb, attrs[i]);
        if (va != vb)
            diff("sysfs %s A=%u B=%u", attrs[i], va, vb);
    }
    printf("max_sectors_kb A=%u B=%u, max_segments A=%u B=%u, zone_append_max_bytes A=%u B=%u\n",
           sysfs_u(pa, "max_sectors_kb"), sysfs_u(pb, "max_sectors_kb"),
           sysfs_u(pa, "max_segments"), sysfs_u(pb, "max_segments"),
           sysfs_u(pa, "zone_append_max_bytes"), sysfs_u(pb, "zone_append_max_bytes"));
    maxio_a = (u64)sysfs_u(pa, "max_sectors_kb") * 1024;
    maxio_b = (u64)sysfs_u(pb, "max_sectors_kb") * 1024;
    max_open = sysfs_u(pa, "max_open_zones");
    max_active = sysfs_u(pa, "max_active_zones");
    /* start from empty zones */
    do_zmgmt(&A, BLKRESETZONE, 0, A.size / 512);
    do_zmgmt(&B, BLKRESETZONE, 0, B.size / 512);
    refresh(&A);
    refresh(&B);
    if (A.nz != B.nz || !A.nz)
        die("zone count A=%u B=%u", A.nz, B.nz);
    zsize = A.z[0].len * 512;
    nconv = 0;
    while (nconv < A.nz && A.z[nconv].type == BLK_ZONE_TYPE_CONVENTIONAL)
        nconv++;
    /* the same data in the conventional zones */
    memset(bufw, 0, zsize);
    for (unsigned i = 0; i < nconv; i++) {
        do_pwrite(&A, A.z[i].start * 512, zsize, bufw);
        do_pwrite(&B, B.z[i].start * 512, zsize, bufw);
    }
    step_begin();
    st.all = 1;
    compare_state();

    int compared = 0;
    for (opno = 1; opno <= nops; opno++) {
        int r = rn(100);
        step_begin();
        if (r < 33)
            op_write();
        else if (r < 53)
            op_batch();
        else if (r < 58)
            op_cross();
        else if (r < 83)
            op_zone();
        else if (r < 93)
            op_read();
        else
            op_report();
        trace_step();
        if (opno % 50 == 0 || opno == nops)
            st.all = 1;
        compare_state();
        compared++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("allowed differences:");
    for (int k = 0; k < AL_N; k++)
        printf(" %s=%d", al_names[k], al_count[k]);
    printf("\n");
    printf("ORACLE label=%s seed=%" PRIu64 " ops=%d compared=%d diffs=%d allowed=%d "
           "time=%.1fs\n", label, s, nops, compared, ndiff, nallowed,
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return ndiff ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *v = getenv("ZORACLE_VERBOSE");
    verbose = v ? atoi(v) : 0;
    /* both devices are null_blk (a test of this tool): A may read 0xff too */
    selftest = getenv("ZORACLE_SELFTEST") != NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && !strcmp(argv[1], "geometry")) {
        geometry(argv[2]);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "merge"))
        return merge(argv[2], atoi(argv[3]));
    if ((argc == 6 || argc == 7) && !strcmp(argv[1], "oracle"))
        return oracle(argv[2], argv[3], strtoull(argv[4], NULL, 0), atoi(argv[5]),
                      argc == 7 ? argv[6] : "-");
    fprintf(stderr, "usage: zoracle geometry DEV | merge DEV TRIES | "
                    "oracle DEV_A DEV_B SEED NOPS [LABEL]\n");
    return 2;
}
