/* Shared by the firmware core's files; not part of its interface. */
#ifndef FTTE_BOARD_INTERNAL_H
#define FTTE_BOARD_INTERNAL_H

#include "ftte_board.h"

/* ---- link (board.c) ---------------------------------------------------------------------- */

uint32_t board_now(ftte_board *b);
/** Largest frame the board may send: the host's max_frame and its own buffer, the smaller. */
uint32_t board_tx_frame(const ftte_board *b);
/** Encodes and sends m with sequence number seq. */
void board_send(ftte_board *b, const ftte_msg *m, uint16_t seq);
/** Sends an ERROR about the frame (seq, type); type 0: not about a frame. */
void board_send_error(ftte_board *b, uint16_t seq, uint8_t type, int32_t status, uint32_t detail);
/** Sends the ACK of a transfer frame and remembers it (duplicates get it again). */
void board_send_ack(ftte_board *b, uint16_t seq, uint8_t type, uint32_t received);
/** Reads whatever is waiting (at most timeout_ms for the first byte) and handles its frames.
 *  Returns the port's negative value when the link is gone, else 0. */
int32_t board_service(ftte_board *b, uint32_t timeout_ms);

/** Copies the compiled-in weights into the RAM weights (boot, or a stored record that failed). */
void board_load_flash_weights(ftte_board *b);

/* ---- persistent weights (storage.c) ------------------------------------------------------- */

/** Saves the weights just provisioned (called once their ACK went out); a failure clears PERSIST. */
void storage_save(ftte_board *b);

/* ---- transfers from the host (transfers.c) ----------------------------------------------- */

/** A transfer header: checks it against the board, starts the transfer or answers ERROR. */
void transfer_header(ftte_board *b, const ftte_wire_frame *f, const ftte_msg *m);
/** A chunk: checks order, size and (last chunk) CRC, applies it, answers ACK or ERROR. */
void transfer_chunk(ftte_board *b, const ftte_wire_frame *f, const ftte_msg *m);
/** Abandons the transfer in progress, undoing nothing but marking what it left half-written
 *  as invalid (weights: not valid; samples: cut back to the first sample it overwrote). */
void transfer_abandon(ftte_board *b);

/* ---- the task (task.c) ------------------------------------------------------------------- */

/** Runs the ready task (training, servicing the link between steps) and starts its UPDATE. */
void task_run(ftte_board *b);
/** The host's ACK or ERROR of an UPDATE frame. */
void update_on_ack(ftte_board *b, const ftte_msg_ack *ack);
void update_on_error(ftte_board *b, const ftte_msg_error *error);
/** Resends the UPDATE frame awaiting its ACK when it timed out, or gives the update up. */
void update_check_timeout(ftte_board *b);
/** Visits the selected parameters of the planned task in arena (= wire value) order:
 *  visit(b, arena index of the first value of the run, its place in b->mem.weights, length)
 *  for every run that overlaps values [first, first + count), clipped to it. */
void task_param_runs(ftte_board *b, uint32_t first, uint32_t count,
                     void (*visit)(ftte_board *b, uint32_t value, float *weights, uint32_t n, void *ctx),
                     void *ctx);

/* ---- little-endian words in place -------------------------------------------------------- */

/** Turns n little-endian 32-bit words at p into native ones, in place (a no-op on
 *  little-endian targets). */
void board_le_words_in_place(void *p, uint32_t n);

#endif /* FTTE_BOARD_INTERNAL_H */
