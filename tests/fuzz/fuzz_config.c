/*
 * Fuzz target `config`: herdd's config validation (supervisor/config.c and
 * every kind's validate, through sup_config_parse). The input is a config
 * file's bytes, read as sup_config_load reads one (jansson, duplicate keys
 * refused); a JSON value is validated over fresh defaults and everything
 * the parse kept is freed, whether it succeeded or not. An accepted config
 * holds only valid, unique worker names of known kinds; a refused one says
 * why.
 */
#include <string.h>

#include "supervisor/supervisor.h"
#include "workers/worker.h"
#include "fuzz.h"

static sup_config cfg; /* large (paths): not on the stack */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    char err[1024];

    if (root == NULL)
        return 0;
    sup_config_defaults(&cfg);
    err[0] = '\0';
    int rv = sup_config_parse(root, &cfg, err, sizeof(err));
    if (rv == 0) {
        for (size_t i = 0; i < cfg.n_workers; i++) {
            const sup_worker_config *wc = &cfg.workers[i];
            FUZZ_CHECK(base_name_valid(wc->name));
            FUZZ_CHECK(wc->kind_ops != NULL && strcmp(wc->kind_ops->name, wc->kind) == 0);
            FUZZ_CHECK(json_is_object(wc->json));
            FUZZ_CHECK(wc->memory_high == 0 || wc->memory_max == 0 ||
                       wc->memory_high <= wc->memory_max);
            for (size_t j = 0; j < i; j++)
                FUZZ_CHECK(strcmp(cfg.workers[j].name, wc->name) != 0);
        }
    } else {
        FUZZ_CHECK(rv < 0);
        FUZZ_CHECK(err[0] != '\0');
    }
    sup_config_free(&cfg);
    json_decref(root);
    return 0;
}
