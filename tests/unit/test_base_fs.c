/*
 * base/fs.c: base_write_all (to a file, a bad descriptor, a pipe with no
 * reader), base_mkdir_p (nested, existing, the mode of the directory it is
 * asked for under a known umask, a file in the way), base_replace_file
 * (created, replaced, no temp file left; failures at "open" and "rename"
 * leaving the old file whole), base_read_file (contents, the NUL after
 * them, empty and missing files, relative to a directory descriptor, the
 * block charged to the current account), base_rm_rf (a nested tree with
 * symlinks it must not follow, a missing name), base_random_hex and
 * base_fsync_dir. Each test works in its own directory under
 * $HERD_TEST_TMP (else /tmp), removed afterwards without base_rm_rf.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/base.h"

typedef struct fixture {
    char dir[PATH_MAX];
    mode_t umask_saved;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    const char *base = getenv("HERD_TEST_TMP");

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/base-fs-XXXXXX", base != NULL ? base : "/tmp");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    f->umask_saved = umask(022);
    umask(f->umask_saved);
    *state = f;
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    fixture *f = *state;
    struct stat st;

    umask(f->umask_saved);
    int rc = nftw(f->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    if (rc == 0 && lstat(f->dir, &st) == 0)
        rc = -1;
    free(f);
    return rc;
}

/* dir/name, asserted to fit. */
static const char *path_in(const fixture *f, const char *name, char out[PATH_MAX])
{
    int n = snprintf(out, PATH_MAX, "%s/%s", f->dir, name);

    assert_true(n > 0 && n < PATH_MAX);
    return out;
}

static void write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
    assert_int_equal(close(fd), 0);
}

/* The whole of a file, to compare, with plain libc. */
static void assert_file_is(const char *path, const void *want, size_t len)
{
    FILE *fp = fopen(path, "rb");

    assert_non_null(fp);
    char *got = malloc(len + 1);
    assert_non_null(got);
    size_t n = fread(got, 1, len + 1, fp);
    fclose(fp);
    assert_int_equal(n, len);
    assert_memory_equal(got, want, len);
    free(got);
}

static bool exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static bool is_dir(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- base_write_all ----------------------------------------------------- */

static void test_write_all(void **state)
{
    fixture *f = *state;
    char path[PATH_MAX];
    size_t n = 3 * 1024 * 1024 + 17;
    unsigned char *data = malloc(n + 4);

    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 131 + i / 4096);
    memcpy(data + n, "tail", 4);
    path_in(f, "out", path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(base_write_all(fd, data, n), 0);
    assert_int_equal(base_write_all(fd, data, 0), 0);
    assert_int_equal(base_write_all(fd, "tail", 4), 0);
    assert_int_equal(close(fd), 0);
    assert_file_is(path, data, n + 4);
    free(data);

    /* errors come back as negative errno */
    assert_int_equal(base_write_all(-1, "x", 1), -EBADF);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(base_write_all(fd, "x", 1), -EBADF);
    close(fd);

    /* a pipe with no reader: EPIPE (SIGPIPE ignored for the test) */
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    assert_int_equal(base_write_all(p[1], "x", 1), -EPIPE);
    signal(SIGPIPE, old);
    close(p[1]);
}

/* ---- base_mkdir_p ------------------------------------------------------- */

static void test_mkdir_p(void **state)
{
    fixture *f = *state;
    char path[PATH_MAX], sub[PATH_MAX];

    mode_t saved = umask(0);
    /* nested: all created, the last with the mode asked for */
    assert_int_equal(base_mkdir_p(path_in(f, "a/b/c", path), 0700), 0);
    assert_true(is_dir(path_in(f, "a", sub)));
    assert_true(is_dir(path_in(f, "a/b", sub)));
    assert_true(is_dir(path));
    assert_int_equal(mode_of(path), 0700);
    /* the parents it made are 0755 */
    assert_int_equal(mode_of(path_in(f, "a", sub)), 0755);
    assert_int_equal(mode_of(path_in(f, "a/b", sub)), 0755);
    /* existing: fine, and left as it was */
    assert_int_equal(base_mkdir_p(path, 0755), 0);
    assert_int_equal(mode_of(path), 0700);
    /* a new leaf under existing parents */
    assert_int_equal(base_mkdir_p(path_in(f, "a/b/d", path), 0750), 0);
    assert_int_equal(mode_of(path), 0750);
    assert_int_equal(base_mkdir_p(path_in(f, "a/b/e", path), 02770), 0);
    assert_int_equal(mode_of(path) & 0777, 0770);
    /* a trailing slash */
    assert_int_equal(base_mkdir_p(path_in(f, "x/y/", path), 0711), 0);
    assert_true(is_dir(path_in(f, "x/y", path)));
    assert_int_equal(mode_of(path), 0711);
    /* a repeated slash */
    assert_int_equal(base_mkdir_p(path_in(f, "m//n", path), 0700), 0);
    assert_true(is_dir(path_in(f, "m/n", path)));
    /* deep */
    char deep[PATH_MAX] = "deep";
    for (int i = 0; i < 40; i++)
        strcat(deep, "/d");
    assert_int_equal(base_mkdir_p(path_in(f, deep, path), 0700), 0);
    assert_true(is_dir(path));

    /* the umask applies */
    umask(027);
    assert_int_equal(base_mkdir_p(path_in(f, "masked", path), 0777), 0);
    assert_int_equal(mode_of(path), 0750);
    umask(0);

    /* a file in the way of a parent */
    write_file(path_in(f, "file", path), "x");
    assert_int_equal(base_mkdir_p(path_in(f, "file/sub", path), 0755), -ENOTDIR);
    assert_int_equal(base_mkdir_p(path_in(f, "file/sub/deeper", path), 0755), -ENOTDIR);
    /* a file where the directory should be */
    assert_int_equal(base_mkdir_p(path_in(f, "file", path), 0755), -ENOTDIR);
    /* nothing to create */
    assert_true(base_mkdir_p("", 0755) < 0);

    assert_int_equal(umask(saved), 0);
    assert_int_equal(umask(saved), saved);
}

/* ---- base_replace_file -------------------------------------------------- */

/* How many entries dir has (. and .. aside): no temp file left behind. */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void test_replace_file(void **state)
{
    fixture *f = *state;
    char path[PATH_MAX], tmp[PATH_MAX];
    const char *step = NULL;

    mode_t saved = umask(0);
    path_in(f, "state.json", path);
    path_in(f, "state.json.tmp", tmp);
    /* created when absent */
    assert_int_equal(base_replace_file(path, tmp, "old", 3, 0640, &step), 0);
    assert_file_is(path, "old", 3);
    assert_int_equal(mode_of(path), 0640);
    assert_false(exists(tmp));
    /* replaced */
    const char *longer = "{\"new\": \"content, longer than the old one\"}\n";
    assert_int_equal(base_replace_file(path, tmp, longer, strlen(longer), 0600, &step), 0);
    assert_file_is(path, longer, strlen(longer));
    assert_int_equal(mode_of(path), 0600);
    assert_false(exists(tmp));
    /* shorter: no old bytes left over; step may be NULL */
    assert_int_equal(base_replace_file(path, tmp, "s", 1, 0600, NULL), 0);
    assert_file_is(path, "s", 1);
    /* empty, and bytes with a NUL */
    assert_int_equal(base_replace_file(path, tmp, "", 0, 0600, NULL), 0);
    assert_file_is(path, "", 0);
    assert_int_equal(base_replace_file(path, tmp, "a\0b", 3, 0600, NULL), 0);
    assert_file_is(path, "a\0b", 3);
    /* a stale temp file from an earlier crash is simply overwritten */
    write_file(tmp, "stale stale stale stale");
    assert_int_equal(base_replace_file(path, tmp, "fresh", 5, 0600, NULL), 0);
    assert_file_is(path, "fresh", 5);
    assert_false(exists(tmp));
    assert_int_equal(entries(f->dir), 1);

    /* fails at open: the temp file's directory is missing */
    char bad_tmp[PATH_MAX];
    step = NULL;
    path_in(f, "missing/state.json.tmp", bad_tmp);
    assert_int_equal(base_replace_file(path, bad_tmp, "lost", 4, 0600, &step), -ENOENT);
    assert_non_null(step);
    assert_string_equal(step, "open");
    assert_file_is(path, "fresh", 5);
    assert_int_equal(entries(f->dir), 1);

    /* fails at rename: a directory with something in it is where the file
     * should go; the temp file is removed */
    char dpath[PATH_MAX], inner[PATH_MAX];
    path_in(f, "adir", dpath);
    assert_int_equal(mkdir(dpath, 0755), 0);
    write_file(path_in(f, "adir/inside", inner), "keep");
    step = NULL;
    int rc = base_replace_file(dpath, tmp, "data", 4, 0600, &step);
    assert_true(rc == -EISDIR || rc == -ENOTEMPTY || rc == -EEXIST);
    assert_non_null(step);
    assert_string_equal(step, "rename");
    assert_false(exists(tmp));
    assert_true(is_dir(dpath));
    assert_file_is(inner, "keep", 4);
    assert_file_is(path, "fresh", 5);
    assert_int_equal(entries(f->dir), 2);

    /* a path whose directory is missing fails at rename and leaves nothing */
    char gone[PATH_MAX];
    step = NULL;
    path_in(f, "nodir/x", gone);
    assert_int_equal(base_replace_file(gone, tmp, "data", 4, 0600, &step), -ENOENT);
    assert_string_equal(step, "rename");
    assert_false(exists(tmp));
    assert_int_equal(entries(f->dir), 2);
    umask(saved);
}

/* ---- base_read_file ----------------------------------------------------- */

static void test_read_file(void **state)
{
    fixture *f = *state;
    char path[PATH_MAX], tmp[PATH_MAX];
    char *data = NULL;
    size_t len = 0;

    /* contents (a NUL among them), and a NUL after them */
    path_in(f, "f", path);
    path_in(f, "f.tmp", tmp);
    assert_int_equal(base_replace_file(path, tmp, "ab\0cd", 5, 0644, NULL), 0);
    assert_int_equal(base_read_file(AT_FDCWD, path, &data, &len), 0);
    assert_non_null(data);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "ab\0cd", 6);
    assert_int_equal(base_mem_size(data), 6);
    base_free(data);

    /* relative to a directory descriptor */
    int dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dirfd >= 0);
    data = NULL;
    assert_int_equal(base_read_file(dirfd, "f", &data, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "ab\0cd", 6);
    base_free(data);

    /* empty: a buffer all the same, holding just the NUL */
    write_file(path_in(f, "empty", path), "");
    data = NULL;
    len = 99;
    assert_int_equal(base_read_file(dirfd, "empty", &data, &len), 0);
    assert_non_null(data);
    assert_int_equal(len, 0);
    assert_int_equal(data[0], '\0');
    base_free(data);

    /* missing */
    assert_int_equal(base_read_file(dirfd, "missing", &data, &len), -ENOENT);
    assert_int_equal(base_read_file(AT_FDCWD, path_in(f, "no/such", path), &data, &len), -ENOENT);
    /* a directory is not a file */
    assert_true(base_read_file(dirfd, ".", &data, &len) < 0);

    /* a large one, charged to the current account */
    size_t n = 2 * 1024 * 1024 + 3;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('A' + i % 57);
    path_in(f, "big", path);
    path_in(f, "big.tmp", tmp);
    assert_int_equal(base_replace_file(path, tmp, big, n, 0644, NULL), 0);
    uint32_t slot = base_mem_slot_acquire();
    assert_int_not_equal(slot, 0);
    uint32_t prev = base_mem_switch(slot);
    assert_int_equal(base_read_file(dirfd, "big", &data, &len), 0);
    assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(n + 1));
    assert_int_equal(len, n);
    assert_memory_equal(data, big, n);
    assert_int_equal(data[n], '\0');
    base_free(data);
    assert_int_equal(base_mem_slot_bytes(slot), 0);
    assert_int_equal(base_mem_switch(prev), slot);
    base_mem_slot_release(slot);
    free(big);
    close(dirfd);
}

/* ---- base_rm_rf --------------------------------------------------------- */

static void test_rm_rf(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX], q[PATH_MAX];
    int dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    assert_true(dirfd >= 0);
    /* something outside the tree that links in the tree point at */
    assert_int_equal(mkdir(path_in(f, "outside", p), 0755), 0);
    write_file(path_in(f, "outside/keep", p), "keep");

    /* the tree: nested directories, files, an empty directory, symlinks to
     * a directory and to a file outside, a dangling symlink */
    assert_int_equal(base_mkdir_p(path_in(f, "t/a/b/c", p), 0755), 0);
    assert_int_equal(mkdir(path_in(f, "t/empty", p), 0755), 0);
    write_file(path_in(f, "t/top", p), "1");
    write_file(path_in(f, "t/a/f1", p), "2");
    write_file(path_in(f, "t/a/b/f2", p), "3");
    write_file(path_in(f, "t/a/b/c/f3", p), "4");
    assert_int_equal(symlink(path_in(f, "outside", q), path_in(f, "t/dirlink", p)), 0);
    assert_int_equal(symlink("../../outside/keep", path_in(f, "t/a/filelink", p)), 0);
    assert_int_equal(symlink("nowhere", path_in(f, "t/dangling", p)), 0);

    assert_int_equal(base_rm_rf(dirfd, "t"), 0);
    assert_false(exists(path_in(f, "t", p)));
    /* what the links pointed at is still there */
    assert_true(is_dir(path_in(f, "outside", p)));
    assert_file_is(path_in(f, "outside/keep", p), "keep", 4);

    /* missing is not an error, twice */
    assert_int_equal(base_rm_rf(dirfd, "t"), 0);
    assert_int_equal(base_rm_rf(dirfd, "never-was"), 0);
    assert_int_equal(base_rm_rf(AT_FDCWD, path_in(f, "no/such/thing", p)), 0);

    /* a plain file, a symlink to a directory (the link goes, not the
     * directory), an empty directory, by absolute path */
    write_file(path_in(f, "plain", p), "x");
    assert_int_equal(base_rm_rf(dirfd, "plain"), 0);
    assert_false(exists(p));
    assert_int_equal(symlink(path_in(f, "outside", q), path_in(f, "link", p)), 0);
    assert_int_equal(base_rm_rf(dirfd, "link"), 0);
    assert_false(exists(p));
    assert_file_is(path_in(f, "outside/keep", p), "keep", 4);
    assert_int_equal(base_rm_rf(AT_FDCWD, path_in(f, "outside", p)), 0);
    assert_false(exists(p));

    /* a deep one */
    char deep[PATH_MAX] = "deep";
    for (int i = 0; i < 60; i++)
        strcat(deep, "/d");
    assert_int_equal(base_mkdir_p(path_in(f, deep, p), 0755), 0);
    assert_int_equal(base_rm_rf(dirfd, "deep"), 0);
    assert_false(exists(path_in(f, "deep", p)));
    assert_int_equal(entries(f->dir), 0);
    close(dirfd);
}

/* ---- base_random_hex ---------------------------------------------------- */

static void test_random_hex(void **state)
{
    char a[80], b[80];

    for (size_t n = 0; n <= 32; n++) {
        memset(a, 'X', sizeof(a));
        assert_int_equal(base_random_hex(a, n), 0);
        assert_int_equal(strlen(a), 2 * n);
        assert_int_equal(a[2 * n + 1], 'X'); /* nothing written past 2n+1 */
        for (size_t i = 0; i < 2 * n; i++)
            if (!((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f')))
                fail_msg("n %zu: byte %zu is '%c'", n, i, a[i]);
    }
    /* two calls differ (16 random bytes: equal with probability 2^-128) */
    assert_int_equal(base_random_hex(a, 16), 0);
    assert_int_equal(base_random_hex(b, 16), 0);
    assert_string_not_equal(a, b);
    /* every hex digit shows up over a few calls */
    bool seen[16] = {false};
    for (int round = 0; round < 20; round++) {
        assert_int_equal(base_random_hex(a, 32), 0);
        for (size_t i = 0; i < 64; i++)
            seen[a[i] <= '9' ? a[i] - '0' : a[i] - 'a' + 10] = true;
    }
    for (int d = 0; d < 16; d++)
        assert_true(seen[d]);
    /* too many */
    memset(a, 'X', sizeof(a));
    assert_int_equal(base_random_hex(a, 33), -EINVAL);
    assert_int_equal(base_random_hex(a, SIZE_MAX), -EINVAL);
    assert_int_equal(a[0], 'X');
}

/* ---- base_fsync_dir ----------------------------------------------------- */

static void test_fsync_dir(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX];

    assert_int_equal(base_fsync_dir(f->dir), 0);
    assert_int_equal(base_fsync_dir("/"), 0);
    assert_int_equal(base_fsync_dir(path_in(f, "missing", p)), -ENOENT);
    write_file(path_in(f, "file", p), "x");
    assert_int_equal(base_fsync_dir(p), -ENOTDIR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rm_rf, setup, teardown),
        cmocka_unit_test(test_random_hex),
        cmocka_unit_test_setup_teardown(test_fsync_dir, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
