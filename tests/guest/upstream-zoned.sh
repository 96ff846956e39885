#!/bin/bash
# QEMU's own iotest tests/qemu-iotests/tests/zoned: file-posix with
# driver=host_device on a null_blk zoned device.  It needs root and a module
# that the build machine cannot load, so it never runs there; here it runs in
# the guest, unchanged, with the series' qemu-io, and its output must equal
# its reference output zoned.out.  tests/guest.sh copies the iotests files
# (common.rc, common.filter, common.qemu, tests/zoned, tests/zoned.out) to
# ./iotests and qemu-io with its libraries to ./qemu-io-bundle.
bundle=$PWD/qemu-io-bundle
iot=$PWD/iotests
scratch=$(mktemp -d)
# The test runs "sudo -n CMD"; the guest command is already root.
mkdir -p "$scratch/bin"
printf '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n' > "$scratch/bin/sudo"
chmod +x "$scratch/bin/sudo"
# What tests/qemu-iotests/check sets for "-raw -file"
(
    export PATH=$scratch/bin:$PATH LD_LIBRARY_PATH=$bundle/lib
    export QEMU_IO_PROG=$bundle/qemu-io QEMU_IMG_PROG=/bin/false
    export QEMU_PROG=/bin/false QEMU_NBD_PROG=/bin/false QSD_PROG=/bin/false
    export IMGFMT=raw IMGPROTO=file HOSTOS=Linux CACHEMODE=writeback
    export TEST_DIR=$scratch SAMPLE_IMG_DIR=$scratch SOCK_DIR=$scratch
    export QEMU_IO_OPTIONS="--cache writeback --aio threads -f raw"
    export QEMU_IO_OPTIONS_NO_FMT="--cache writeback --aio threads"
    cd "$iot/tests" && bash ./zoned
) > "$scratch/zoned.log" 2>&1
if diff -u "$iot/tests/zoned.out" "$scratch/zoned.log" > "$scratch/diff"; then
    echo "RESULT PASS iotest-zoned-null_blk"
else
    sed -n '1,60s/^/    /p' "$scratch/diff"
    echo "RESULT FAIL iotest-zoned-null_blk $(grep -c '^[-+][^-+]' "$scratch/diff") lines differ"
fi
rmmod null_blk 2>/dev/null
rm -rf "$scratch"
