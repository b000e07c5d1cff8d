/*
 * memory.h -- guest memory: the memory map formula, a 4 GiB host
 * reservation in which guest address A lives at base + A, and a per-page
 * permission map that is the guest's view (standard regions or dynamic
 * paging).
 */
#ifndef PVM_MEMORY_H
#define PVM_MEMORY_H

#include "internal.h"

/* Told about every protection change (guest address, length, PROT_*). */
typedef int (*pvm_prot_hook)(void *ctx, uint64_t addr, uint64_t len, int prot);

typedef struct {
    uint8_t *base;            /* 4 GiB reservation */
    int memfd;                /* -1, or the shared memory file behind base (sandbox) */
    pvm_prot_hook prot_hook;  /* NULL, or called on every protection change */
    void *hook_ctx;
    uint8_t *perm;            /* PVM_PERM_* per guest page */
    uint32_t page_shift;
    uint32_t page_size;
    uint32_t page_count;      /* 2^32 >> page_shift */
    int dynamic;
    pvm_memory_map map;
    uint32_t heap_size;
    uint32_t rw_end;          /* rw_data_address + current accessible RW size */
    const uint8_t *ro_init, *rw_init;
    uint32_t ro_init_len, rw_init_len;
    int ro_dirty;             /* the host wrote into read-only pages */
} pvm_memory;

enum { PVM_ACCESS_OK = 0, PVM_ACCESS_TRAP = 1, PVM_ACCESS_FAULT = 2 };

int pvm_memory_init(pvm_memory *m, const pvm_instance_config *cfg, const uint8_t *ro,
                    uint32_t ro_len, const uint8_t *rw, uint32_t rw_len, char *err, size_t err_len);
int pvm_memory_init_shared(pvm_memory *m, const pvm_instance_config *cfg, const uint8_t *ro,
                           uint32_t ro_len, const uint8_t *rw, uint32_t rw_len, int memfd,
                           pvm_prot_hook hook, void *hook_ctx, char *err, size_t err_len);
void pvm_memory_destroy(pvm_memory *m);
int pvm_memory_reset(pvm_memory *m);

/* Classifies a guest access that failed the fast check (execution.md 3.3/3.4).
   On PVM_ACCESS_FAULT *page gets the faulting page address. */
int pvm_memory_guest_check(const pvm_memory *m, uint32_t addr, uint32_t n, int write,
                           uint32_t *page, int *write_protected);

static inline int pvm_memory_fast_ok(const pvm_memory *m, uint32_t addr, uint32_t n, uint8_t need) {
    uint32_t off = addr & (m->page_size - 1);
    return off <= m->page_size - n && m->perm[addr >> m->page_shift] >= need;
}

int pvm_memory_host_accessible(const pvm_memory *m, uint32_t addr, uint32_t len, int write_guest);
int pvm_memory_host_write(pvm_memory *m, uint32_t addr, const uint8_t *buf, uint32_t len);
uint32_t pvm_memory_sbrk(pvm_memory *m, uint32_t size);
int pvm_memory_map_pages(pvm_memory *m, uint32_t addr, uint32_t len, int perm);
int pvm_memory_protect_pages(pvm_memory *m, uint32_t addr, uint32_t len, int perm);
int pvm_memory_unmap_pages(pvm_memory *m, uint32_t addr, uint32_t len);

#endif
