/*
 * The example messages whose encodings are the golden frames (tests/golden_frames.txt). The
 * Python test (tests/test_wire.py) builds the same messages from its own dataclasses; both
 * must encode them to exactly the stored bytes.
 */
#ifndef FTTE_WIRE_EXAMPLES_H
#define FTTE_WIRE_EXAMPLES_H

#include <string.h>

#include "ftte_wire.h"

typedef struct {
    const char *name;
    ftte_msg msg;
    uint8_t flags;
    uint16_t seq;
    const uint8_t *tag;
} wire_example;

#define WIRE_EXAMPLES_MAX 24
#define WIRE_LAYOUT 0xDEADBEEFu

/* Bodies of the transfer examples. */
static uint8_t ex_provision_body[8];
static uint8_t ex_long_body[300];
static uint8_t ex_task_body[32];
static uint8_t ex_update_body[12];
static uint8_t ex_data_body[32];
static uint8_t ex_tag[FTTE_WIRE_TAG_SIZE];
static ftte_wire_selection ex_selection;

/* The task's selection: frozen, channels {1, 5} of 16 (bitmask), channels {3} of 64 (index
 * list), bias, full. */
static void wire_example_selection(ftte_wire_selection *s) {
    memset(s, 0, sizeof *s);
    s->num_layers = 5;
    s->layers[0].mode = FTTE_UPDATE_FROZEN;
    s->layers[1].mode = FTTE_UPDATE_CHANNELS;
    s->layers[1].out_channels = 16;
    s->layers[1].mask_offset = 0;
    s->masks[0] = (1u << 1) | (1u << 5);
    s->layers[2].mode = FTTE_UPDATE_CHANNELS;
    s->layers[2].out_channels = 64;
    s->layers[2].mask_offset = 2;
    s->masks[2] = 1u << 3;
    s->layers[3].mode = FTTE_UPDATE_BIAS;
    s->layers[4].mode = FTTE_UPDATE_FULL;
}

/* Fills ex[] and returns the count. */
static int wire_examples(wire_example *ex) {
    int n = 0;
    memset(ex, 0, sizeof(wire_example) * WIRE_EXAMPLES_MAX);
#define ADD(nm, ty) (ex[n].name = (nm), ex[n].msg.type = (ty), ex[n].seq = (uint16_t)n, &ex[n++].msg.u)

    ftte_msg_hello_request *hr = &ADD("hello_request", FTTE_MSG_HELLO_REQUEST)->hello_request;
    hr->max_frame = 1024;
    hr->wire_version = 1;

    ftte_msg_hello *h = &ADD("hello", FTTE_MSG_HELLO)->hello;
    for (int i = 0; i < FTTE_WIRE_BOARD_ID_SIZE; i++) h->board_id[i] = (uint8_t)(i + 1);
    h->firmware_version = 0x00010203u;
    h->ram_budget = 65536;
    h->flash_size = 1048576;
    h->cpu_hz = 64000000;
    h->layout_hash = WIRE_LAYOUT;
    h->weights_crc = 0x12345678u;
    h->data_capacity = 32768;
    h->max_frame = 256;
    h->wire_version = 1;
    h->caps = FTTE_WIRE_CAP_PERSIST | FTTE_WIRE_CAP_WEIGHTS;

    ADD("ping", FTTE_MSG_PING)->ping.nonce = 0xCAFEF00Du;

    ftte_msg_pong *po = &ADD("pong", FTTE_MSG_PONG)->pong;
    po->nonce = 0xCAFEF00Du;
    po->uptime_ms = 123456;
    po->state = FTTE_WIRE_STATE_TRAINING;
    po->progress = 500;

    ftte_msg_ack *a = &ADD("ack", FTTE_MSG_ACK)->ack;
    a->acked_seq = 9;
    a->acked_type = FTTE_MSG_TASK_CHUNK;
    a->received = 32;

    ftte_msg_error *e = &ADD("error", FTTE_MSG_ERROR)->error;
    e->frame_seq = 8;
    e->frame_type = FTTE_MSG_TASK;
    e->code = (uint8_t)-FTTE_WIRE_ERR_MODEL_MISMATCH;
    e->detail = WIRE_LAYOUT;

    const float weights[2] = {1.0f, -2.0f};
    ftte_wire_f32_to_le(weights, 2, ex_provision_body);
    ftte_msg_provision *pr = &ADD("provision", FTTE_MSG_PROVISION)->provision;
    pr->layout_hash = WIRE_LAYOUT;
    pr->body_bytes = sizeof ex_provision_body;
    pr->body_crc = ftte_wire_crc32(0, ex_provision_body, sizeof ex_provision_body);

    ftte_msg_chunk *c = &ADD("provision_chunk", FTTE_MSG_PROVISION_CHUNK)->chunk;
    c->offset = 0;
    c->len = sizeof ex_provision_body;
    c->data = ex_provision_body;

    /* A chunk of 300 non-zero bytes: COBS needs a full 254-byte block. */
    for (int i = 0; i < 300; i++) ex_long_body[i] = (uint8_t)((i * 7 + 1) % 255 + 1);
    c = &ADD("provision_chunk_long", FTTE_MSG_PROVISION_CHUNK)->chunk;
    c->offset = 256;
    c->len = sizeof ex_long_body;
    c->data = ex_long_body;

    wire_example_selection(&ex_selection);
    int32_t sel = ftte_wire_selection_encode(&ex_selection, ex_task_body, sizeof ex_task_body);
    const float values[3] = {0.5f, -0.25f, 1.5f};
    ftte_wire_f32_to_le(values, 3, ex_task_body + 20);
    ftte_msg_task *t = &ADD("task", FTTE_MSG_TASK)->task;
    t->task_id = 42;
    t->model_version = 7;
    t->layout_hash = WIRE_LAYOUT;
    t->learning_rate = 0.01f;
    t->momentum = 0.9f;
    t->local_steps = 20;
    t->local_epochs = 0;
    t->batch_size = 8;
    t->selection_bytes = (uint32_t)sel; /* 20 */
    t->param_count = 3;
    t->body_bytes = sizeof ex_task_body;
    t->body_crc = ftte_wire_crc32(0, ex_task_body, sizeof ex_task_body);

    c = &ADD("task_chunk", FTTE_MSG_TASK_CHUNK)->chunk;
    c->offset = 0;
    c->len = sizeof ex_task_body;
    c->data = ex_task_body;

    const float deltas[3] = {0.125f, -0.5f, 0.0f};
    ftte_wire_f32_to_le(deltas, 3, ex_update_body);
    ftte_msg_update *u = &ADD("update", FTTE_MSG_UPDATE)->update;
    u->task_id = 42;
    u->base_version = 7;
    u->samples_used = 160;
    u->loss_before = 2.25f;
    u->loss_after = 1.5f;
    u->delta_mean_sq = 0.0625f;
    u->train_ms = 1234;
    u->param_count = 3;
    u->body_bytes = sizeof ex_update_body;
    u->body_crc = ftte_wire_crc32(0, ex_update_body, sizeof ex_update_body);

    c = &ADD("update_chunk", FTTE_MSG_UPDATE_CHUNK)->chunk;
    c->offset = 0;
    c->len = sizeof ex_update_body;
    c->data = ex_update_body;

    const float features[6] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
    const int32_t labels[2] = {1, 0};
    ftte_wire_f32_to_le(features, 6, ex_data_body);
    ftte_wire_i32_to_le(labels, 2, ex_data_body + 24);
    ftte_msg_data *d = &ADD("data", FTTE_MSG_DATA)->data;
    d->first_sample = 0;
    d->sample_count = 2;
    d->features = 3;
    d->body_bytes = sizeof ex_data_body;
    d->body_crc = ftte_wire_crc32(0, ex_data_body, sizeof ex_data_body);

    c = &ADD("data_chunk", FTTE_MSG_DATA_CHUNK)->chunk;
    c->offset = 0;
    c->len = sizeof ex_data_body;
    c->data = ex_data_body;

    /* The auth-tag reservation: the tag sits between payload and CRC. */
    for (int i = 0; i < FTTE_WIRE_TAG_SIZE; i++) ex_tag[i] = (uint8_t)(0xA0 + i);
    ADD("ping_auth", FTTE_MSG_PING)->ping.nonce = 1;
    ex[n - 1].flags = FTTE_WIRE_FLAG_AUTH;
    ex[n - 1].tag = ex_tag;
#undef ADD
    return n;
}

#endif /* FTTE_WIRE_EXAMPLES_H */
