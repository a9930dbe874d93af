/*
 * FTTE wire protocol: the one definition of the bytes that travel between the host and a board.
 *
 * The host (Python, through cffi) and the firmware both call this codec; neither re-declares a
 * layout or a constant. C99, no allocation, no I/O, no board headers: every buffer is the
 * caller's, and every size is bounded by a #define below.
 *
 * ---------------------------------------------------------------------------------------------
 * On the wire: one frame = COBS(header | payload | [auth tag] | CRC-32) followed by one 0x00.
 * ---------------------------------------------------------------------------------------------
 *
 *   offset  size  field
 *   0       1     version       FTTE_WIRE_VERSION
 *   1       1     type          ftte_msg_type
 *   2       1     flags         FTTE_WIRE_FLAG_*; undefined bits are zero
 *   3       1     reserved      zero
 *   4       2     seq           sender's sequence number, uint16 LE
 *   6       2     payload_len   N, uint16 LE
 *   8       N     payload       the message, little-endian fields (see each ftte_msg_*)
 *   8+N     16    auth tag      only when flags has FTTE_WIRE_FLAG_AUTH
 *   end-4   4     CRC-32        of every byte before it, uint32 LE
 *
 * The "frame" is those bytes before COBS. Frame sizes (max_frame in HELLO, the decoder's
 * capacity, FTTE_WIRE_MAX_FRAME) count the frame, not its COBS encoding: a receiver decodes
 * COBS on the fly into a buffer of max_frame bytes. COBS adds at most one byte per 254, plus
 * the 0x00 delimiter: FTTE_WIRE_ENCODED_BOUND(frame_len).
 *
 * CRC-32 is the IEEE 802.3 / zlib CRC (reflected polynomial 0xEDB88320, init and final XOR
 * 0xFFFFFFFF; check value of "123456789" is 0xCBF43926). It is also the weights hash of HELLO
 * and PROVISION and the body hash of every transfer, so one 64-byte table serves all three.
 *
 * The auth tag has a fixed size and a fixed place (between payload and CRC), so adding a MAC
 * over (header, seq, payload) later changes no message layout and no offset; the CRC still
 * covers the tag. Version 1 defines no MAC: the codec carries the tag bytes opaquely.
 *
 * Flow control (stop-and-wait): every frame of a transfer (a PROVISION, TASK, UPDATE or DATA
 * header and each of its chunks) is answered by an ACK or an ERROR carrying its seq; the sender
 * sends nothing more of that transfer until then and retransmits the same frame (same seq) on
 * timeout. A receiver that sees the seq it acknowledged last answers with the same ACK again
 * and does not apply the frame twice. HELLO_REQUEST -> HELLO and PING -> PONG are answered by
 * their reply; ACK, ERROR, PONG and HELLO are never answered. No side ever sends a frame larger
 * than the peer accepts: the board's max_frame in HELLO, the host's in HELLO_REQUEST. See
 * docs/protocol.md.
 *
 * API shape:
 *  - functions that write bytes return the byte count (>= 0) or a negative ftte_wire_status;
 *  - the others return an ftte_wire_status (FTTE_WIRE_OK == 0);
 *  - pack/unpack convert between plain structs and payload bytes field by field, in little
 *    endian, whatever the host's byte order (no struct is ever copied onto the wire).
 */
#ifndef FTTE_WIRE_H
#define FTTE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "ftte_train.h" /* FTTE_MAX_LAYERS, ftte_update_mode, ftte_layer_update */

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------------------------------- */
/* Limits and sizes                                                                          */
/* ----------------------------------------------------------------------------------------- */

/** Wire format version, byte 0 of every frame and a field of HELLO / HELLO_REQUEST. */
#define FTTE_WIRE_VERSION 1

/** Frame header bytes (version, type, flags, reserved, seq, payload_len). */
#define FTTE_WIRE_HEADER_SIZE 8
/** CRC-32 trailer bytes. */
#define FTTE_WIRE_CRC_SIZE 4
/** Authentication tag bytes, present only with FTTE_WIRE_FLAG_AUTH. */
#define FTTE_WIRE_TAG_SIZE 16
/** Frame bytes around the payload without a tag: header + CRC. */
#define FTTE_WIRE_OVERHEAD (FTTE_WIRE_HEADER_SIZE + FTTE_WIRE_CRC_SIZE)

/** Largest payload this build encodes or accepts. A board may define it smaller (its receive
 *  buffer is what it announces in HELLO anyway); the host keeps the default. */
#ifndef FTTE_WIRE_MAX_PAYLOAD
#define FTTE_WIRE_MAX_PAYLOAD 4096
#endif
/** Largest frame (before COBS) of this build: header, payload, tag, CRC. */
#define FTTE_WIRE_MAX_FRAME (FTTE_WIRE_OVERHEAD + FTTE_WIRE_MAX_PAYLOAD + FTTE_WIRE_TAG_SIZE)
/** Smallest max_frame a peer may announce: every fixed-size message fits with a tag, and a
 *  chunk still carries 96 data bytes. */
#define FTTE_WIRE_MIN_FRAME 128

/** Bytes on the wire of a frame of n bytes, at most: COBS adds one code byte per started
 *  254-byte block (at least one), then the 0x00 delimiter. */
#define FTTE_WIRE_ENCODED_BOUND(n) ((n) + (n) / 254 + 2)
/** Encoded bytes of the largest frame, at most: the size of a transmit buffer. */
#define FTTE_WIRE_MAX_ENCODED (FTTE_WIRE_MAX_FRAME + FTTE_WIRE_MAX_FRAME / 254 + 2)

/** Frame flags (byte 2). Bits not defined here must be zero. */
#define FTTE_WIRE_FLAG_AUTH 0x01 /**< a FTTE_WIRE_TAG_SIZE-byte tag follows the payload */
#define FTTE_WIRE_FLAGS_KNOWN 0x01

/** Sizes of the board id and of the fixed-size payloads. */
#define FTTE_WIRE_BOARD_ID_SIZE 8
#define FTTE_MSG_HELLO_REQUEST_SIZE 4
#define FTTE_MSG_HELLO_SIZE 40
#define FTTE_MSG_PING_SIZE 4
#define FTTE_MSG_PONG_SIZE 12
#define FTTE_MSG_ACK_SIZE 8
#define FTTE_MSG_ERROR_SIZE 8
#define FTTE_MSG_PROVISION_SIZE 12
#define FTTE_MSG_TASK_SIZE 44
#define FTTE_MSG_UPDATE_SIZE 40
#define FTTE_MSG_DATA_SIZE 20
/** A chunk payload is this header (the body offset) and then 1 or more body bytes. */
#define FTTE_MSG_CHUNK_HEADER_SIZE 4
/** The largest fixed-size payload (a stack buffer of this size packs any non-chunk message). */
#define FTTE_MSG_MAX_FIXED_SIZE 44

/** Channel selection limits (TASK): total bytes of the channel bitmasks of all layers, and
 *  the largest encoded selection (count byte, 6 bytes per layer, masks; an index list is only
 *  chosen when it is smaller than the mask, so the bound holds for both forms). */
#define FTTE_WIRE_MAX_MASK_BYTES 512
#define FTTE_WIRE_MAX_SELECTION_BYTES (1 + 6 * FTTE_MAX_LAYERS + FTTE_WIRE_MAX_MASK_BYTES)

/** HELLO caps bits. */
#define FTTE_WIRE_CAP_PERSIST 0x01 /**< the board stores provisioned weights across resets */
#define FTTE_WIRE_CAP_WEIGHTS 0x02 /**< the board holds valid weights now (weights_crc is theirs) */
#define FTTE_WIRE_CAP_AUTH 0x04    /**< the board can check and produce auth tags */
#define FTTE_WIRE_CAPS_KNOWN 0x07

/* ----------------------------------------------------------------------------------------- */
/* Status and error codes                                                                    */
/* ----------------------------------------------------------------------------------------- */

/**
 * Status of every codec function (negative: an error) and, negated, the code of an ERROR
 * message (ERROR.code = -status, 1..255). Values are part of the wire format: never renumber.
 */
typedef enum {
    FTTE_WIRE_OK = 0,
    FTTE_WIRE_ERR_ARG = -1,            /**< bad argument to a codec function (NULL, bad type) */
    FTTE_WIRE_ERR_BAD_CRC = -2,        /**< the frame's CRC-32 does not match its bytes */
    FTTE_WIRE_ERR_BAD_COBS = -3,       /**< COBS framing broken: the delimiter came inside a block */
    FTTE_WIRE_ERR_TOO_LARGE = -4,      /**< frame or payload larger than the limit or the buffer */
    FTTE_WIRE_ERR_TRUNCATED = -5,      /**< frame shorter than a header and CRC, or than its length field */
    FTTE_WIRE_ERR_BAD_VERSION = -6,    /**< wire version not supported */
    FTTE_WIRE_ERR_UNKNOWN_TYPE = -7,   /**< message type not defined */
    FTTE_WIRE_ERR_BAD_HEADER = -8,     /**< reserved header bits set, or frame longer than its length field */
    FTTE_WIRE_ERR_BAD_LENGTH = -9,     /**< payload length wrong for the message type */
    FTTE_WIRE_ERR_BAD_FIELD = -10,     /**< a field out of range or inconsistent (e.g. selection) */
    FTTE_WIRE_ERR_OUT_OF_ORDER = -11,  /**< sequence number or chunk offset not the next expected */
    FTTE_WIRE_ERR_UNEXPECTED = -12,    /**< message not expected in the receiver's state */
    FTTE_WIRE_ERR_MODEL_MISMATCH = -13,/**< model layout hash differs from the receiver's */
    FTTE_WIRE_ERR_NO_MEMORY = -14,     /**< does not fit the receiver's RAM or storage */
    FTTE_WIRE_ERR_BAD_HASH = -15,      /**< transfer body CRC-32 mismatch once complete */
    FTTE_WIRE_ERR_AUTH = -16,          /**< auth tag missing, invalid or not supported */
    FTTE_WIRE_ERR_BUSY = -17,          /**< receiver busy (training); retry later */
    FTTE_WIRE_ERR_STORAGE = -18,       /**< persistent storage failed */
    FTTE_WIRE_ERR_TRAINING = -19       /**< a training kernel failed (ERROR.detail: ftte_status) */
} ftte_wire_status;

/** A short English description of a status ("bad CRC: ..."); never NULL. */
const char *ftte_wire_status_string(int32_t status);

/* ----------------------------------------------------------------------------------------- */
/* Message types                                                                             */
/* ----------------------------------------------------------------------------------------- */

/** Message types (frame byte 1). A transfer header type T is followed by chunks of type T + 1.
 *  Values are part of the wire format: never renumber. */
typedef enum {
    FTTE_MSG_HELLO_REQUEST = 0x01,   /**< host -> board: start a session, ask for HELLO */
    FTTE_MSG_HELLO = 0x02,           /**< board -> host: who I am, what I can take */
    FTTE_MSG_PING = 0x03,            /**< either way: liveness */
    FTTE_MSG_PONG = 0x04,            /**< reply to PING, with the board's state */
    FTTE_MSG_ACK = 0x05,             /**< a transfer frame was accepted */
    FTTE_MSG_ERROR = 0x06,           /**< a frame was refused, or something failed */
    FTTE_MSG_PROVISION = 0x10,       /**< host -> board: full weights follow (transfer header) */
    FTTE_MSG_PROVISION_CHUNK = 0x11, /**< host -> board: weight bytes */
    FTTE_MSG_TASK = 0x12,            /**< host -> board: a training task (transfer header) */
    FTTE_MSG_TASK_CHUNK = 0x13,      /**< host -> board: selection, then parameter values */
    FTTE_MSG_UPDATE = 0x14,          /**< board -> host: a trained update (transfer header) */
    FTTE_MSG_UPDATE_CHUNK = 0x15,    /**< board -> host: parameter deltas */
    FTTE_MSG_DATA = 0x16,            /**< host -> board: training samples (transfer header) */
    FTTE_MSG_DATA_CHUNK = 0x17       /**< host -> board: features, then labels */
} ftte_msg_type;

/** Board state reported in PONG. */
typedef enum {
    FTTE_WIRE_STATE_IDLE = 0,      /**< waiting for a task */
    FTTE_WIRE_STATE_RECEIVING = 1, /**< inside a host -> board transfer */
    FTTE_WIRE_STATE_TRAINING = 2,  /**< running a task; PONG.progress in per mille */
    FTTE_WIRE_STATE_SENDING = 3    /**< sending an UPDATE */
} ftte_wire_state;

/** 1 if type is an ftte_msg_type, else 0. */
int32_t ftte_msg_type_known(int32_t type);
/** 1 if type is a transfer header (PROVISION, TASK, UPDATE, DATA), else 0. */
int32_t ftte_msg_type_is_transfer(int32_t type);
/** 1 if type is a chunk type (the header type + 1), else 0. */
int32_t ftte_msg_type_is_chunk(int32_t type);

/* ----------------------------------------------------------------------------------------- */
/* Messages (payloads). Offsets are byte offsets in the payload; all integers little endian,  */
/* floats IEEE-754 binary32 little endian.                                                    */
/* ----------------------------------------------------------------------------------------- */

/** HELLO_REQUEST, host -> board, 4 bytes. Starts a session: the board aborts any transfer,
 *  forgets the last seq it acknowledged, and answers with HELLO.
 *    0 u16 max_frame     largest frame the host accepts (>= FTTE_WIRE_MIN_FRAME)
 *    2 u8  wire_version  FTTE_WIRE_VERSION of the host
 *    3 u8  reserved      zero */
typedef struct {
    uint16_t max_frame;
    uint8_t wire_version;
} ftte_msg_hello_request;

/** HELLO, board -> host, 40 bytes: sent at boot and in answer to HELLO_REQUEST.
 *    0 u8[8] board_id          unique id of the board (e.g. its MCU's unique id)
 *    8 u32   firmware_version  (major << 16) | (minor << 8) | patch
 *   12 u32   ram_budget        bytes of RAM the board gives a training arena
 *   16 u32   flash_size        bytes of flash
 *   20 u32   cpu_hz            CPU clock in Hz
 *   24 u32   layout_hash       ftte_model_layout_hash() of the model it runs
 *   28 u32   weights_crc       CRC-32 of the weight bytes it holds (as PROVISION sends them)
 *   32 u32   data_capacity     bytes of sample storage for DATA
 *   36 u16   max_frame         largest frame it accepts (>= FTTE_WIRE_MIN_FRAME)
 *   38 u8    wire_version      FTTE_WIRE_VERSION of the board
 *   39 u8    caps              FTTE_WIRE_CAP_* bits */
typedef struct {
    uint8_t board_id[FTTE_WIRE_BOARD_ID_SIZE];
    uint32_t firmware_version;
    uint32_t ram_budget;
    uint32_t flash_size;
    uint32_t cpu_hz;
    uint32_t layout_hash;
    uint32_t weights_crc;
    uint32_t data_capacity;
    uint16_t max_frame;
    uint8_t wire_version;
    uint8_t caps;
} ftte_msg_hello;

/** PING, 4 bytes: 0 u32 nonce (echoed by PONG). */
typedef struct {
    uint32_t nonce;
} ftte_msg_ping;

/** PONG, 12 bytes.
 *    0 u32 nonce      the PING's nonce
 *    4 u32 uptime_ms  milliseconds since the board started (wraps)
 *    8 u8  state      ftte_wire_state
 *    9 u8  reserved   zero
 *   10 u16 progress   per mille of the running task (TRAINING), else 0 */
typedef struct {
    uint32_t nonce;
    uint32_t uptime_ms;
    uint8_t state;
    uint16_t progress;
} ftte_msg_pong;

/** ACK, 8 bytes: a transfer frame was accepted (a transfer's last chunk: and its body
 *  CRC-32 matched, and it was applied or stored).
 *    0 u16 acked_seq   seq of the acknowledged frame
 *    2 u8  acked_type  its type
 *    3 u8  reserved    zero
 *    4 u32 received    body bytes of the transfer received so far (0 after a header) */
typedef struct {
    uint16_t acked_seq;
    uint8_t acked_type;
    uint32_t received;
} ftte_msg_ack;

/** ERROR, 8 bytes.
 *    0 u16 frame_seq   seq of the refused frame (0 when the error is not about a frame)
 *    2 u8  frame_type  its type (0 when unknown or none)
 *    3 u8  code        -ftte_wire_status (1..255)
 *    4 u32 detail      what was expected, when that helps: the expected offset (OUT_OF_ORDER),
 *                      the receiver's layout hash (MODEL_MISMATCH), the bytes available
 *                      (NO_MEMORY), the ftte_status (TRAINING); else 0 */
typedef struct {
    uint16_t frame_seq;
    uint8_t frame_type;
    uint8_t code;
    uint32_t detail;
} ftte_msg_error;

/** PROVISION, host -> board, 12 bytes: the full weights follow in PROVISION_CHUNKs.
 *    0 u32 layout_hash  the model layout the weights are for (board refuses a mismatch)
 *    4 u32 body_bytes   total weight bytes (a multiple of 4, > 0): float32 LE, per weighted
 *                       layer in layer-table order its weights then its bias (ftte_types.h)
 *    8 u32 body_crc     CRC-32 of those bytes (HELLO.weights_crc once stored) */
typedef struct {
    uint32_t layout_hash;
    uint32_t body_bytes;
    uint32_t body_crc;
} ftte_msg_provision;

/** TASK, host -> board, 44 bytes: a training task; its body follows in TASK_CHUNKs.
 *    0 u32 task_id          host's id of the task, echoed by UPDATE
 *    4 u32 model_version    global model version the values are taken from
 *    8 u32 layout_hash      model layout the task is for
 *   12 f32 learning_rate    finite
 *   16 f32 momentum         finite (0: plain SGD)
 *   20 u32 local_steps      SGD steps to run; 0: run local_epochs epochs instead
 *   24 u16 local_epochs     epochs over the board's samples when local_steps is 0
 *   26 u16 batch_size       >= 1
 *   28 u32 selection_bytes  encoded selection length (1..FTTE_WIRE_MAX_SELECTION_BYTES)
 *   32 u32 param_count      float32 values after the selection
 *   36 u32 body_bytes       pad4(selection_bytes) + 4 * param_count
 *   40 u32 body_crc         CRC-32 of the body
 *  Body: the selection (ftte_wire_selection_encode), zero-padded to a multiple of 4, then
 *  param_count float32 LE values of the selected parameters in arena order: per layer in
 *  layer order, the trainable rows in channel order, then the bias (ftte_param_layout). */
typedef struct {
    uint32_t task_id;
    uint32_t model_version;
    uint32_t layout_hash;
    float learning_rate;
    float momentum;
    uint32_t local_steps;
    uint16_t local_epochs;
    uint16_t batch_size;
    uint32_t selection_bytes;
    uint32_t param_count;
    uint32_t body_bytes;
    uint32_t body_crc;
} ftte_msg_task;

/** UPDATE, board -> host, 40 bytes: the result of a task; the deltas follow in UPDATE_CHUNKs.
 *    0 u32 task_id        the TASK's task_id
 *    4 u32 base_version   the TASK's model_version (the version it trained from)
 *    8 u32 samples_used   samples that contributed (steps x batch, or epochs x samples)
 *   12 f32 loss_before    mean loss on the first batch / epoch before training
 *   16 f32 loss_after     mean loss after training
 *   20 f32 delta_mean_sq  mean of the squared deltas (the variance statistic)
 *   24 u32 train_ms       milliseconds spent training
 *   28 u32 param_count    deltas in the body (the TASK's param_count)
 *   32 u32 body_bytes     4 * param_count
 *   36 u32 body_crc       CRC-32 of the body
 *  Body: param_count float32 LE deltas (trained - received), in the TASK's value order. */
typedef struct {
    uint32_t task_id;
    uint32_t base_version;
    uint32_t samples_used;
    float loss_before;
    float loss_after;
    float delta_mean_sq;
    uint32_t train_ms;
    uint32_t param_count;
    uint32_t body_bytes;
    uint32_t body_crc;
} ftte_msg_update;

/** DATA, host -> board, 20 bytes: training samples; the samples follow in DATA_CHUNKs.
 *    0 u32 first_sample  index in the board's sample store of the first sample (0: replace)
 *    4 u32 sample_count  >= 1
 *    8 u32 features      floats per sample (the model's input size), >= 1
 *   12 u32 body_bytes    sample_count * (4 * features + 4)
 *   16 u32 body_crc      CRC-32 of the body
 *  Body: sample_count x features float32 LE (sample-major), then sample_count int32 LE labels. */
typedef struct {
    uint32_t first_sample;
    uint32_t sample_count;
    uint32_t features;
    uint32_t body_bytes;
    uint32_t body_crc;
} ftte_msg_data;

/** PROVISION_CHUNK, TASK_CHUNK, UPDATE_CHUNK, DATA_CHUNK: 4 + len bytes.
 *    0 u32 offset  byte offset of data in the transfer body: exactly the bytes received so far
 *    4 u8[len]     body bytes, len >= 1; a multiple of 4 except in a body's last chunk
 *  Unpacked, data points into the payload (no copy). */
typedef struct {
    uint32_t offset;
    uint32_t len;
    const uint8_t *data;
} ftte_msg_chunk;

/** The payload of any message, as a union of the per-type structs. */
typedef union {
    ftte_msg_hello_request hello_request;
    ftte_msg_hello hello;
    ftte_msg_ping ping;
    ftte_msg_pong pong;
    ftte_msg_ack ack;
    ftte_msg_error error;
    ftte_msg_provision provision;
    ftte_msg_task task;
    ftte_msg_update update;
    ftte_msg_data data;
    ftte_msg_chunk chunk; /**< every *_CHUNK type */
} ftte_msg_union;

/** Any message: type selects the member of u. */
typedef struct {
    uint8_t type; /**< ftte_msg_type */
    ftte_msg_union u;
} ftte_msg;

/* Per-message pack: writes the payload into out (cap bytes), returns its length or a negative
 * status (FTTE_WIRE_ERR_TOO_LARGE if cap is short, BAD_FIELD for a value the format cannot
 * carry). Per-message unpack: reads exactly len payload bytes (BAD_LENGTH otherwise) and
 * checks every field the format constrains (reserved bytes zero, sizes consistent...). */
int32_t ftte_msg_hello_request_pack(const ftte_msg_hello_request *m, uint8_t *out, size_t cap);
ftte_wire_status ftte_msg_hello_request_unpack(const uint8_t *p, size_t len, ftte_msg_hello_request *m);
int32_t ftte_msg_hello_pack(const ftte_msg_hello *m, uint8_t *out, size_t cap);
ftte_wire_status ftte_msg_hello_unpack(const uint8_t *p, size_t len, ftte_msg_hello *m);
int32_t ftte_msg_ping_pack(const ftte_msg_ping *m, uint8_t *out, size_t cap);
ftte_wire_status ftte_msg_ping_unpack(const uint8_t *p, size_t len, ftte_msg_ping *m);
int32_t ftte_msg_pong_pack(const ftte_msg_pong *m, uint8_t *out, size_t cap);
ftte_wire_status ftte_msg_pong_unpack(const uint8_t *p, size_t len, ftte_msg_pong *m);
int32_t ftte_msg_ack_pack(const ftte_msg_ack *m, uint8_t *out, size_t cap);
ftte_wire_status ftte_msg_ack_unpack(const uint8_t *p, size_t len, ftte_msg_ack *m);
int32_t ftte_msg_error_pack(const ftte_msg_error *m, uint8_t *out, size_t cap);
ftte_wire_status ftte_msg_error_unpack(const uint8_t *p, size_t len, ftte_msg_error *m);
int32_t ftte_msg_provision_pack(const ftte_msg_provision *m, uint8_t *out, size_t cap);
ftte_wire_status ftte_msg_provision_unpack(const uint8_t *p, size_t len, ftte_msg_provision *m);
int32_t ftte_msg_task_pack(const ftte_msg_task *m, uint8_t *out, size_t cap);
ftte_wire_status ftte_msg_task_unpack(const uint8_t *p, size_t len, ftte_msg_task *m);
int32_t ftte_msg_update_pack(const ftte_msg_update *m, uint8_t *out, size_t cap);
ftte_wire_status ftte_msg_update_unpack(const uint8_t *p, size_t len, ftte_msg_update *m);
int32_t ftte_msg_data_pack(const ftte_msg_data *m, uint8_t *out, size_t cap);
ftte_wire_status ftte_msg_data_unpack(const uint8_t *p, size_t len, ftte_msg_data *m);
int32_t ftte_msg_chunk_pack(const ftte_msg_chunk *m, uint8_t *out, size_t cap);
ftte_wire_status ftte_msg_chunk_unpack(const uint8_t *p, size_t len, ftte_msg_chunk *m);

/** Packs any message by its type (FTTE_WIRE_ERR_UNKNOWN_TYPE for an undefined type). */
int32_t ftte_msg_pack(const ftte_msg *m, uint8_t *out, size_t cap);
/** Unpacks the payload of a frame of the given type into m (m->type is set). */
ftte_wire_status ftte_msg_unpack(uint8_t type, const uint8_t *p, size_t len, ftte_msg *m);

/* ----------------------------------------------------------------------------------------- */
/* CRC-32 and COBS                                                                           */
/* ----------------------------------------------------------------------------------------- */

/** CRC-32 (IEEE, as zlib's crc32) of n bytes, continuing from crc, the CRC of the bytes before
 *  (0 to start): ftte_wire_crc32(ftte_wire_crc32(0, a, na), b, nb) is the CRC of a then b. */
uint32_t ftte_wire_crc32(uint32_t crc, const uint8_t *data, size_t n);

/** COBS-encodes n bytes into out (cap bytes), without the delimiter. Returns the encoded
 *  length (<= n + n / 254 + 1) or FTTE_WIRE_ERR_TOO_LARGE. in and out must not overlap. */
int32_t ftte_wire_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);
/** Decodes n COBS bytes (no 0x00 inside, no delimiter) into out (cap bytes). Returns the
 *  decoded length, FTTE_WIRE_ERR_BAD_COBS or FTTE_WIRE_ERR_TOO_LARGE. */
int32_t ftte_wire_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* ----------------------------------------------------------------------------------------- */
/* Frames                                                                                    */
/* ----------------------------------------------------------------------------------------- */

/** A parsed frame: a view into the caller's frame buffer (valid while the buffer is). */
typedef struct {
    uint8_t version;
    uint8_t type;
    uint8_t flags;
    uint16_t seq;
    uint16_t payload_len;
    const uint8_t *payload; /**< payload_len bytes */
    const uint8_t *tag;     /**< FTTE_WIRE_TAG_SIZE bytes with FTTE_WIRE_FLAG_AUTH, else NULL */
} ftte_wire_frame;

/**
 * Encodes one frame: header, payload, tag, CRC-32, COBS, the 0x00 delimiter, into out (cap
 * bytes; FTTE_WIRE_ENCODED_BOUND(frame) always suffices). tag: FTTE_WIRE_TAG_SIZE bytes, required
 * iff flags has FTTE_WIRE_FLAG_AUTH. Returns the bytes written, or FTTE_WIRE_ERR_TOO_LARGE
 * (payload over FTTE_WIRE_MAX_PAYLOAD or out too small), FTTE_WIRE_ERR_ARG, or
 * FTTE_WIRE_ERR_BAD_HEADER (undefined flag bits). payload and out must not overlap.
 */
int32_t ftte_wire_frame_encode(uint8_t type, uint8_t flags, uint16_t seq, const uint8_t *payload,
                               size_t payload_len, const uint8_t *tag, uint8_t *out, size_t cap);

/**
 * Validates a decoded frame (no COBS, no delimiter) of len bytes and fills f. In this order:
 * TRUNCATED (shorter than header + CRC), BAD_CRC, BAD_VERSION, BAD_HEADER (reserved byte or
 * undefined flags set), TRUNCATED (shorter than the payload length and tag say), BAD_HEADER
 * (longer), TOO_LARGE (payload over FTTE_WIRE_MAX_PAYLOAD), UNKNOWN_TYPE.
 */
ftte_wire_status ftte_wire_frame_parse(const uint8_t *frame, size_t len, ftte_wire_frame *f);

/** Writes the FTTE_WIRE_HEADER_SIZE header bytes of a frame into out, e.g. as the first
 *  input of a future MAC. */
ftte_wire_status ftte_wire_header_pack(uint8_t type, uint8_t flags, uint16_t seq,
                                       size_t payload_len, uint8_t *out);

/** Packs m and encodes it as one frame (chunks are streamed from m->u.chunk.data without an
 *  intermediate copy). Returns the bytes written or a negative status. */
int32_t ftte_wire_encode(const ftte_msg *m, uint8_t flags, uint16_t seq, const uint8_t *tag,
                         uint8_t *out, size_t cap);

/** Unpacks a parsed frame's payload into m (ftte_msg_unpack of f's type and payload). */
ftte_wire_status ftte_wire_decode(const ftte_wire_frame *f, ftte_msg *m);

/* ----------------------------------------------------------------------------------------- */
/* Streaming decoder                                                                         */
/* ----------------------------------------------------------------------------------------- */

/**
 * Decodes a byte stream into validated frames, COBS-decoding in place into the caller's
 * buffer (no other storage). Bytes of a frame that exceeds the buffer, or that fails COBS,
 * are discarded up to the next 0x00, so the decoder always resynchronises on the next frame.
 * Empty frames (consecutive 0x00) are ignored: a sender may send a 0x00 first to flush noise.
 * All fields are private.
 */
typedef struct {
    uint8_t *buf;        /* the caller's frame buffer */
    uint32_t capacity;   /* its size: the largest frame accepted */
    uint32_t len;        /* decoded bytes of the current frame */
    uint32_t seen;       /* encoded bytes of the current frame */
    uint8_t remaining;   /* data bytes left in the current COBS block */
    uint8_t zero_next;   /* the current block ends with an implied 0x00 */
    uint8_t discarding;  /* dropping bytes up to the next delimiter (frame too large) */
} ftte_wire_decoder;

/** Starts a decoder over buf (capacity bytes, at most FTTE_WIRE_MAX_FRAME are used). */
ftte_wire_status ftte_wire_decoder_init(ftte_wire_decoder *d, uint8_t *buf, size_t capacity);

/** Forgets any partial frame (e.g. after a link reset). */
void ftte_wire_decoder_reset(ftte_wire_decoder *d);

/**
 * Feeds one byte. Returns:
 *   > 0  a complete frame passed ftte_wire_frame_parse: its length; f describes it (a view of
 *        the buffer, valid until the next byte is fed);
 *   0    nothing complete yet;
 *   < 0  a frame was dropped: BAD_COBS, TOO_LARGE (reported once, as soon as the frame
 *        outgrows the buffer; its remaining bytes are skipped), or any ftte_wire_frame_parse
 *        error (reported at the delimiter).
 */
int32_t ftte_wire_decoder_push(ftte_wire_decoder *d, uint8_t byte, ftte_wire_frame *f);

/**
 * Feeds up to n bytes, stopping right after the first byte whose push returns nonzero (a frame
 * or an error); *consumed receives the bytes used. Call again with the rest of the input.
 */
int32_t ftte_wire_decoder_feed(ftte_wire_decoder *d, const uint8_t *data, size_t n,
                               size_t *consumed, ftte_wire_frame *f);

/** 1 if the decoder holds part of a frame (bytes since the last delimiter), else 0. */
int32_t ftte_wire_decoder_pending(const ftte_wire_decoder *d);

/* ----------------------------------------------------------------------------------------- */
/* Transfers: chunking, body reassembly, body fields                                         */
/* ----------------------------------------------------------------------------------------- */

/** Body data bytes per chunk for a peer accepting frames of max_frame bytes with these frame
 *  flags: max_frame - header - CRC - chunk offset - tag if FLAG_AUTH, rounded down to a
 *  multiple of 4 and capped by FTTE_WIRE_MAX_PAYLOAD. FTTE_WIRE_ERR_ARG if max_frame is below
 *  FTTE_WIRE_MIN_FRAME. */
int32_t ftte_wire_chunk_capacity(uint32_t max_frame, uint8_t flags);

/** Receiver's state of one transfer (caller-owned; all fields read-only for the caller). */
typedef struct {
    uint8_t type;          /**< header type (0: none) */
    uint32_t total;        /**< body_bytes of the header */
    uint32_t received;     /**< body bytes accepted so far */
    uint32_t expected_crc; /**< body_crc of the header */
    uint32_t crc;          /**< CRC-32 of the bytes accepted so far */
} ftte_wire_rx_transfer;

/** Starts a transfer from its (unpacked) header message: PROVISION, TASK, UPDATE or DATA.
 *  A transfer in progress is abandoned. FTTE_WIRE_ERR_ARG for another type. */
ftte_wire_status ftte_wire_rx_begin(ftte_wire_rx_transfer *t, const ftte_msg *header);

/**
 * Accepts the next chunk (an unpacked *_CHUNK message). Returns 1 when the body is complete and
 * its CRC-32 matches, 0 when more is expected, or: UNEXPECTED (no transfer, or a chunk of
 * another type), OUT_OF_ORDER (offset != received), TOO_LARGE (past body_bytes), BAD_HASH
 * (complete but CRC mismatch). A refused chunk changes nothing.
 */
int32_t ftte_wire_rx_chunk(ftte_wire_rx_transfer *t, const ftte_msg *chunk);

/** Byte offset of the first parameter value in a TASK body: pad4(selection_bytes). */
uint32_t ftte_wire_task_values_offset(const ftte_msg_task *task);

/* Explicit little-endian conversion of body arrays (any host byte order; no alignment needed). */
void ftte_wire_f32_to_le(const float *src, size_t n, uint8_t *dst);
void ftte_wire_f32_from_le(const uint8_t *src, size_t n, float *dst);
void ftte_wire_i32_to_le(const int32_t *src, size_t n, uint8_t *dst);
void ftte_wire_i32_from_le(const uint8_t *src, size_t n, int32_t *dst);

/* ----------------------------------------------------------------------------------------- */
/* Parameter selection (the head of a TASK body)                                             */
/* ----------------------------------------------------------------------------------------- */

/** Channel list encodings of a CHANNELS layer (chosen by the encoder: the smaller one). */
typedef enum {
    FTTE_WIRE_SEL_BITMASK = 0, /**< ceil(out_channels / 8) bytes, bit (o % 8) of byte (o / 8) */
    FTTE_WIRE_SEL_INDEX = 1    /**< count u16 LE channel indices, strictly increasing */
} ftte_wire_sel_form;

/** One layer of a selection. */
typedef struct {
    uint8_t mode;          /**< ftte_update_mode */
    uint16_t out_channels; /**< CHANNELS: the layer's output channels (bits of the mask) */
    uint16_t count;        /**< CHANNELS: selected channels (set by decode and encode) */
    uint16_t mask_offset;  /**< CHANNELS: offset of the layer's mask in masks[] */
} ftte_wire_layer_selection;

/**
 * The trainable subset of a model: per layer an update mode, and for CHANNELS a bitmask of
 * ceil(out_channels / 8) bytes at masks + mask_offset (bits past out_channels zero). The masks
 * are in the kernels' format, so a board hands them to the trainer as they are
 * (ftte_wire_selection_updates).
 *
 * Encoding: u8 num_layers, then per layer u8 mode and, for CHANNELS only,
 *   u8 form (ftte_wire_sel_form), u16 out_channels, u16 count, then the mask or the index list.
 * The index list is used iff 2 * count < ceil(out_channels / 8); the decoder refuses the
 * other form, so every selection has exactly one encoding.
 */
typedef struct {
    uint16_t num_layers; /**< 1..FTTE_MAX_LAYERS */
    uint16_t mask_bytes; /**< bytes of masks[] in use (decode sets it; encode reads the layers) */
    ftte_wire_layer_selection layers[FTTE_MAX_LAYERS];
    uint8_t masks[FTTE_WIRE_MAX_MASK_BYTES];
} ftte_wire_selection;

/** Empties s (no layers, no masks). */
void ftte_wire_selection_init(ftte_wire_selection *s);

/** Appends a layer with an update mode; for CHANNELS, out_channels >= 1 and a zeroed mask is
 *  laid out after the previous ones. BAD_FIELD for a bad mode or width, TOO_LARGE when the
 *  layers or masks are full. */
ftte_wire_status ftte_wire_selection_add_layer(ftte_wire_selection *s, uint8_t mode, uint16_t out_channels);

/** Marks output channel `channel` of CHANNELS layer `layer` selected (BAD_FIELD otherwise). */
ftte_wire_status ftte_wire_selection_set_channel(ftte_wire_selection *s, uint16_t layer, uint16_t channel);

/** 1 if channel is selected in CHANNELS layer `layer`, 0 if not, BAD_FIELD if out of range. */
int32_t ftte_wire_selection_has_channel(const ftte_wire_selection *s, uint16_t layer, uint16_t channel);

/** Encodes s into out (cap bytes) and sets the count of each CHANNELS layer from its mask.
 *  Returns the encoded length or BAD_FIELD (bad mode, out_channels 0, mask past masks[] or
 *  with bits past out_channels, num_layers out of range) or TOO_LARGE. */
int32_t ftte_wire_selection_encode(ftte_wire_selection *s, uint8_t *out, size_t cap);

/** Decodes exactly n bytes into s (masks laid out back to back). BAD_FIELD for anything
 *  malformed or non-canonical, TRUNCATED if n ends early, TOO_LARGE if the masks do not fit. */
ftte_wire_status ftte_wire_selection_decode(const uint8_t *in, size_t n, ftte_wire_selection *s);

/** Fills the trainer's update spec (num_layers entries) from s: channel_mask points into
 *  s->masks. FTTE_WIRE_ERR_MODEL_MISMATCH if num_layers differs from s->num_layers. */
ftte_wire_status ftte_wire_selection_updates(const ftte_wire_selection *s,
                                             ftte_layer_update *updates, int32_t num_layers);

#ifdef __cplusplus
}
#endif

#endif /* FTTE_WIRE_H */
