#!/bin/busybox sh
# /init of the berth test VM: PID 1, busybox sh, everything in RAM.
#
# It makes the world the tests expect (proc, sys, dev, a pure cgroup v2
# hierarchy with every controller enabled, the kernel modules, lo up), then
# either runs every test binary in /berth/tests.list or, with vmtest.shell=1
# on the kernel command line, gives a root shell on the serial console.
#
# Channels: the serial console (ttyS0) carries the kernel's messages and the
# VMTEST-* marker lines; ttyS1 carries only the tests' `go test -json`
# events, so kernel messages can never break them. The verdict leaves through
# QEMU's isa-debug-exit port: QEMU exits with (rc<<1)|1, so 1 means every
# package passed and 3 means one failed; 0 means this script never got there.
# /init itself uses busybox alone (every applet is linked in
# /usr/libexec/vmtest); the tests get the host's commands first.
PATH=/usr/libexec/vmtest
export HOME=/root TMPDIR=/tmp

# pivot_root(2) refuses to move the initramfs itself ("rootfs" has no
# parent mount), and every container stage from 03-mount on pivots. So the
# first thing is to make / an ordinary mount: bind the initramfs onto a
# directory, move that mount over /, and carry on chrooted into it.
if [ "$BERTH_VM_ROOT" != bound ]; then
	mkdir -p /.root
	mount --bind / /.root
	cd /.root || exit 1
	mount --move . /
	BERTH_VM_ROOT=bound exec chroot . /init
fi
rmdir /.root 2>/dev/null

up() { cut -d' ' -f1 /proc/uptime; }

mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid,mode=755 devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs /run
echo "VMTEST-BOOTED uptime=$(up) kernel=$(uname -r)"

# Modules: the listed ones now, in dependency order (worked out on the
# host from modules.dep); the rest that were packed in load on demand
# through busybox modprobe (nf_tables expressions, NAT chains...).
echo /sbin/modprobe >/proc/sys/kernel/modprobe
while read -r ko; do
	insmod "/lib/modules/$(uname -r)/$ko" || echo "VMTEST-WARN insmod $ko failed"
done </lib/modules/load-order

# /tmp and /var/lib/berth on ext4, as on a host's disk: tmpfs differs
# (before 6.6 it has no user.* xattrs, which overlay's userxattr and layer
# tars use). The disk is a RAM disk (brd) of half the memory, allocated as
# it fills.
rd_kb=$(awk '/^MemTotal:/ { print int($2 / 2) }' /proc/meminfo)
if modprobe brd rd_nr=1 rd_size="$rd_kb" max_part=0 &&
	/sbin/mke2fs -q -t ext4 -m 0 -E lazy_itable_init=1,lazy_journal_init=1 /dev/ram0 &&
	mkdir -p /scratch && mount -t ext4 /dev/ram0 /scratch; then
	mkdir -p /scratch/tmp /scratch/berth
	chmod 1777 /scratch/tmp
	cp -a /var/lib/berth/. /scratch/berth/
	rm -rf /var/lib/berth/*
	mount --bind /scratch/tmp /tmp
	mount --bind /scratch/berth /var/lib/berth
	echo "VMTEST-DISK ext4 $((rd_kb / 1024)) MiB on /tmp and /var/lib/berth"
else
	echo "VMTEST-WARN no ext4 RAM disk: /tmp and /var/lib/berth stay on tmpfs"
fi

# Pure cgroup v2: only cgroup2 is mounted, with nsdelegate as systemd
# mounts it, and every controller handed down from the root.
mount -t cgroup2 -o nsdelegate,nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
	echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "VMTEST-WARN cannot enable $c"
done
echo "VMTEST-CGROUP $(cat /sys/fs/cgroup/cgroup.subtree_control)"

ip link set lo up
hostname berth-vm

. /berth/vmtest.conf
shell=0 run=
for w in $(cat /proc/cmdline); do
	case $w in
	vmtest.shell=1) shell=1 ;;
	vmtest.run=*) run=${w#vmtest.run=} ;;
	vmtest.cols=*) cols=${w#vmtest.cols=} ;;
	vmtest.rows=*) rows=${w#vmtest.rows=} ;;
	vmtest.term=*) export TERM=${w#vmtest.term=} ;;
	esac
done
export BERTH_VM=1 BERTH_BIN=/berth/bin BERTH_ROOTFS=/var/lib/berth/busybox
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/libexec/vmtest

if [ "$shell" = 1 ]; then
	[ -n "$cols" ] && stty cols "$cols" rows "$rows" 2>/dev/null
	cd /berth || exit 1
	cat /etc/motd
	# bash from the host if it is there: busybox sh would run its own
	# applets before the host's commands on PATH.
	sh=/usr/libexec/vmtest/sh
	[ -x /bin/bash ] && sh=/bin/bash
	setsid cttyhack "$sh" -l
	echo "VMTEST-SHELL-EXIT uptime=$(up)"
	poweroff -f
fi

stty -F /dev/ttyS1 raw -echo 2>/dev/null
set -- -test.v=test2json -test.count=1 -test.timeout="$TEST_TIMEOUT"
[ -n "$run" ] && set -- "$@" -test.run="$run"
echo "VMTEST-RUN packages=$(wc -l </berth/tests.list) uptime=$(up)"
rc=0
while read -r name pkg dir; do
	echo "VMTEST-PKG-BEGIN $pkg uptime=$(up)"
	(cd "/berth/src/$dir" && exec test2json -t -p "$pkg" "/berth/tests/$name" "$@") \
		</dev/null >/dev/ttyS1 2>/dev/console
	prc=$?
	if [ $prc = 0 ]; then res=PASS; else res=FAIL rc=1; fi
	echo "VMTEST-PKG-END $pkg $res rc=$prc uptime=$(up)"
done </berth/tests.list
echo "VMTEST-DONE rc=$rc uptime=$(up)"

printf "\\$(printf %03o "$rc")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
