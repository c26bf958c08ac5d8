/* File helpers. They block: callers run them off the loop thread, or on it
 * only where the work is known to be small. */
#include "base/base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int base_write_counted(int fd, const void *p, size_t n, size_t *written)
{
    const char *c = p;

    *written = 0;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += w;
        n -= (size_t)w;
        *written += (size_t)w;
    }
    return 0;
}

int base_write_all(int fd, const void *p, size_t n)
{
    size_t written;

    return base_write_counted(fd, p, n, &written);
}

int base_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* make_dir creates one directory; an existing directory is fine, an
 * existing anything else is -ENOTDIR. */
static int make_dir(const char *path, mode_t mode)
{
    struct stat st;

    if (mkdir(path, mode) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    if (stat(path, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int base_mkdir_p(const char *dir, mode_t mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(dir);
    int rc;

    if (len == 0)
        return -EINVAL;
    if (len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, dir, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/' || p[-1] == '/')
            continue;
        *p = '\0';
        rc = make_dir(buf, 0755);
        *p = '/';
        if (rc < 0)
            return rc;
    }
    return make_dir(buf, mode);
}

int base_private_dir(const char *dir, mode_t mode, bool create, bool tighten, bool *tightened,
                     char *err, size_t err_size)
{
    struct stat st;

    if (tightened != NULL)
        *tightened = false;
    if (lstat(dir, &st) < 0) {
        if (errno != ENOENT || !create) {
            int rc = -errno;
            base_errf(err, err_size, "%s: %s", dir, strerror(errno));
            return rc;
        }
        if ((mkdir(dir, mode) < 0 && errno != EEXIST) || chmod(dir, mode) < 0 ||
            lstat(dir, &st) < 0) {
            int rc = -errno;
            base_errf(err, err_size, "%s: cannot create: %s", dir, strerror(errno));
            return rc;
        }
    }
    if (S_ISLNK(st.st_mode)) {
        base_errf(err, err_size, "%s: is a symbolic link; refusing it (name the real directory)",
                  dir);
        return -EPERM;
    }
    if (!S_ISDIR(st.st_mode)) {
        base_errf(err, err_size, "%s: not a directory", dir);
        return -ENOTDIR;
    }
    if (st.st_uid != geteuid()) {
        base_errf(err, err_size, "%s: owned by uid %u, not by this user (uid %u); refusing it", dir,
                  (unsigned)st.st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    if ((st.st_mode & 07777 & ~mode) != 0 && tighten) {
        if (chmod(dir, mode) < 0) {
            int rc = -errno;
            base_errf(err, err_size, "%s: cannot tighten mode %04o to %04o: %s", dir,
                      (unsigned)(st.st_mode & 07777), (unsigned)mode, strerror(errno));
            return rc;
        }
        if (tightened != NULL)
            *tightened = true;
        return 0;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        base_errf(err, err_size,
                  "%s: mode %04o lets other users write to it; refusing it (chmod go-w)", dir,
                  (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

int base_replace_file(const char *path, const char *tmp_path, const void *data, size_t len,
                      mode_t mode, const char **step)
{
    const char *unused;
    int fd, rc;

    if (step == NULL)
        step = &unused;
    *step = "open";
    fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    *step = "write";
    rc = base_write_all(fd, data, len);
    if (rc == 0) {
        *step = "fsync";
        if (fsync(fd) < 0)
            rc = -errno;
    }
    if (close(fd) < 0 && rc == 0) {
        *step = "close";
        rc = -errno;
    }
    if (rc == 0 && rename(tmp_path, path) < 0) {
        *step = "rename";
        rc = -errno;
    }
    if (rc < 0) {
        unlink(tmp_path);
        return rc;
    }
    /* The directory of path: what the rename changed. */
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    if (n >= sizeof(dir))
        return -ENAMETOOLONG;
    memcpy(dir, slash == NULL ? "." : path, n);
    dir[n] = '\0';
    *step = "fsync of the directory";
    return base_fsync_dir(dir);
}

int base_read_file(int dirfd, const char *path, char **data, size_t *len)
{
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    struct stat st;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    size_t size = (size_t)st.st_size;
    char *buf = base_malloc(size + 1);
    if (buf == NULL) {
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
            base_free(buf);
            close(fd);
            return rc;
        }
        if (n == 0)
            break; /* shrank under us: what is there */
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return 0;
}

int base_rm_rf(int dirfd, const char *name)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = base_rm_rf(fd, de->d_name);
        if (r < 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    return rc;
}

int base_random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[32];
    size_t got = 0;

    if (n > sizeof(b))
        return -EINVAL;
    while (got < n) {
        ssize_t r = getrandom(b + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)r;
    }
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
    return 0;
}
