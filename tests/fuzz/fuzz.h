/*
 * Helpers shared by the fuzz targets (tests/fuzz/fuzz_<target>.c): a
 * per-process temp directory made once and removed at exit, whole-file
 * writes, and a check that fails loudly. Header-only and test-only.
 *
 * A target defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize). Built with HERD_FUZZ it links libFuzzer; built
 * without, it links driver.c, which runs it over every file of a corpus
 * (how `make test` covers the targets).
 */
#ifndef HERD_TESTS_FUZZ_H
#define HERD_TESTS_FUZZ_H

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FUZZ_CHECK: an invariant of the code under test; abort() so libFuzzer
 * (and the driver) report the input that broke it. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* short enough that paths made from it fit PATH_MAX buffers */
static char fuzz_tmp_root[1024];

static inline void fuzz_tmp_remove(void)
{
    if (fuzz_tmp_root[0] != '\0') {
        base_rm_rf(AT_FDCWD, fuzz_tmp_root);
        fuzz_tmp_root[0] = '\0';
    }
}

/* fuzz_tmp is this process's temp directory, herd-fuzz-XXXXXX in $TMPDIR,
 * else in /dev/shm (the catalog compiler syncs the file system of every
 * version it writes: cheap on tmpfs), else in /tmp; made on the first call
 * and removed at exit. */
static inline const char *fuzz_tmp(void)
{
    if (fuzz_tmp_root[0] == '\0') {
        const char *base = getenv("TMPDIR");
        if (base == NULL || base[0] == '\0')
            base = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
        int n = snprintf(fuzz_tmp_root, sizeof(fuzz_tmp_root), "%s/herd-fuzz-XXXXXX", base);
        if (n < 0 || (size_t)n >= sizeof(fuzz_tmp_root) || mkdtemp(fuzz_tmp_root) == NULL) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_tmp_remove);
    }
    return fuzz_tmp_root;
}

/* fuzz_write_file replaces path with the bytes given; aborts on failure
 * (the harness, not the code under test, is broken then). */
static inline void fuzz_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || base_write_all(fd, data, len) != 0 || close(fd) != 0) {
        perror(path);
        abort();
    }
}

#endif
