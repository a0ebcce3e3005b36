#!/bin/sh
# PID 1 of the msb guest initramfs (busybox sh).
# Mounts the basic filesystems, loads the kernel modules listed in
# /etc/msb-modules (already in dependency order), sets the hostname and then
# hands over to the guest agent. Must stay fast: no sleeps, no waiting loops.

fail() {
    echo "msb-init: $*" >/dev/console 2>/dev/null || echo "msb-init: $*"
    /bin/busybox poweroff -f
    # poweroff -f should not return; if it does, exiting PID 1 panics the
    # kernel, which (with panic=-1 and -no-reboot) also stops the VM.
    exit 1
}

# If exec of the agent fails below, the shell exits: catch that.
trap 'fail "cannot execute /sbin/msb-agent"' EXIT

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
umask 022

mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o nosuid,noexec,gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr

# Kernel modules, in dependency order. Skip ones already present (built in
# or loaded); report any other failure but keep booting.
if [ -r /etc/msb-modules ]; then
    while read -r ko; do
        case "$ko" in ''|'#'*) continue ;; esac
        name=${ko##*/}
        name=${name%%.ko*}
        [ -d "/sys/module/${name//-/_}" ] && continue
        insmod "$ko" || echo "msb-init: insmod $ko failed" >&2
    done </etc/msb-modules
fi

# The hostname, the clock, fresh entropy and the root disk come from the host in the
# agent's `setup` message, after every start: a template is saved before any of them is
# known, and each sandbox restored from it gets its own.
[ -s /etc/hostname ] && hostname -F /etc/hostname

ip link set lo up

[ -x /sbin/msb-agent ] || fail "/sbin/msb-agent is missing or not executable"

# ash runs a file the kernel refuses (ENOEXEC) as a shell script, replacing
# this shell (and its EXIT trap); reject files that are neither ELF nor #!.
# (An ELF the kernel still cannot run ends in a kernel panic instead, which
# panic=-1 with QEMU's -no-reboot also turns into the VM stopping.)
IFS= read -r -n 4 magic </sbin/msb-agent || true
case "$magic" in
    $'\177ELF' | '#!'*) ;;
    *) fail "/sbin/msb-agent is not an ELF executable or a #! script" ;;
esac
exec /sbin/msb-agent
