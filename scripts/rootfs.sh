#!/usr/bin/env bash
# Builds the default root filesystem: a busybox tree from Debian's
# busybox-static, with its applet links, a minimal /etc and the empty
# mount points a container needs. Idempotent: it rebuilds into a fresh
# directory and swaps it in, so a half-built tree is never left in place.
#
#   scripts/rootfs.sh [DIR]     (default: $BERTH_ROOTFS or /var/lib/berth/busybox)
set -euo pipefail

dest=${1:-${BERTH_ROOTFS:-/var/lib/berth/busybox}}
busybox=/bin/busybox
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
	echo "rootfs: $busybox missing or not static: install it with: sudo apt-get install busybox-static" >&2
	exit 1
fi

parent=$(dirname "$dest")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.busybox.XXXXXX")
# --one-file-system: never delete through something mounted in the tree
# (a /dev or /proc a crashed run left mounted there belongs to the host).
trap 'rm -rf --one-file-system "$tmp"' EXIT
# mktemp -d makes it 0700; a root directory is 0755, or no one but root
# could walk it: not a non-root user in the container, nor a rootless
# container (stage 05) that uses this shared tree.
chmod 755 "$tmp"

mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,home,var/log,run}
chmod 1777 "$tmp/tmp"
chmod 700 "$tmp/root"
cp "$busybox" "$tmp/bin/busybox"
chmod 755 "$tmp/bin/busybox"
# One link per applet, where busybox itself would install it.
"$busybox" --list-full | while read -r applet; do
	[ "$applet" = bin/busybox ] && continue
	mkdir -p "$tmp/$(dirname "$applet")"
	ln -sf /bin/busybox "$tmp/$applet"
done

cat >"$tmp/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$tmp/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
tty:x:5:
nogroup:x:65534:
GROUP
# Files that later stages bind-mount their own versions over.
: >"$tmp/etc/hostname"
: >"$tmp/etc/hosts"
: >"$tmp/etc/resolv.conf"
echo 'berth busybox rootfs' >"$tmp/etc/motd"

rm -rf --one-file-system "$dest.old"
[ -e "$dest" ] && mv "$dest" "$dest.old"
mv "$tmp" "$dest"
rm -rf --one-file-system "$dest.old"
trap - EXIT
echo "rootfs: busybox tree ready in $dest ($(ls "$dest/bin" | wc -l) entries in /bin)"
