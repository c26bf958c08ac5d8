/* Internals shared by the files of the workers module (worker__ prefix). */
#ifndef HERD_WORKERS_INTERNAL_H
#define HERD_WORKERS_INTERNAL_H

#include "workers/worker.h"

#define WORKER_MEM_SLOTS 4096

/* mem.c: accounts. Slot 0 is the unaccounted one. */
uint32_t worker__mem_slot_acquire(void);
void worker__mem_slot_release(uint32_t slot);
uint64_t worker__mem_slot_bytes(uint32_t slot);
uint32_t worker__mem_switch(uint32_t slot); /* returns the previous slot */

#endif
