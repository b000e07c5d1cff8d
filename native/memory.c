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

/* The permission map is always allocated for the smallest page size, so
   any map fits any page size. */
#define PERM_ALLOC (GIB4 >> 12)

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

/* ---- reuse of in-process reservations ----
   Creating an instance used to map a 4 GiB reservation and a permission map,
   lay out the regions (mprotect: VMA splits) and tear all of it down again;
   that dominated a small instance's cost.  A freed standard-layout instance
   instead parks them here with every page that was accessible dropped (it
   reads as zero again: nothing of the old tenant survives) and any heap
   growth protected again, so the region protections and the permission map
   still describe its initial layout.  An instance with the same memory map
   then only copies its initial data in; any other strips the layout first
   (all pages inaccessible, permissions none), which is a fresh reservation. */
#include <pthread.h>
#define POOL_MAX 8
typedef struct {
    uint8_t *base;
    uint8_t *perm;
    pvm_memory_map map;      /* the layout its protections describe */
    uint32_t ro_len;         /* its read-only region holds this much initial data, zero after */
} pool_entry;
static pool_entry pool[POOL_MAX];
static int pool_count;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

static int same_map(const pvm_memory_map *a, const pvm_memory_map *b) {
    return memcmp(a, b, sizeof *a) == 0;
}

/* Takes an entry, preferring one laid out as `map`; 1 if it matches. */
static int pool_take(const pvm_memory_map *map, pool_entry *out) {
    int found = -1;
    pthread_mutex_lock(&pool_lock);
    for (int k = pool_count - 1; k >= 0; k--)
        if (same_map(&pool[k].map, map)) {
            found = k;
            break;
        }
    if (found < 0 && pool_count > 0)
        found = pool_count - 1;
    if (found >= 0) {
        *out = pool[found];
        pool[found] = pool[--pool_count];
    }
    pthread_mutex_unlock(&pool_lock);
    if (found < 0)
        return -1;
    return same_map(&out->map, map);
}

static int pool_give(const pool_entry *e) {
    int ok = 0;
    pthread_mutex_lock(&pool_lock);
    if (pool_count < POOL_MAX) {
        pool[pool_count++] = *e;
        ok = 1;
    }
    pthread_mutex_unlock(&pool_lock);
    return ok;
}

/* The regions of a standard layout (page-rounded sizes). */
static void layout_ranges(const pvm_memory_map *mm, uint64_t r[4][2]) {
    r[0][0] = mm->ro_data_address;    r[0][1] = mm->ro_data_size;
    r[1][0] = mm->rw_data_address;    r[1][1] = mm->rw_data_size;
    r[2][0] = mm->stack_address_low;  r[2][1] = mm->stack_size;
    r[3][0] = mm->aux_data_address;   r[3][1] = mm->aux_data_size;
}

/* A parked entry of another layout -> a fresh reservation. */
static int strip_layout(pool_entry *e) {
    uint64_t r[4][2];
    layout_ranges(&e->map, r);
    if (e->ro_len && madvise(e->base + r[0][0], (size_t)r[0][1], MADV_DONTNEED) != 0)
        return -1;
    uint32_t shift = (uint32_t)__builtin_ctz(e->map.page_size);
    for (int k = 0; k < 4; k++) {
        if (r[k][1] == 0)
            continue;
        if (mprotect(e->base + r[k][0], (size_t)r[k][1], PROT_NONE) != 0)
            return -1;
        uint64_t first = r[k][0] >> shift, last = (r[k][0] + r[k][1] - 1) >> shift;
        memset(e->perm + first, PVM_PERM_NONE, (size_t)(last - first + 1));
    }
    memset(&e->map, 0, sizeof e->map);
    return 0;
}

static void pool_discard(pool_entry *e) {
    munmap(e->base, (size_t)RESERVATION);
    munmap(e->perm, PERM_ALLOC);
}

/* Parks a standard in-process instance's reservation (see above); 0 if the
   caller must unmap it instead. */
static int park(pvm_memory *m) {
    const pvm_memory_map *mm = &m->map;
    uint64_t init_end = (uint64_t)mm->rw_data_address + mm->rw_data_size;
    if (mm->page_size != m->page_size || m->rw_end < init_end)
        return 0; /* the layout was never completed */
    uint64_t r[4][2];
    layout_ranges(mm, r);
    r[1][1] = m->rw_end - mm->rw_data_address; /* with the heap */
    /* read-only data the guest cannot have changed stays (refill compares
       it with the next tenant's); written by the host, it goes too */
    if (!m->ro_dirty)
        r[0][1] = 0;
    for (int k = 0; k < 4; k++)
        if (r[k][1] && madvise(m->base + r[k][0], (size_t)r[k][1], MADV_DONTNEED) != 0)
            return 0;
    if (m->rw_end > init_end) {
        if (mprotect(m->base + init_end, m->rw_end - init_end, PROT_NONE) != 0)
            return 0;
        set_perm(m, init_end, m->rw_end - init_end, PVM_PERM_NONE);
    }
    pool_entry e = {m->base, m->perm, *mm, m->ro_dirty ? 0 : m->ro_init_len};
    return pool_give(&e);
}

/* The initial data into a parked reservation of the same layout. */
static int refill(pvm_memory *m, const pool_entry *e) {
    const pvm_memory_map *mm = &m->map;
    int ro_same = e->ro_len == m->ro_init_len &&
                  (!m->ro_init_len || memcmp(m->base + mm->ro_data_address, m->ro_init, m->ro_init_len) == 0);
    if (!ro_same && e->ro_len)
        zero_range(m, mm->ro_data_address, mm->ro_data_size);
    if (!ro_same && m->ro_init_len) {
        if (host_rw(m, mm->ro_data_address, mm->ro_data_size))
            return -1;
        memcpy(m->base + mm->ro_data_address, m->ro_init, m->ro_init_len);
        if (host_ro(m, mm->ro_data_address, mm->ro_data_size))
            return -1;
    }
    if (m->rw_init_len)
        memcpy(m->base + mm->rw_data_address, m->rw_init, m->rw_init_len);
    m->heap_size = 0;
    m->rw_end = mm->rw_data_address + mm->rw_data_size;
    return 0;
}

static int layout_standard(pvm_memory *m) {
    const pvm_memory_map *mm = &m->map;
    /* the reservation is fresh or scrubbed (every page inaccessible and
       zero, the permission map all PVM_PERM_NONE); a worker's view is told */
    if (m->memfd >= 0) {
        if (apply_prot(m, 0, GIB4, PROT_NONE) != 0)
            return -1;
        zero_range(m, 0, GIB4);
    }
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
    pool_entry e;
    int laid_out = 0;
    int got = m->memfd < 0 ? pool_take(&m->map, &e) : -1;
    if (got >= 0 && (m->dynamic || !got) && strip_layout(&e) != 0) {
        pool_discard(&e);
        got = -1;
    }
    if (got >= 0) {
        m->base = e.base;
        m->perm = e.perm;
        laid_out = got == 1 && !m->dynamic;
    } else {
        /* mmap, not calloc: fresh zero pages, touched only where regions are
           (calloc would memset a recycled 1 MiB block on every instance) */
        m->perm = mmap(NULL, PERM_ALLOC, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
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
            munmap(m->perm, PERM_ALLOC);
            m->perm = NULL;
            return -1;
        }
        m->base = base;
    }
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
    if (!m->dynamic && (laid_out ? refill(m, &e) : layout_standard(m)) != 0) {
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
    int pooled = m->base && m->perm && m->memfd < 0 && !m->dynamic && m->page_size && park(m);
    if (!pooled && m->base)
        munmap(m->base, (size_t)RESERVATION);
    if (!pooled && m->perm)
        munmap(m->perm, PERM_ALLOC);
    free((void *)m->ro_init);
    free((void *)m->rw_init);
    memset(m, 0, sizeof *m);
}

/* ---- reset: restore only what changed ----
   A reset used to drop every region (madvise / hole punch) and lay the
   read-only data out again: a dozen system calls and protection changes, and
   every page the next call touched faulted in again (in a sandbox worker too).
   Now the pages stay mapped and only those that differ from the initial image
   are written back:

   * which pages can differ: those that exist (in process: present or swapped
     out, from /proc/self/pagemap -- not mincore, which misses a dirty page
     that was swapped out; for a sandbox worker's shared file, the pages the
     file holds, whoever wrote them).  A page never touched reads as its
     initial zero and is skipped without being read;
   * each resident page is compared with its initial content (the region's
     initial data, then zero) and rewritten only when it differs.

   So the work is one pagemap read per region plus a compare of the pages touched so
   far, and a copy of the pages actually dirtied; no page faults again.  To keep
   that bounded, resident pages that compared clean and are zero-initialised are
   dropped again when there are many of them (a call that once used a large
   buffer does not make every later reset compare it).

   Read-only data and the aux region cannot be written by the guest (read-only
   for the hardware too, in process and in a sandbox worker): only the host's
   writes change them (ro_dirty), and only then are they restored. */

#define HOST_PAGE 4096u
#define PAGEMAP_CHUNK 1024u         /* pagemap entries per read (4 MiB of guest memory) */
#define PAGEMAP_PRESENT (UINT64_C(1) << 63)
#define PAGEMAP_SWAPPED (UINT64_C(1) << 62)

/* /proc/self/pagemap, opened on first use (-1 if it cannot be: then every
   reset drops and reloads its regions, as before).  The file stays bound to
   the address space that opened it, so a forked child must not inherit it:
   the fork handler closes it there and the child opens its own. */
#define PAGEMAP_UNOPENED (-2)
static int pagemap_fd_value = PAGEMAP_UNOPENED;
static int pagemap_atfork_done;
static pthread_mutex_t pagemap_lock = PTHREAD_MUTEX_INITIALIZER;
static void pagemap_after_fork(void) {
    if (pagemap_fd_value >= 0)
        close(pagemap_fd_value);
    pagemap_fd_value = PAGEMAP_UNOPENED;
    pthread_mutex_init(&pagemap_lock, NULL);
}
static int pagemap_fd(void) {
    int fd = __atomic_load_n(&pagemap_fd_value, __ATOMIC_ACQUIRE);
    if (fd != PAGEMAP_UNOPENED)
        return fd;
    pthread_mutex_lock(&pagemap_lock);
    if (!pagemap_atfork_done)
        pagemap_atfork_done = pthread_atfork(NULL, NULL, pagemap_after_fork) == 0;
    if (pagemap_fd_value == PAGEMAP_UNOPENED) {
        /* without the fork handler a child could read its parent's map */
        int opened = pagemap_atfork_done ? open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC) : -1;
        __atomic_store_n(&pagemap_fd_value, opened < 0 ? -1 : opened, __ATOMIC_RELEASE);
    }
    fd = pagemap_fd_value;
    pthread_mutex_unlock(&pagemap_lock);
    return fd;
}
#define CLEAN_KEEP 64u              /* clean zero pages kept resident per region */

static const uint8_t zero_page[HOST_PAGE];

/* 1 if the host page at `p` (offset `off` in a region whose initial content is
   init[0, init_len) then zero) holds its initial content. */
static int page_clean(const uint8_t *p, uint64_t off, const uint8_t *init, uint64_t init_len) {
    if (off >= init_len)
        return memcmp(p, zero_page, HOST_PAGE) == 0;
    uint64_t n = init_len - off < HOST_PAGE ? init_len - off : HOST_PAGE;
    return memcmp(p, init + off, (size_t)n) == 0 &&
           (n == HOST_PAGE || memcmp(p + n, zero_page, (size_t)(HOST_PAGE - n)) == 0);
}

static void page_restore(uint8_t *p, uint64_t off, const uint8_t *init, uint64_t init_len) {
    if (off >= init_len) {
        memset(p, 0, HOST_PAGE);
        return;
    }
    uint64_t n = init_len - off < HOST_PAGE ? init_len - off : HOST_PAGE;
    memcpy(p, init + off, (size_t)n);
    if (n < HOST_PAGE)
        memset(p + n, 0, (size_t)(HOST_PAGE - n));
}

/* One resident page of a region being restored (see restore_region). */
static void restore_page(pvm_memory *m, uint64_t addr, uint64_t off, const uint8_t *init,
                         uint64_t init_len, int64_t *dirty, uint64_t *clean_zero) {
    uint8_t *p = m->base + addr + off;
    if (!page_clean(p, off, init, init_len)) {
        page_restore(p, off, init, init_len);
        ++*dirty;
    } else if (off >= init_len) {
        ++*clean_zero;
    }
}

/* Restores the region [addr, addr + len) (page aligned) to init[0, init_len)
   followed by zeros.  Returns the number of pages rewritten, or -1 when the
   residency of the range cannot be read (the caller then drops the range).
   In process the pages that exist come from /proc/self/pagemap; a sandbox's
   shared file says where it holds data (SEEK_DATA / SEEK_HOLE: a lookup per
   run of pages, where mincore on a shared mapping looks every page up; pages
   swapped out count as data). */
static int64_t restore_region(pvm_memory *m, uint64_t addr, uint64_t len, const uint8_t *init,
                              uint64_t init_len) {
    int64_t dirty = 0;
    uint64_t clean_zero = 0;
    /* The pages holding initial data are compared whether or not they exist:
       a page of it that was dropped (a sandbox worker drops every page a
       released tenant could reach before it parks the memory for the next) reads
       as zero, not as its initial content.  Presence decides only for the zero
       part after it. */
    uint64_t init_end = (init_len + HOST_PAGE - 1) & ~(uint64_t)(HOST_PAGE - 1);
    if (init_end > len)
        init_end = len;
    for (uint64_t q = 0; q < init_end; q += HOST_PAGE)
        restore_page(m, addr, q, init, init_len, &dirty, &clean_zero);
    if (m->memfd >= 0) {
        uint64_t end = addr + len;
        for (uint64_t at = addr + init_end; at < end;) {
            off_t data = lseek(m->memfd, (off_t)at, SEEK_DATA);
            if (data < 0) {
                if (errno == ENXIO)
                    break;   /* no data up to the end of the file */
                return -1;
            }
            if ((uint64_t)data >= end)
                break;
            off_t hole = lseek(m->memfd, data, SEEK_HOLE);
            if (hole < 0 || hole <= data)
                return -1;
            uint64_t from = (uint64_t)data & ~(uint64_t)(HOST_PAGE - 1);
            uint64_t to = (uint64_t)hole < end ? (uint64_t)hole : end;
            for (uint64_t q = from; q < to; q += HOST_PAGE)
                restore_page(m, addr, q - addr, init, init_len, &dirty, &clean_zero);
            at = to;
        }
    } else {
        int fd = pagemap_fd();
        if (fd < 0)
            return -1;
        uint64_t ent[PAGEMAP_CHUNK];
        uint64_t first = (uint64_t)(uintptr_t)(m->base + addr) / HOST_PAGE;
        for (uint64_t done = init_end; done < len;) {
            uint64_t pages = (len - done) / HOST_PAGE;
            if (pages > PAGEMAP_CHUNK)
                pages = PAGEMAP_CHUNK;
            size_t want = (size_t)pages * sizeof ent[0];
            off_t at = (off_t)((first + done / HOST_PAGE) * sizeof ent[0]);
            if (pread(fd, ent, want, at) != (ssize_t)want)
                return -1;
            for (uint64_t k = 0; k < pages; k++)
                if (ent[k] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED))
                    restore_page(m, addr, done + k * HOST_PAGE, init, init_len, &dirty, &clean_zero);
            done += pages * HOST_PAGE;
        }
    }
    if (clean_zero > CLEAN_KEEP) {
        /* drop the zero part that is not initial data: it reads as zero again
           (the pages this reset rewrote go too; they were zero already) */
        if (init_end < len)
            zero_range(m, addr + init_end, len - init_end);
    }
    return dirty;
}

/* The old way: drop the region and copy its initial data in again. */
static int reload_region(pvm_memory *m, uint64_t addr, uint64_t len, const uint8_t *init,
                         uint64_t init_len, int read_only) {
    if (len == 0)
        return 0;
    host_zero(m, addr, len);
    if (init_len == 0)
        return 0;
    if (read_only && host_rw(m, addr, len))
        return -1;
    memcpy(m->base + addr, init, (size_t)init_len);
    return read_only ? host_ro(m, addr, len) : 0;
}

static int reset_region(pvm_memory *m, uint64_t addr, uint64_t len, const uint8_t *init,
                        uint64_t init_len, int read_only) {
    if (len == 0)
        return 0;
    /* in place through the host's view: always writable for a sandbox's
       shared file, writable in process only where the guest may write */
    if ((m->memfd >= 0 || !read_only) && (addr | len) % HOST_PAGE == 0 &&
        restore_region(m, addr, len, init, init_len) >= 0)
        return 0;
    return reload_region(m, addr, len, init, init_len, read_only);
}

int pvm_memory_reset(pvm_memory *m) {
    if (m->dynamic) {
        memset(m->perm, PVM_PERM_NONE, m->page_count);
        zero_range(m, 0, GIB4);
        return apply_prot(m, 0, GIB4, PROT_NONE);
    }
    const pvm_memory_map *mm = &m->map;
    uint64_t init_end = (uint64_t)mm->rw_data_address + mm->rw_data_size;
    if (m->rw_end > init_end) { /* heap growth goes away again */
        host_none(m, init_end, m->rw_end - init_end);
        set_perm(m, init_end, m->rw_end - init_end, PVM_PERM_NONE);
    }
    int ro = m->ro_dirty;
    if ((ro && reset_region(m, mm->ro_data_address, mm->ro_data_size, m->ro_init, m->ro_init_len, 1)) ||
        reset_region(m, mm->rw_data_address, mm->rw_data_size, m->rw_init, m->rw_init_len, 0) ||
        reset_region(m, mm->stack_address_low, mm->stack_size, NULL, 0, 0) ||
        (ro && reset_region(m, mm->aux_data_address, mm->aux_data_size, NULL, 0, 1)))
        return -1;
    m->ro_dirty = 0;
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
    int writable = pvm_memory_host_accessible(m, addr, len, 1);
    if (!writable)
        m->ro_dirty = 1;   /* read-only guest pages change: the next reset restores them */
    if (m->memfd >= 0 || writable) {
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
