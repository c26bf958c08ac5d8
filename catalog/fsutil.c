/* Small blocking file helpers (callers run them off the loop thread). */
#include "catalog/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int catalog__read_file(int dirfd, const char *path, char **data, size_t *len)
{
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int rc = -errno;
            free(buf);
            close(fd);
            return rc;
        }
        if (n == 0)
            break; /* shrank under us: serve what is there */
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return 0;
}

int catalog__rm_rf(int dirfd, const char *name)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = catalog__rm_rf(fd, de->d_name);
        if (r < 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    return rc;
}

void catalog__random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[32];
    if (n > sizeof b)
        n = sizeof b;
    if (getrandom(b, n, 0) != (ssize_t)n) {
        /* getrandom cannot fail for <= 256 bytes once seeded; keep going anyway */
        for (size_t i = 0; i < n; i++)
            b[i] = (unsigned char)(rand() ^ (int)getpid());
    }
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int catalog__read_current(const char *outdir, char *out, size_t out_size)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/current", outdir) >= sizeof path)
        return -ENAMETOOLONG;
    ssize_t n = readlink(path, out, out_size - 1);
    if (n < 0)
        return -errno;
    if ((size_t)n >= out_size - 1)
        return -ENAMETOOLONG;
    out[n] = '\0';
    return 0;
}
