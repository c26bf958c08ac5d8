/*
 * TLS for the tcp transports: nng's tls+tcp:// configured from PEM files,
 * for the extra listeners (server) and for links to another herd (client).
 *
 * Design notes: the files are read here, once, and handed to nng as PEM
 * text, so a bad path is reported with its name and the reason before any
 * socket exists; nng (through mbedtls, which libnng already links) keeps
 * its own parsed copy. The buffers holding the private key are wiped
 * before they are freed.
 */
#include "bus/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

static int read_pem(const char *what, const char *path, char **out, char *err, size_t err_size)
{
    size_t len;
    int rv = base_read_file(AT_FDCWD, path, out, &len);

    if (rv < 0)
        return base_errf(err, err_size, "%s %s: %s", what, path, strerror(-rv));
    if (strstr(*out, "-----BEGIN ") == NULL) {
        base_free(*out);
        *out = NULL;
        return base_errf(err, err_size, "%s %s: not a PEM file", what, path);
    }
    return 0;
}

static void wipe_free(char *p)
{
    if (p != NULL) {
        explicit_bzero(p, strlen(p));
        base_free(p);
    }
}

int bus__tls_config(const bus_tls_files *f, bool server, nng_tls_config **out, char *err,
                    size_t err_size)
{
    nng_tls_config *cfg = NULL;
    char *cert = NULL, *key = NULL, *ca = NULL;
    int rv;

    rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT);
    if (rv != 0) {
        base_errf(err, err_size, "TLS: %s", nng_strerror(rv));
        return bus__errno(rv);
    }
    if (f->cert_file != NULL && f->cert_file[0] &&
        ((rv = read_pem("certificate", f->cert_file, &cert, err, err_size)) < 0 ||
         (rv = read_pem("private key", f->key_file, &key, err, err_size)) < 0))
        goto out;
    if (f->ca_file != NULL && f->ca_file[0] &&
        (rv = read_pem("CA file", f->ca_file, &ca, err, err_size)) < 0)
        goto out;
    if (cert != NULL && (rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0) {
        base_errf(err, err_size, "certificate %s with key %s: %s", f->cert_file, f->key_file,
                  nng_strerror(rv));
        rv = bus__errno(rv);
        goto out;
    }
    if (ca != NULL && (rv = nng_tls_config_ca_chain(cfg, ca, NULL)) != 0) {
        base_errf(err, err_size, "CA file %s: %s", f->ca_file, nng_strerror(rv));
        rv = bus__errno(rv);
        goto out;
    }
    /* A client always checks the peer (against ca_file); a server does not
     * ask for client certificates: the bus has no client identities. */
    rv =
        nng_tls_config_auth_mode(cfg, server ? NNG_TLS_AUTH_MODE_NONE : NNG_TLS_AUTH_MODE_REQUIRED);
    if (rv == 0 && !server && f->server_name != NULL && f->server_name[0])
        rv = nng_tls_config_server_name(cfg, f->server_name);
    if (rv != 0) {
        base_errf(err, err_size, "TLS: %s", nng_strerror(rv));
        rv = bus__errno(rv);
        goto out;
    }
    *out = cfg;
    cfg = NULL;
out:
    wipe_free(key);
    base_free(cert);
    base_free(ca);
    if (cfg != NULL)
        nng_tls_config_free(cfg);
    return rv;
}
