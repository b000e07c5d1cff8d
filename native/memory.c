/*
 * memory.c -- the memory map formula (execution.md 3.2) and guest memory.
 */
#define _GNU_SOURCE
#include "memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#define GIB4 (UINT64_C(1) << 32)
/* The reservation extends past 4 GiB by a never-mapped guard, so that a JIT
   access at 0xFFFFFFFF of up to 8 bytes faults instead of touching
   whatever follows the reservation. */
#define RESERVATION (GIB4 + 0x10000)

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

int pvm_memory_map_build(uint32_t page_size, uint32_t ro_data_size, uint32_t rw_data_size,
                         uint32_t stack_size, uint32_t aux_data_size, pvm_memory_map *out,
                         char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    if (page_size < PVM_MIN_PAGE_SIZE) {
        pvm_set_err(err, err_len, "invalid page size: page size is too small");
        return -1;
    }
    if (page_size > PVM_MAX_PAGE_SIZE) {
        pvm_set_err(err, err_len, "invalid page size: page size is too big");
        return -1;
    }
    if (page_size & (page_size - 1)) {
        pvm_set_err(err, err_len, "invalid page size: page size is not a power of two");
        return -1;
    }
    /* All arithmetic in 64 bits; a round-up that leaves u32 is the
       reference's overflow error. */
    uint64_t ro_a64 = align_up(ro_data_size, 0x10000), ro_ap = align_up(ro_data_size, page_size);
    if (ro_a64 > UINT32_MAX || ro_ap > UINT32_MAX) {
        pvm_set_err(err, err_len, "the size of read-only data is too big");
        return -1;
    }
    uint64_t rw_a64 = align_up(rw_data_size, 0x10000), rw_ap = align_up(rw_data_size, page_size);
    if (rw_a64 > UINT32_MAX || rw_ap > UINT32_MAX) {
        pvm_set_err(err, err_len, "the size of read-write data is too big");
        return -1;
    }
    uint64_t st_a64 = align_up(stack_size, 0x10000), st_ap = align_up(stack_size, page_size);
    if (st_a64 > UINT32_MAX || st_ap > UINT32_MAX) {
        pvm_set_err(err, err_len, "the size of the stack is too big");
        return -1;
    }
    uint64_t aux_a64 = align_up(aux_data_size, 0x10000), aux_ap = align_up(aux_data_size, page_size);
    if (aux_a64 > UINT32_MAX || aux_ap > UINT32_MAX) {
        pvm_set_err(err, err_len, "the size of the aux data is too big");
        return -1;
    }
    uint64_t ro_addr = 0x10000;
    uint64_t rw_addr = 0x10000 + ro_a64 + 0x10000;
    uint64_t heap_base = rw_addr + rw_data_size;
    uint64_t low = rw_addr + rw_a64 + 0x10000;
    uint64_t heap_slack = rw_addr + rw_a64 - heap_base;
    if (aux_a64 > PVM_ADDRESS_SPACE_TOP) {
        pvm_set_err(err, err_len, "maximum memory size exceeded");
        return -1;
    }
    uint64_t aux_addr = PVM_ADDRESS_SPACE_TOP - aux_a64;
    if (aux_addr < 0x10000 + st_a64) {
        pvm_set_err(err, err_len, "maximum memory size exceeded");
        return -1;
    }
    uint64_t stack_high = aux_addr - 0x10000;
    uint64_t stack_low = stack_high - st_ap;
    uint64_t high = stack_high - st_a64;
    if (low > high || heap_base > UINT32_MAX) {
        pvm_set_err(err, err_len, "maximum memory size exceeded");
        return -1;
    }
    out->page_size = page_size;
    out->ro_data_address = (uint32_t)ro_addr;
    out->ro_data_size = (uint32_t)ro_ap;
    out->rw_data_address = (uint32_t)rw_addr;
    out->rw_data_size = (uint32_t)rw_ap;
    out->stack_address_high = (uint32_t)stack_high;
    out->stack_address_low = (uint32_t)stack_low;
    out->stack_size = (uint32_t)st_ap;
    out->aux_data_address = (uint32_t)aux_addr;
    out->aux_data_size = (uint32_t)aux_ap;
    out->heap_base = (uint32_t)heap_base;
    out->max_heap_size = (uint32_t)(high - low + heap_slack);
    return 0;
}

static void set_perm(pvm_memory *m, uint64_t addr, uint64_t len, uint8_t perm) {
    if (len == 0)
        return;
    uint64_t first = addr >> m->page_shift;
    uint64_t last = (addr + len - 1) >> m->page_shift;
    memset(m->perm + first, perm, (size_t)(last - first + 1));
}

/* Every protection change goes through here: the host's own view gets it
   (read-only pages stay writable for the host when a sandbox worker runs the
   code, since then nothing executes guest code in this process), and a
   sandbox worker's view is told through the hook. */
static int apply_prot(pvm_memory *m, uint64_t addr, uint64_t len, int prot) {
    if (len == 0)
        return 0;
    int host_prot = prot;
    if (m->memfd >= 0 && prot != PROT_NONE)
        host_prot = PROT_READ | PROT_WRITE;
    if (mprotect(m->base + addr, (size_t)len, host_prot) != 0)
        return -1;
    if (m->prot_hook && m->prot_hook(m->hook_ctx, addr, len, prot) != 0)
        return -1;
    return 0;
}

/* Drops the contents of a range (reads as zero afterwards). */
static void zero_range(pvm_memory *m, uint64_t addr, uint64_t len) {
    if (len == 0)
        return;
    if (m->memfd >= 0)
        fallocate(m->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)addr, (off_t)len);
    else
        madvise(m->base + addr, (size_t)len, MADV_DONTNEED);
}

static int host_rw(pvm_memory *m, uint64_t addr, uint64_t len) {
    if (len == 0)
        return 0;
    return apply_prot(m, addr, len, PROT_READ | PROT_WRITE);
}

static int host_none(pvm_memory *m, uint64_t addr, uint64_t len) {
    if (len == 0)
        return 0;
    zero_range(m, addr, len);
    return apply_prot(m, addr, len, PROT_NONE);
}

static int host_ro(pvm_memory *m, uint64_t addr, uint64_t len) {
    if (len == 0)
        return 0;
    return apply_prot(m, addr, len, PROT_READ);
}

/* Host protection of a range of whole guest pages from the permission map:
   the hardware view equals the guest view (the JIT relies on it). */
static int host_sync(pvm_memory *m, uint64_t addr, uint64_t len) {
    uint64_t end = addr + len;
    uint64_t p = addr;
    while (p < end) {
        uint8_t perm = m->perm[p >> m->page_shift];
        uint64_t q = p + m->page_size;
        while (q < end && m->perm[q >> m->page_shift] == perm)
            q += m->page_size;
        int prot = perm == PVM_PERM_WRITE ? PROT_READ | PROT_WRITE
                 : perm == PVM_PERM_READ ? PROT_READ : PROT_NONE;
        if (apply_prot(m, p, q - p, prot) != 0)
            return -1;
        p = q;
    }
    return 0;
}

/* Zero a host-RW range by dropping its pages. */
static void host_zero(pvm_memory *m, uint64_t addr, uint64_t len) {
    zero_range(m, addr, len);
}

static int layout_standard(pvm_memory *m) {
    const pvm_memory_map *mm = &m->map;
    /* the permission map is fresh (calloc: all PVM_PERM_NONE) */
    if (apply_prot(m, 0, GIB4, PROT_NONE) != 0)
        return -1;
    zero_range(m, 0, GIB4);
    if (host_rw(m, mm->ro_data_address, mm->ro_data_size) ||
        host_rw(m, mm->rw_data_address, mm->rw_data_size) ||
        host_rw(m, mm->stack_address_low, mm->stack_size) ||
        host_rw(m, mm->aux_data_address, mm->aux_data_size))
        return -1;
    set_perm(m, mm->ro_data_address, mm->ro_data_size, PVM_PERM_READ);
    set_perm(m, mm->rw_data_address, mm->rw_data_size, PVM_PERM_WRITE);
    set_perm(m, mm->stack_address_low, mm->stack_size, PVM_PERM_WRITE);
    set_perm(m, mm->aux_data_address, mm->aux_data_size, PVM_PERM_READ);
    if (m->ro_init_len)
        memcpy(m->base + mm->ro_data_address, m->ro_init, m->ro_init_len);
    if (m->rw_init_len)
        memcpy(m->base + mm->rw_data_address, m->rw_init, m->rw_init_len);
    if (host_ro(m, mm->ro_data_address, mm->ro_data_size) ||
        host_ro(m, mm->aux_data_address, mm->aux_data_size))
        return -1;
    m->heap_size = 0;
    m->rw_end = mm->rw_data_address + mm->rw_data_size;
    return 0;
}

int pvm_memory_init(pvm_memory *m, const pvm_instance_config *cfg, const uint8_t *ro,
                    uint32_t ro_len, const uint8_t *rw, uint32_t rw_len, char *err, size_t err_len) {
    return pvm_memory_init_shared(m, cfg, ro, ro_len, rw, rw_len, -1, NULL, NULL, err, err_len);
}

int pvm_memory_init_shared(pvm_memory *m, const pvm_instance_config *cfg, const uint8_t *ro,
                           uint32_t ro_len, const uint8_t *rw, uint32_t rw_len, int memfd,
                           pvm_prot_hook hook, void *hook_ctx, char *err, size_t err_len) {
    memset(m, 0, sizeof *m);
    m->memfd = memfd;
    m->prot_hook = hook;
    m->hook_ctx = hook_ctx;
    if (pvm_memory_map_build(cfg->page_size, cfg->ro_data_size, cfg->rw_data_size, cfg->stack_size,
                             cfg->aux_data_size, &m->map, err, err_len) != 0)
        return -1;
    if (ro_len > cfg->ro_data_size || rw_len > cfg->rw_data_size) {
        pvm_set_err(err, err_len, "initial data is larger than its declared region");
        return -1;
    }
    m->page_size = cfg->page_size;
    m->page_shift = (uint32_t)__builtin_ctz(cfg->page_size);
    m->page_count = (uint32_t)(GIB4 >> m->page_shift);
    m->dynamic = cfg->dynamic_paging;
    /* mmap, not calloc: fresh zero pages, touched only where regions are
       (calloc would memset a recycled 1 MiB block on every instance) */
    m->perm = mmap(NULL, m->page_count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m->perm == MAP_FAILED) {
        m->perm = NULL;
        pvm_set_err(err, err_len, "out of memory for the page table");
        return -1;
    }
    void *base = m->memfd >= 0
        ? mmap(NULL, (size_t)RESERVATION, PROT_NONE, MAP_SHARED | MAP_NORESERVE, m->memfd, 0)
        : mmap(NULL, (size_t)RESERVATION, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        pvm_set_err(err, err_len, "cannot reserve 4 GiB of address space for guest memory (errno %d)", errno);
        munmap(m->perm, m->page_count);
        m->perm = NULL;
        return -1;
    }
    m->base = base;
    /* keep private copies of the initial data so the caller's buffers may go */
    if (ro_len) {
        uint8_t *c = malloc(ro_len);
        if (!c)
            goto oom;
        memcpy(c, ro, ro_len);
        m->ro_init = c;
        m->ro_init_len = ro_len;
    }
    if (rw_len) {
        uint8_t *c = malloc(rw_len);
        if (!c)
            goto oom;
        memcpy(c, rw, rw_len);
        m->rw_init = c;
        m->rw_init_len = rw_len;
    }
    if (!m->dynamic && layout_standard(m) != 0) {
        pvm_set_err(err, err_len, "cannot map guest memory (errno %d)", errno);
        pvm_memory_destroy(m);
        return -1;
    }
    return 0;
oom:
    pvm_set_err(err, err_len, "out of memory");
    pvm_memory_destroy(m);
    return -1;
}

void pvm_memory_destroy(pvm_memory *m) {
    if (m->base)
        munmap(m->base, (size_t)RESERVATION);
    if (m->perm)
        munmap(m->perm, m->page_count);
    free((void *)m->ro_init);
    free((void *)m->rw_init);
    memset(m, 0, sizeof *m);
}

int pvm_memory_reset(pvm_memory *m) {
    if (m->dynamic) {
        memset(m->perm, PVM_PERM_NONE, m->page_count);
        zero_range(m, 0, GIB4);
        return apply_prot(m, 0, GIB4, PROT_NONE);
    }
    const pvm_memory_map *mm = &m->map;
    /* drop everything that may have been touched, then lay out again */
    host_zero(m, mm->ro_data_address, mm->ro_data_size);
    host_zero(m, mm->rw_data_address, (uint64_t)m->rw_end - mm->rw_data_address);
    host_zero(m, mm->stack_address_low, mm->stack_size);
    host_zero(m, mm->aux_data_address, mm->aux_data_size);
    uint64_t init_end = (uint64_t)mm->rw_data_address + mm->rw_data_size;
    if (m->rw_end > init_end) {
        host_none(m, init_end, m->rw_end - init_end);
        set_perm(m, init_end, m->rw_end - init_end, PVM_PERM_NONE);
    }
    if (host_rw(m, mm->ro_data_address, mm->ro_data_size))
        return -1;
    if (m->ro_init_len)
        memcpy(m->base + mm->ro_data_address, m->ro_init, m->ro_init_len);
    if (m->rw_init_len)
        memcpy(m->base + mm->rw_data_address, m->rw_init, m->rw_init_len);
    if (host_ro(m, mm->ro_data_address, mm->ro_data_size) ||
        host_ro(m, mm->aux_data_address, mm->aux_data_size))
        return -1;
    m->heap_size = 0;
    m->rw_end = (uint32_t)init_end;
    return 0;
}

int pvm_memory_guest_check(const pvm_memory *m, uint32_t addr, uint32_t n, int write,
                           uint32_t *page, int *write_protected) {
    uint8_t need = write ? PVM_PERM_WRITE : PVM_PERM_READ;
    uint32_t pmask = ~(m->page_size - 1);
    uint64_t end = (uint64_t)addr + n;
    *write_protected = 0;
    if (!m->dynamic) {
        /* standard memory: any inaccessible byte traps */
        if (end > GIB4)
            return PVM_ACCESS_TRAP;
        uint32_t lo = addr >> m->page_shift, hi = (uint32_t)((end - 1) >> m->page_shift);
        for (uint32_t p = lo; p <= hi; p++)
            if (m->perm[p] < need)
                return PVM_ACCESS_TRAP;
        return PVM_ACCESS_OK;
    }
    uint32_t fault;
    if (end > GIB4) {
        uint32_t top = 0xFFFFFFFFu & pmask;
        if (m->perm[top >> m->page_shift] != PVM_PERM_NONE)
            return PVM_ACCESS_TRAP;
        fault = top;
        goto fault;
    }
    uint32_t lo = addr & pmask, hi = (uint32_t)(end - 1) & pmask;
    uint8_t plo = m->perm[lo >> m->page_shift], phi = m->perm[hi >> m->page_shift];
    if (lo == hi) {
        if (plo == PVM_PERM_NONE || plo < need) {
            *write_protected = plo != PVM_PERM_NONE;
            fault = lo;
            goto fault;
        }
        return PVM_ACCESS_OK;
    }
    if (plo == PVM_PERM_NONE) {
        fault = lo;
        goto fault;
    }
    if (phi == PVM_PERM_NONE) {
        fault = hi;
        goto fault;
    }
    if (plo < need) {
        *write_protected = 1;
        fault = lo;
        goto fault;
    }
    if (phi < need) {
        *write_protected = 1;
        fault = hi;
        goto fault;
    }
    return PVM_ACCESS_OK;
fault:
    if (fault < PVM_FAULT_TRAP_THRESHOLD)
        return PVM_ACCESS_TRAP;
    *page = fault;
    return PVM_ACCESS_FAULT;
}

int pvm_memory_host_write(pvm_memory *m, uint32_t addr, const uint8_t *buf, uint32_t len) {
    if (!pvm_memory_host_accessible(m, addr, len, 0))
        return -1;
    if (len == 0)
        return 0;
    if (m->memfd >= 0 || pvm_memory_host_accessible(m, addr, len, 1)) {
        memcpy(m->base + addr, buf, len);
        return 0;
    }
    /* read-only guest pages: lift the protection for the copy */
    uint64_t lo = (uint64_t)addr & ~(uint64_t)(m->page_size - 1);
    uint64_t hi = align_up((uint64_t)addr + len, m->page_size);
    if (host_rw(m, lo, hi - lo) != 0)
        return -1;
    memcpy(m->base + addr, buf, len);
    return host_sync(m, lo, hi - lo);
}

int pvm_memory_host_accessible(const pvm_memory *m, uint32_t addr, uint32_t len, int write_guest) {
    if (len == 0)
        return 1;
    uint64_t end = (uint64_t)addr + len;
    if (end > GIB4)
        return 0;
    uint8_t need = write_guest ? PVM_PERM_WRITE : PVM_PERM_READ;
    uint32_t lo = addr >> m->page_shift, hi = (uint32_t)((end - 1) >> m->page_shift);
    for (uint32_t p = lo; p <= hi; p++)
        if (m->perm[p] < need)
            return 0;
    return 1;
}

uint32_t pvm_memory_sbrk(pvm_memory *m, uint32_t size) {
    uint64_t new_size = (uint64_t)m->heap_size + size;
    if (new_size > UINT32_MAX || new_size > m->map.max_heap_size)
        return 0;
    uint64_t top = (uint64_t)m->map.heap_base + new_size;
    if (top > m->rw_end) {
        uint64_t new_end = align_up(top, m->page_size);
        if (host_rw(m, m->rw_end, new_end - m->rw_end) != 0)
            return 0;
        set_perm(m, m->rw_end, new_end - m->rw_end, PVM_PERM_WRITE);
        m->rw_end = (uint32_t)new_end;
    }
    m->heap_size = (uint32_t)new_size;
    return (uint32_t)top;
}

static int page_range(const pvm_memory *m, uint32_t addr, uint32_t len, uint64_t *start, uint64_t *end) {
    if (addr < PVM_ADDRESS_SPACE_BOTTOM || (addr & (m->page_size - 1)))
        return -1;
    uint64_t e = align_up((uint64_t)addr + len, m->page_size);
    if (e > GIB4)
        return -1;
    *start = addr;
    *end = e;
    return 0;
}

int pvm_memory_map_pages(pvm_memory *m, uint32_t addr, uint32_t len, int perm) {
    uint64_t s, e;
    if (!m->dynamic || page_range(m, addr, len, &s, &e) || (perm != PVM_PERM_READ && perm != PVM_PERM_WRITE))
        return -1;
    if (e == s)
        return 0;
    zero_range(m, s, e - s);
    set_perm(m, s, e - s, (uint8_t)perm);
    return host_sync(m, s, e - s);
}

int pvm_memory_protect_pages(pvm_memory *m, uint32_t addr, uint32_t len, int perm) {
    uint64_t s, e;
    if (!m->dynamic || page_range(m, addr, len, &s, &e) || (perm != PVM_PERM_READ && perm != PVM_PERM_WRITE))
        return -1;
    for (uint64_t p = s; p < e; p += m->page_size)
        if (m->perm[p >> m->page_shift] == PVM_PERM_NONE)
            return -1;
    set_perm(m, s, e - s, (uint8_t)perm);
    return host_sync(m, s, e - s);
}

int pvm_memory_unmap_pages(pvm_memory *m, uint32_t addr, uint32_t len) {
    uint64_t s, e;
    if (!m->dynamic || page_range(m, addr, len, &s, &e))
        return -1;
    if (e == s)
        return 0;
    host_none(m, s, e - s);
    set_perm(m, s, e - s, PVM_PERM_NONE);
    return 0;
}
