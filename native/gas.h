/*
 * gas.h -- the "full" gas cost model (shared/spec/gas.md section 9): the
 * cost of a basic block is the number of cycles a small out-of-order CPU
 * model needs to run it, less a fixed slack.  The program builder feeds
 * each block's instructions in order and takes the block's cost at its end;
 * everything lives in the caller's pvm_pipe (no allocation), and the work
 * per instruction is bounded, so a program costs time linear in its size.
 */
#ifndef PVM_GAS_H
#define PVM_GAS_H

#include "internal.h"

#define PVM_PIPE_ROB 32      /* reorder-buffer entries (a power of two) */
#define PVM_PIPE_UNITS 5     /* ALU, load, store, multiply, divide */

typedef struct {
    /* what the model needs to know about the program */
    const uint8_t *code;
    uint32_t code_len;
    int trap_byte, unlikely_byte; /* opcode bytes that make a branch "predicted" */
    bool wide;                    /* 64-bit program: 32-bit ALU forms cost more */
    int32_t load_latency;         /* the cache model's memory access cost */

    /* per block */
    uint64_t cycles;
    uint32_t decode_left;         /* decode slots left in this cycle */
    uint32_t in_flight, head, tail;
    bool drained;                 /* the block's last instruction was fed */
    uint8_t units_free[PVM_PIPE_UNITS];
    /* the state of each buffer entry, one bit per entry: decoded this cycle,
       waiting to start, executing, finished (waiting to retire) */
    uint32_t decoding, waiting, executing, finished;
    int32_t left[PVM_PIPE_ROB];   /* cycles of execution left */
    uint8_t need[PVM_PIPE_ROB][PVM_PIPE_UNITS];
    uint32_t deps[PVM_PIPE_ROB];  /* entries whose results this one waits for */
    uint16_t writes[PVM_PIPE_ROB];/* registers whose latest value this entry produces */
    int8_t producer[16];          /* entry producing each register, -1 if ready */
} pvm_pipe;

/* memory_access_cost: 1..127 cycles (4, 25, 37 for the reference's L1/L2/L3 hit). */
void pvm_pipe_init(pvm_pipe *s, int isa, const uint8_t *code, uint32_t code_len,
                   uint32_t memory_access_cost);
/* Feeds the next instruction of the current block (op >= PVM_OP_INVALID is an
   `invalid`).  A block terminator drains the pipeline. */
void pvm_pipe_feed(pvm_pipe *s, const pvm_insn *in);
/* The current block's cost (an implicit `invalid` ends it if its last
   instruction did not); resets the model for the next block. */
uint32_t pvm_pipe_take_cost(pvm_pipe *s);

#endif
