/*
 * compile_driver.c -- the C core's compile path alone, for callgrind (issue 18.3):
 * builds a program from a dumped blob (the shared analysis) and compiles it
 * with the JIT (metered), `repeats` times, printing the best thread CPU time
 * of each step and the page faults of the last round.
 *
 *   .venv/bin/python -c "import struct; from executor.blob import ProgramBlob; \
 *     b = ProgramBlob.load('../shared/blobs/doom.polkavm'); jt = list(b.jump_table); \
 *     open('/tmp/doom.bin', 'wb').write(struct.pack('<IIII', int(b.isa), len(b.code), \
 *     len(b.bitmask), len(jt)) + bytes(b.code) + bytes(b.bitmask) + struct.pack(f'<{len(jt)}I', *jt))"
 *   gcc -std=gnu11 -O2 -g -fno-strict-aliasing -Inative -o /tmp/compile_driver \
 *     benches/compile_driver.c native/isa.c native/decode.c native/memory.c native/gas.c \
 *     native/program.c native/vm.c native/interp.c native/instance.c native/jit/compile.c \
 *     native/jit/runtime.c native/sandbox/host.c build/generated/zygote_blob.c -lpthread
 *   valgrind --tool=callgrind /tmp/compile_driver /tmp/doom.bin 1
 *   /tmp/compile_driver /tmp/doom.bin 15
 *   /tmp/compile_driver /tmp/doom.bin 1 /tmp/doom.code   # + the machine code
 *
 * With a third argument the metered machine code of the last round is
 * written to that file and the unmetered code to the same name + ".none"
 * (to check that a change to the compiler leaves the code byte-identical).
 */
#define _GNU_SOURCE
#include "pvm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int dump_code(pvm_program *p, int metered, const char *path) {
    size_t len = 0;
    char err[256];
    if (pvm_program_compile_jit(p, metered, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    const uint8_t *code = pvm_program_jit_code(p, metered, &len);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(code, 1, len, f) != len) {
        fprintf(stderr, "cannot write %s\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f);
}

static long minor_faults(void) {
    struct rusage u;
    getrusage(RUSAGE_THREAD, &u);
    return u.ru_minflt;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DUMP [REPEATS]\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    uint32_t h[4];
    if (!f || fread(h, 4, 4, f) != 4)
        return 1;
    uint8_t *code = malloc(h[1] ? h[1] : 1), *bm = malloc(h[2] ? h[2] : 1);
    uint32_t *jt = malloc(h[3] * 4 + 4);
    if (fread(code, 1, h[1], f) != h[1] || fread(bm, 1, h[2], f) != h[2] || fread(jt, 4, h[3], f) != h[3])
        return 1;
    fclose(f);
    int repeats = argc > 2 ? atoi(argv[2]) : 1;
    double best_a = 1e9, best_j = 1e9;
    long faults_a = 0, faults_j = 0;
    size_t size = 0;
    uint32_t insns = 0;
    char err[256];
    for (int r = 0; r < repeats; r++) {
        long f0 = minor_faults();
        double t0 = cpu_now();
        pvm_program *p = pvm_program_new((int)h[0], code, h[1], bm, h[2], jt, h[3], NULL, 0, err, sizeof err);
        double t1 = cpu_now();
        long f1 = minor_faults();
        if (!p) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        if (pvm_program_compile_jit(p, 1, &size, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        double t2 = cpu_now();
        long f2 = minor_faults();
        insns = pvm_program_instruction_count(p);
        if (t1 - t0 < best_a)
            best_a = t1 - t0;
        if (t2 - t1 < best_j)
            best_j = t2 - t1;
        faults_a = f1 - f0;
        faults_j = f2 - f1;
        if (argc > 3 && r == repeats - 1) {
            char none[4096];
            snprintf(none, sizeof none, "%s.none", argv[3]);
            if (dump_code(p, 1, argv[3]) != 0 || dump_code(p, 0, none) != 0)
                return 1;
        }
        pvm_program_free(p);
    }
    printf("%u instructions: analysis %.3f ms, JIT %.3f ms, total %.3f ms (best of %d); "
           "%zu bytes of code; page faults (last round) %ld + %ld\n",
           insns, best_a * 1e3, best_j * 1e3, (best_a + best_j) * 1e3, repeats, size, faults_a, faults_j);
    free(code);
    free(bm);
    free(jt);
    return 0;
}
