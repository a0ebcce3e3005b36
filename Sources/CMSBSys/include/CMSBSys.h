#ifndef CMSBSYS_H
#define CMSBSYS_H

#include <stdint.h>
#include <sys/types.h>

/// Flags for msb_spawn.
enum {
    MSB_SPAWN_SETSID = 1,       // child starts a new session (and process group)
    MSB_SPAWN_PDEATHSIG = 2,    // child gets SIGKILL when the spawning thread's process dies
    MSB_SPAWN_SEARCH_PATH = 4,  // resolve a bare name through PATH taken from envp
    MSB_SPAWN_CTTY = 8,         // make fd 0 the controlling terminal (needs SETSID)
    MSB_SPAWN_NO_NEW_PRIVS = 16, // no set-user-ID or file capabilities can raise the child's privileges
    // In a private mount namespace, a copy of the mount tree under the directory at the child's
    // fd 3 (then closed) is mounted on cwd before the chdir: the child reaches exactly that
    // directory, whatever its path resolves to now. Stage 5 on failure.
    MSB_SPAWN_MOUNT_TREE = 32,
    MSB_SPAWN_MOUNT_READONLY = 64, // with MOUNT_TREE: the copy is read-only, submounts included
    MSB_SPAWN_MAX_FDS = 32,
};

/// fork + exec with the child's fd i set from fds[i] (0 <= i < nfds, 3 <= nfds <= MSB_SPAWN_MAX_FDS;
/// -1 means /dev/null for 0..2 and closed above), every other fd closed, an optional working
/// directory, uid/gid (each -1 to keep; supplementary groups dropped), and exec failures reported
/// back. Returns the pid, or -1 with *error_out set to the errno of whatever failed.
/// *stage_out is 1 for fork failure, 2 chdir, 3 exec, 4 credentials, 5 the mount tree.
pid_t msb_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                const int *fds, int nfds, int flags, int uid, int gid, int *error_out, int *stage_out);

int msb_set_nonblocking(int fd, int on);
int msb_set_cloexec(int fd);
uint64_t msb_rdtsc(void);
int msb_set_winsize(int fd, unsigned short rows, unsigned short cols);
int msb_get_winsize(int fd, unsigned short *rows, unsigned short *cols);

/// Route a signal to a pipe: the handler writes the signal number (one byte) to write_fd.
int msb_signal_to_pipe(int signo, int write_fd);
/// Restore the default action for a signal.
int msb_signal_default(int signo);
int msb_signal_ignore(int signo);

/// pipe2 with O_CLOEXEC (and O_NONBLOCK on both ends when nonblock is set).
int msb_pipe(int fds[2], int nonblock);
/// Opens a pseudo-terminal pair (master is O_CLOEXEC, slave too); 0 or -1 with errno.
int msb_openpty(int *master, int *slave);
/// reboot(2) with the given command (e.g. RB_AUTOBOOT).
int msb_reboot_restart(void);
int msb_reboot_poweroff(void);

/// Mixes `count` bytes (credited as entropy) into the kernel's pool through /dev/urandom
/// and forces the CRNG to reseed now (RNDADDENTROPY + RNDRESEEDCRNG): after a VM restore
/// every clone shares the saved CRNG state until this runs. 0, or -1 with errno.
int msb_reseed_random(const unsigned char *bytes, unsigned long count);

/// Drops the cached blocks of a block device (BLKFLSBUF), so nothing read before a
/// restore (the partition scan of the template's disk) is taken for the new disk's data.
int msb_block_flush_cache(const char *device);

/// Sends `len` bytes with one descriptor attached (SCM_RIGHTS), without SIGPIPE.
/// Returns bytes sent or -1 with errno.
long msb_send_with_fd(int sock, const void *buf, unsigned long len, int fd);

/// A memfd holding a copy of the first `size` bytes of `source_fd` (holes stay holes),
/// sealed against writes, growth and shrinking: anyone may map it copy-on-write, nobody
/// can change it. Returns the memfd, or -1 with errno.
int msb_sealed_memory_copy(int source_fd, long long size);

/// Receives one byte with one descriptor attached (SCM_RIGHTS); returns the descriptor
/// (close-on-exec) or -1 with errno (EBADMSG when none came).
int msb_receive_fd(int sock);

/// accept4 with SOCK_CLOEXEC; -1 with errno (EAGAIN when none is pending).
int msb_accept(int listen_fd);

/// pidfd_open(2) (close-on-exec): a descriptor that becomes readable when the process
/// exits, for any process, not only a child. -1 with errno (ENOSYS before Linux 5.3).
int msb_pidfd_open(pid_t pid);

/// Bytes in use on the file system holding path (statfs), or -1.
long long msb_fs_used_bytes(const char *path);

/// Puts the terminal on fd into raw mode, remembering its settings; they are restored
/// by msb_tty_restore, at exit, and on SIGTERM/SIGHUP/SIGQUIT (which then kill us).
int msb_tty_raw(int fd);
void msb_tty_restore(void);

/// SIGINT without SA_RESTART: sets a flag and writes a byte to write_fd, so a blocking
/// readline returns and a poll loop wakes. msb_sigint_take returns and clears the flag.
int msb_sigint_install(int write_fd);
int msb_sigint_take(void);

/// Clears the signal mask inherited from whoever started us (some runtimes spawn
/// children with SIGINT or SIGWINCH blocked, which would make Ctrl-C and resizes vanish).
void msb_unblock_signals(void);

/// The guest's interface setup (SIOC* ioctls on an AF_INET socket). Each returns 0, or
/// -1 with errno (EINVAL for a name of IFNAMSIZ bytes or more).
/// Sets or clears IFF_UP, keeping the other flags.
int msb_net_set_up(const char *interface, int up);
/// Sets the Ethernet address (6 bytes); the interface should be down.
int msb_net_set_mac(const char *interface, const unsigned char mac[6]);
int msb_net_set_mtu(const char *interface, unsigned int mtu);
/// Sets the IPv4 address and then the netmask (4 bytes each, network order).
int msb_net_set_ipv4(const char *interface, const unsigned char address[4], const unsigned char netmask[4]);
/// Deletes every IPv4 default route, then adds one through `gateway` on `interface`.
int msb_net_replace_default_route(const char *interface, const unsigned char gateway[4]);
/// Broadcasts an ARP request for `gateway` from `mac` and `address`: the network process
/// (passt) learns the guest's MAC address from the guest's frames, and a restored guest
/// whose MAC address just changed would otherwise send none until it opens a connection,
/// so connections to its published ports would go to the template's address.
int msb_net_announce(const char *interface, const unsigned char mac[6], const unsigned char address[4],
                     const unsigned char gateway[4]);

#endif
