/*
 * FTTE board firmware core: the protocol state machine, the sample store and the task runner,
 * portable C99 with no malloc and no board headers. A port gives it three things:
 *
 *  - a byte link (ftte_port): read with a timeout, write, and a millisecond clock;
 *  - its memory (ftte_board_memory): the training arena, the sample store, the model's
 *    weights in RAM and the frame buffers, all static arrays whose sizes the port (its
 *    platformio.ini env) chooses;
 *  - who it is (ftte_board_config): board id, clock, flash size, the arena budget it announces.
 *
 * The model layout is compiled in (`ftte_model_data.c`, written by ftte.model.io.write_c_source);
 * its weights are copied into RAM at boot and overwritten by PROVISION.
 *
 *     static ftte_board board;
 *     ftte_board_init(&board, &config, &port, &memory, &ftte_model_data);
 *     ftte_board_run(&board);        // serves the link until the port reports it closed
 *
 * The protocol is docs/protocol.md; what this firmware does with each message (and the order
 * in which a task draws its batches from the sample store) is docs/firmware.md.
 *
 * Robustness: every frame is checked by the wire codec, and every message against the board's
 * state, model and memory before anything is written. A malformed, oversized, out-of-order or
 * unexpected frame is answered with an ERROR frame (ACK, ERROR, HELLO and PONG are never
 * answered) and leaves the board serving. Waits are bounded by the port's clock: a host that
 * vanishes mid-transfer costs at most FTTE_BOARD_RETRIES retransmissions.
 */
#ifndef FTTE_BOARD_H
#define FTTE_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "ftte_train.h"
#include "ftte_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Firmware version announced in HELLO: (major << 16) | (minor << 8) | patch. */
#define FTTE_BOARD_FIRMWARE_VERSION 0x000100u

/** Milliseconds the board waits for the host's ACK of an UPDATE frame before it sends the
 *  frame again, and how many times it sends it before it gives the update up. */
#ifndef FTTE_BOARD_RETRY_MS
#define FTTE_BOARD_RETRY_MS 1000u
#endif
#ifndef FTTE_BOARD_RETRIES
#define FTTE_BOARD_RETRIES 5
#endif

/** Largest class count a model may have (loss_after is computed one sample at a time into a
 *  buffer of this many floats). */
#ifndef FTTE_BOARD_MAX_CLASSES
#define FTTE_BOARD_MAX_CLASSES 64
#endif

/** ERROR.detail of UNEXPECTED answering a TASK header: what the board lacks. */
#define FTTE_BOARD_LACKS_WEIGHTS 1u /**< no valid weights: PROVISION first */
#define FTTE_BOARD_LACKS_SAMPLES 2u /**< an empty sample store: DATA first */

/** Sizes of the frame buffers a board with a receive buffer of max_frame bytes needs. */
#define FTTE_BOARD_RX_BYTES(max_frame) (max_frame)
#define FTTE_BOARD_TX_BYTES(max_frame) FTTE_WIRE_ENCODED_BOUND(max_frame)
#define FTTE_BOARD_STAGE_BYTES(max_frame) (max_frame)

/* ------------------------------------------------------------------------------------------ */
/* What a port provides                                                                        */
/* ------------------------------------------------------------------------------------------ */

/** The byte link and the clock. All three functions are required. */
typedef struct {
    void *ctx; /**< passed back to every function */
    /** Reads up to cap bytes into buf. Waits at most timeout_ms for the first byte (0: returns
     *  at once). Returns the bytes read (0 when none came), or a negative value when the link
     *  is gone for good (ftte_board_run then returns). */
    int32_t (*read)(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms);
    /** Writes n bytes; returns 0, or a negative value if they could not be sent (the board
     *  carries on: a lost frame is the protocol's business). Must not block for ever. */
    int32_t (*write)(void *ctx, const uint8_t *buf, uint32_t n);
    /** Milliseconds since some fixed point (wraps at 2^32). */
    uint32_t (*millis)(void *ctx);
} ftte_port;

/** Where a board keeps the provisioned weights across resets (optional: see
 *  ftte_board_attach_storage). One record of two parts, the head (FTTE_BOARD_STORED_HEAD_BYTES:
 *  magic, format, layout hash, body size, weights CRC, the head's own CRC) and the body (the
 *  weights as float32 LE, as PROVISION sends them). The core checks everything it loads, so a
 *  port needs no atomic write: a torn or damaged record fails a CRC and is ignored. */
typedef struct {
    void *ctx;
    /** Reads exactly n bytes of part (FTTE_BOARD_STORED_HEAD or _BODY) of the stored record
     *  into buf. Returns 0; FTTE_BOARD_NO_RECORD when nothing was ever stored; another negative
     *  value when the record is shorter or cannot be read. */
    int32_t (*load)(void *ctx, uint32_t part, void *buf, uint32_t n);
    /** Replaces the stored record by head (head_bytes) then body (body_bytes). Returns 0, or a
     *  negative value when it could not (no room, flash error): the board then stops
     *  announcing PERSIST until a later save succeeds. */
    int32_t (*save)(void *ctx, const void *head, uint32_t head_bytes, const void *body, uint32_t body_bytes);
} ftte_storage;

#define FTTE_BOARD_NO_RECORD (-1)
#define FTTE_BOARD_STORED_HEAD 0u
#define FTTE_BOARD_STORED_BODY 1u
#define FTTE_BOARD_STORED_HEAD_BYTES 24u
/** Byte offset of the body in a record kept as one file (head, then body). */
#define FTTE_BOARD_STORED_BODY_OFFSET FTTE_BOARD_STORED_HEAD_BYTES

/** What ftte_board_attach_storage found. */
typedef enum {
    FTTE_BOARD_STORED_LOADED = 0,      /**< stored weights loaded: HELLO announces them */
    FTTE_BOARD_STORED_NONE = 1,        /**< no record (first boot): the compiled-in weights */
    FTTE_BOARD_STORED_DAMAGED = 2,     /**< a record that fails its checks (torn write, bit rot): ignored */
    FTTE_BOARD_STORED_OTHER_MODEL = 3  /**< weights of another layout or size: ignored */
} ftte_board_stored;

/** Who the board is (HELLO). */
typedef struct {
    uint8_t board_id[FTTE_WIRE_BOARD_ID_SIZE];
    uint32_t flash_size;  /**< bytes */
    uint32_t cpu_hz;
    uint32_t ram_budget;  /**< arena bytes announced and enforced; 0 or more than the arena
                               buffer: the whole arena buffer */
} ftte_board_config;

/** The board's memory, every buffer owned by the port (static arrays). */
typedef struct {
    void *arena;             /**< the training arena, 4-byte aligned */
    uint32_t arena_bytes;
    void *store;             /**< sample storage for DATA, 4-byte aligned */
    uint32_t store_bytes;
    float *weights;          /**< the model's parameters in RAM: weight_count floats */
    uint32_t weight_count;   /**< must equal the model's parameter count */
    uint8_t *rx;             /**< receive buffer: max_frame bytes (FTTE_BOARD_RX_BYTES) */
    uint8_t *tx;             /**< transmit buffer: FTTE_BOARD_TX_BYTES(max_frame) bytes */
    uint8_t *stage;          /**< chunk staging: FTTE_BOARD_STAGE_BYTES(max_frame) bytes */
    uint32_t max_frame;      /**< the largest frame the board accepts and sends, >= 128 */
} ftte_board_memory;

/* ------------------------------------------------------------------------------------------ */
/* The board                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/** Everything the firmware keeps. Private: ports only allocate it (statically: ~6 KB). */
typedef struct {
    /* who and where */
    ftte_port port;
    ftte_board_config config;
    ftte_board_memory mem;
    uint32_t arena_budget;
    uint32_t boot_ms;
    /* the model: the compiled-in layout over the weights in RAM */
    const ftte_model *flash_model;
    ftte_layer layers[FTTE_MAX_LAYERS];
    ftte_model model;
    uint32_t layout_hash;
    uint32_t input_features;
    uint32_t classes;
    uint8_t weights_valid;
    uint8_t weights_crc_valid;
    uint32_t weights_crc;
    /* persistent weights (ftte_board_attach_storage) */
    ftte_storage storage;
    uint8_t has_storage;
    uint8_t save_pending;     /**< PROVISION completed: save after its ACK went out */
    uint8_t save_failed;      /**< the last save failed: no PERSIST in HELLO */
    /* the sample store: features [capacity][input_features], labels [capacity] */
    float *samples;
    int32_t *labels;
    uint32_t sample_capacity;
    uint32_t sample_count;
    uint32_t cursor;          /**< next sample a task's batch starts at */
    /* link */
    ftte_wire_decoder decoder;
    uint32_t host_max_frame;
    uint16_t tx_seq;
    uint8_t acked_valid;
    ftte_msg_ack last_ack;
    uint8_t state;            /**< ftte_wire_state */
    uint16_t progress;
    uint8_t abort;            /**< HELLO_REQUEST during a task: stop it */
    /* the transfer being received */
    ftte_wire_rx_transfer rx;
    ftte_msg rx_header;
    uint32_t data_first;
    /* the task: header, selection, plan */
    uint8_t task_planned;
    uint8_t task_ready;       /**< body complete and verified: train at the next poll */
    uint32_t selection_got;
    uint8_t selection_bytes[FTTE_WIRE_MAX_SELECTION_BYTES];
    ftte_wire_selection selection;
    ftte_layer_update updates[FTTE_MAX_LAYERS];
    ftte_plan plan;
    /* the update being sent */
    ftte_msg_update update;
    uint8_t sending;
    uint32_t tx_offset;       /**< body bytes of the update acknowledged so far */
    uint32_t tx_pending;      /**< body bytes in the frame awaiting its ACK (0: the header) */
    uint16_t tx_pending_seq;
    uint8_t tx_pending_type;
    uint32_t tx_sent_ms;
    uint32_t tx_tries;
    float logits[FTTE_BOARD_MAX_CLASSES];
} ftte_board;

/** Checks the memory against the model, builds the RAM layer table, copies the compiled-in
 *  weights into mem->weights and lays out the sample store. Returns FTTE_WIRE_OK, or
 *  FTTE_WIRE_ERR_ARG (missing buffer, max_frame out of range, weight_count not the model's),
 *  FTTE_WIRE_ERR_MODEL_MISMATCH (the model does not validate) or FTTE_WIRE_ERR_NO_MEMORY. */
ftte_wire_status ftte_board_init(ftte_board *b, const ftte_board_config *config,
                                 const ftte_port *port, const ftte_board_memory *mem,
                                 const ftte_model *model);

/** Gives the board a storage for its provisioned weights (call after ftte_board_init, before
 *  ftte_board_start). Loads the stored record if it holds weights of this model that pass
 *  every check, else keeps the compiled-in weights. From then on HELLO announces PERSIST and
 *  every completed PROVISION is saved (after its ACK). Returns what it found. */
ftte_board_stored ftte_board_attach_storage(ftte_board *b, const ftte_storage *storage);

/** A short English description of a ftte_board_stored value ("loaded", "damaged ..."). */
const char *ftte_board_stored_string(ftte_board_stored stored);

/** Sends the boot HELLO (preceded by a 0x00 that flushes any noise on the line). */
void ftte_board_start(ftte_board *b);

/** Serves the link once: waits up to timeout_ms for bytes, handles every complete frame, runs
 *  a task that became ready (training and then sending its UPDATE) and resends an unacknowledged
 *  UPDATE frame that timed out. Returns 0, or a negative value when the port's link is gone. */
int32_t ftte_board_poll(ftte_board *b, uint32_t timeout_ms);

/** ftte_board_start, then ftte_board_poll until the link is gone. */
void ftte_board_run(ftte_board *b);

/** CRC-32 of the weights as PROVISION sends them (float32 LE): HELLO's weights_crc. */
uint32_t ftte_board_weights_crc(ftte_board *b);

#ifdef __cplusplus
}
#endif

#endif /* FTTE_BOARD_H */
