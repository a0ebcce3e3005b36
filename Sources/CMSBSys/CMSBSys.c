#define _GNU_SOURCE
#include "CMSBSys.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <stdio.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sched.h>
#include <linux/random.h>
#include <linux/fs.h>
#include <grp.h>
#include <unistd.h>

static void report_and_exit(int pipe_fd, int stage, int err) {
    int msg[2] = {stage, err};
    ssize_t ignored = write(pipe_fd, msg, sizeof msg);
    (void)ignored;
    _exit(127);
}

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef MOUNT_ATTR_NOSUID
#define MOUNT_ATTR_NOSUID 0x00000002
#endif
#ifndef MOUNT_ATTR_NODEV
#define MOUNT_ATTR_NODEV 0x00000004
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
struct msb_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };

/// MSB_SPAWN_MOUNT_TREE, in the child: a private mount namespace, a detached copy of the
/// tree at fd 3 (nosuid and nodev, read-only if asked, submounts included), moved onto
/// `target`. The copy is of the directory fd 3 holds, not of a path: nothing renamed or
/// swapped for a symbolic link since it was opened changes what the child gets.
static int mount_tree(const char *target, int readonly) {
    // The copy first: open_tree clones only mounts of the caller's own namespace, and fd 3
    // was opened in the one we are about to leave. The copy is detached: the host's
    // namespace does not change.
    int tree = (int)syscall(SYS_open_tree, 3, "", OPEN_TREE_CLONE | AT_RECURSIVE | AT_EMPTY_PATH | O_CLOEXEC);
    if (tree < 0) return -1;
    if (unshare(CLONE_NEWNS) != 0) return -1;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return -1;
    struct msb_mount_attr attr = {0};
    attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (readonly ? MOUNT_ATTR_RDONLY : 0);
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0) return -1;
    if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0) return -1;
    close(tree);
    close(3);
    return 0;
}

static void close_from(int lowest, int keep) {
    // close_range exists since Linux 5.9; fall back to a loop on older kernels.
#ifdef SYS_close_range
    int ok;
    if (keep >= lowest) {
        ok = (keep == lowest || syscall(SYS_close_range, (unsigned)lowest, (unsigned)keep - 1, 0) == 0)
            && syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0) == 0;
    } else {
        ok = syscall(SYS_close_range, (unsigned)lowest, ~0U, 0) == 0;
    }
    if (ok) return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (int fd = lowest; fd < max; fd++) if (fd != keep) close(fd);
}

static void exec_searching(const char *name, char *const argv[], char *const envp[], int *err) {
    const char *path = NULL;
    for (char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, "PATH=", 5) == 0) { path = *e + 5; break; }
    }
    if (!path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    size_t nlen = strlen(name);
    int saw_eacces = 0;
    *err = ENOENT;
    const char *p = path;
    char buf[4096];
    while (1) {
        const char *colon = strchr(p, ':');
        size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
        if (dlen == 0) { dlen = 1; p = "."; colon = colon ? colon : NULL; }
        if (dlen + 1 + nlen + 1 <= sizeof buf) {
            memcpy(buf, p, dlen);
            buf[dlen] = '/';
            memcpy(buf + dlen + 1, name, nlen + 1);
            execve(buf, argv, envp);
            if (errno == EACCES) saw_eacces = 1;
            else if (errno != ENOENT && errno != ENOTDIR) { *err = errno; }
        }
        if (!colon) break;
        p = colon + 1;
    }
    if (saw_eacces) *err = EACCES;
}

pid_t msb_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                const int *fds, int nfds, int flags, int uid, int gid, int *error_out, int *stage_out) {
    if (nfds < 3 || nfds > MSB_SPAWN_MAX_FDS) { *error_out = EINVAL; *stage_out = 1; return -1; }
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) { *error_out = errno; *stage_out = 1; return -1; }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        *error_out = errno; *stage_out = 1;
        close(report[0]); close(report[1]);
        return -1;
    }
    if (pid == 0) {
        // Child: only async-signal-safe calls from here on.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < 32; s++) if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
        if (flags & MSB_SPAWN_SETSID) setsid();
        int src[MSB_SPAWN_MAX_FDS];
        for (int i = 0; i < nfds; i++) src[i] = fds[i];
        // Move the source fds out of the target range first so dup2 cannot clobber one we still need.
        for (int i = 0; i < nfds; i++) {
            if (src[i] >= 0 && src[i] < nfds) {
                int moved = fcntl(src[i], F_DUPFD_CLOEXEC, MSB_SPAWN_MAX_FDS + 8);
                if (moved < 0) report_and_exit(report[1], 1, errno);
                int old = src[i];
                for (int j = i; j < nfds; j++) if (src[j] == old) src[j] = moved;
            }
        }
        int rep = report[1];
        if (rep < nfds) { rep = fcntl(rep, F_DUPFD_CLOEXEC, MSB_SPAWN_MAX_FDS + 8); }
        for (int i = 0; i < nfds; i++) {
            if (src[i] >= 0) {
                if (dup2(src[i], i) < 0) report_and_exit(rep, 1, errno);
            } else if (i < 3) {
                int devnull = open("/dev/null", O_RDWR);
                if (devnull >= 0 && devnull != i) { dup2(devnull, i); close(devnull); }
            } else {
                close(i);
            }
        }
        close_from(nfds, rep);
        if ((flags & MSB_SPAWN_CTTY) && (flags & MSB_SPAWN_SETSID)) ioctl(0, TIOCSCTTY, 0);
        if (flags & MSB_SPAWN_MOUNT_TREE) {
            if (!cwd || !cwd[0] || nfds < 4) report_and_exit(rep, 5, EINVAL);
            if (mount_tree(cwd, (flags & MSB_SPAWN_MOUNT_READONLY) != 0) != 0) report_and_exit(rep, 5, errno);
        }
        if (cwd && cwd[0] && chdir(cwd) != 0) report_and_exit(rep, 2, errno);
        if (gid >= 0 && (setgroups(0, NULL) != 0 || setgid((gid_t)gid) != 0)) report_and_exit(rep, 4, errno);
        if (uid >= 0 && setuid((uid_t)uid) != 0) report_and_exit(rep, 4, errno);
        // After the credentials: changing them clears the parent-death signal.
        if (flags & MSB_SPAWN_PDEATHSIG) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(127);
        }
        if (flags & MSB_SPAWN_NO_NEW_PRIVS) prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        int err = 0;
        if ((flags & MSB_SPAWN_SEARCH_PATH) && strchr(path, '/') == NULL) {
            exec_searching(path, argv, envp, &err);
        } else {
            execve(path, argv, envp);
            err = errno;
        }
        report_and_exit(rep, 3, err);
    }
    close(report[1]);
    int msg[2];
    ssize_t n;
    do { n = read(report[0], msg, sizeof msg); } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof msg) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        *stage_out = msg[0];
        *error_out = msg[1];
        return -1;
    }
    *error_out = 0; *stage_out = 0;
    return pid;
}

int msb_set_nonblocking(int fd, int on) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -1;
    return fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}

int msb_set_cloexec(int fd) {
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0) return -1;
    return fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

uint64_t msb_rdtsc(void) {
    unsigned int lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

int msb_set_winsize(int fd, unsigned short rows, unsigned short cols) {
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    return ioctl(fd, TIOCSWINSZ, &ws);
}

int msb_get_winsize(int fd, unsigned short *rows, unsigned short *cols) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return -1;
    *rows = ws.ws_row; *cols = ws.ws_col;
    return 0;
}

static int signal_pipe_fds[65];

static void pipe_handler(int signo) {
    int saved = errno;
    if (signo > 0 && signo < 65 && signal_pipe_fds[signo] > 0) {
        unsigned char b = (unsigned char)signo;
        ssize_t ignored = write(signal_pipe_fds[signo], &b, 1);
        (void)ignored;
    }
    errno = saved;
}

int msb_signal_to_pipe(int signo, int write_fd) {
    if (signo <= 0 || signo >= 65) return -1;
    signal_pipe_fds[signo] = write_fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pipe_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    return sigaction(signo, &sa, NULL);
}

int msb_signal_default(int signo) { return signal(signo, SIG_DFL) == SIG_ERR ? -1 : 0; }
int msb_signal_ignore(int signo) { return signal(signo, SIG_IGN) == SIG_ERR ? -1 : 0; }

int msb_pipe(int fds[2], int nonblock) {
    return pipe2(fds, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
}

int msb_openpty(int *master, int *slave) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) return -1;
    if (grantpt(m) != 0 || unlockpt(m) != 0) { close(m); return -1; }
    char name[128];
    if (ptsname_r(m, name, sizeof name) != 0) { close(m); return -1; }
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) { close(m); return -1; }
    *master = m; *slave = s;
    return 0;
}

int msb_reboot_restart(void) { return reboot(RB_AUTOBOOT); }
int msb_reboot_poweroff(void) { return reboot(RB_POWER_OFF); }

int msb_reseed_random(const unsigned char *bytes, unsigned long count) {
    if (count > 512) { errno = EINVAL; return -1; }
    union { struct rand_pool_info info; unsigned char raw[sizeof(struct rand_pool_info) + 512]; } pool;
    pool.info.entropy_count = (int)(count * 8);
    pool.info.buf_size = (int)count;
    memcpy(pool.raw + sizeof(struct rand_pool_info), bytes, count);
    int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -1;
    int result = ioctl(fd, RNDADDENTROPY, &pool.info);
    if (result == 0) result = ioctl(fd, RNDRESEEDCRNG);
    int saved = errno;
    close(fd);
    errno = saved;
    return result;
}

int msb_block_flush_cache(const char *device) {
    int fd = open(device, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int result = ioctl(fd, BLKFLSBUF, 0);
    int saved = errno;
    close(fd);
    errno = saved;
    return result;
}

long msb_send_with_fd(int sock, const void *buf, unsigned long len, int fd) {
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int))]; } control;
    memset(&control, 0, sizeof(control));
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                          .msg_controllen = sizeof(control.space) };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    return (long)sendmsg(sock, &msg, MSG_NOSIGNAL);
}

int msb_sealed_memory_copy(int source_fd, long long size) {
    int memfd = (int)syscall(SYS_memfd_create, "msb-template-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (memfd < 0) return -1;
    enum { chunk = 1 << 20 };
    char *buffer = malloc(chunk);
    if (buffer == NULL || ftruncate(memfd, (off_t)size) != 0) goto fail;
    off_t data = 0;
    while (data < size) {
        data = lseek(source_fd, data, SEEK_DATA);
        if (data < 0) { if (errno == ENXIO) break; goto fail; }
        off_t hole = lseek(source_fd, data, SEEK_HOLE);
        if (hole < 0) goto fail;
        if (hole > size) hole = size;
        while (data < hole) {
            size_t want = (size_t)(hole - data) < (size_t)chunk ? (size_t)(hole - data) : (size_t)chunk;
            ssize_t got = pread(source_fd, buffer, want, data);
            if (got <= 0) { if (got < 0 && errno == EINTR) continue; if (got == 0) errno = EIO; goto fail; }
            for (ssize_t done = 0; done < got;) {
                ssize_t put = pwrite(memfd, buffer + done, (size_t)(got - done), data + done);
                if (put < 0) { if (errno == EINTR) continue; goto fail; }
                done += put;
            }
            data += got;
        }
    }
    if (fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) goto fail;
    free(buffer);
    return memfd;
fail:;
    int saved = errno;
    free(buffer);
    close(memfd);
    errno = saved;
    return -1;
}

int msb_receive_fd(int sock) {
    char byte;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int))]; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                          .msg_controllen = sizeof(control.space) };
    ssize_t got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (got <= 0) { if (got == 0) errno = EBADMSG; return -1; }
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    if (cmsg == NULL || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS
        || cmsg->cmsg_len != CMSG_LEN(sizeof(int))) { errno = EBADMSG; return -1; }
    int fd;
    memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
    return fd;
}

int msb_accept(int listen_fd) { return accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC); }

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int msb_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

long long msb_fs_used_bytes(const char *path) {
    struct statfs s;
    if (statfs(path, &s) != 0) return -1;
    return (long long)(s.f_blocks - s.f_bfree) * (long long)s.f_bsize;
}

static struct termios saved_termios;
static int saved_tty_fd = -1;

void msb_tty_restore(void) {
    if (saved_tty_fd >= 0) {
        tcsetattr(saved_tty_fd, TCSADRAIN, &saved_termios);
        saved_tty_fd = -1;
    }
}

static void tty_fatal_signal(int signo) {
    msb_tty_restore();
    signal(signo, SIG_DFL);
    raise(signo);
}

int msb_tty_raw(int fd) {
    struct termios raw;
    if (tcgetattr(fd, &saved_termios) != 0) return -1;
    raw = saved_termios;
    cfmakeraw(&raw);
    saved_tty_fd = fd;
    static int registered = 0;
    if (!registered) { atexit(msb_tty_restore); registered = 1; }
    int sigs[] = {SIGTERM, SIGHUP, SIGQUIT};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = tty_fatal_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
    return tcsetattr(fd, TCSADRAIN, &raw);
}

static volatile sig_atomic_t sigint_flag = 0;
static int sigint_fd = -1;

static void sigint_handler(int signo) {
    (void)signo;
    int saved = errno;
    sigint_flag = 1;
    if (sigint_fd >= 0) { unsigned char b = SIGINT; ssize_t ignored = write(sigint_fd, &b, 1); (void)ignored; }
    errno = saved;
}

int msb_sigint_install(int write_fd) {
    sigint_fd = write_fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sigint_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: blocking reads return EINTR
    return sigaction(SIGINT, &sa, NULL);
}

int msb_sigint_take(void) {
    int was = sigint_flag;
    sigint_flag = 0;
    return was;
}

void msb_unblock_signals(void) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}
