/*
 * Helpers for the catalog unit tests (tests/unit/test_catalog_*.c): a temp
 * root per binary and whole-file writes and reads that fail the test on
 * any error. Header-only and test-only. Include after <cmocka.h>.
 */
#ifndef HERD_CATALOG_TEST_SUPPORT_H
#define HERD_CATALOG_TEST_SUPPORT_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Set by each binary's main: "<TMPDIR>/<its name>". */
static char tmp_root[PATH_MAX];

/* make_tmp makes an empty directory tmp_root/name, its path in out. */
static inline void make_tmp(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", tmp_root, name);
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", out, out);
    assert_int_equal(system(cmd), 0);
}

static inline void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* read_text returns the whole file, NUL-terminated (caller frees). */
static inline char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

#endif
