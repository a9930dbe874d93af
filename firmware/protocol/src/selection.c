/*
 * The parameter selection at the head of a TASK body: per layer an update mode and, for
 * CHANNELS, the selected output channels as a bitmask or an index list, whichever is smaller.
 */
#include "wire_internal.h"

#define CHECK(cond, status)                                                                        \
    do {                                                                                           \
        if (!(cond)) return (status);                                                              \
    } while (0)

static uint32_t popcount8(uint8_t b) {
    uint32_t n = 0;
    for (; b; b &= (uint8_t)(b - 1u)) n++;
    return n;
}

static int mode_valid(uint8_t mode) {
    return mode == FTTE_UPDATE_FROZEN || mode == FTTE_UPDATE_BIAS || mode == FTTE_UPDATE_CHANNELS ||
           mode == FTTE_UPDATE_FULL;
}

/* The canonical form: the index list when strictly smaller than the mask. */
static uint8_t canonical_form(uint32_t count, uint32_t mask_bytes) {
    return 2u * count < mask_bytes ? FTTE_WIRE_SEL_INDEX : FTTE_WIRE_SEL_BITMASK;
}

/* Bits of the mask's last byte at or past out_channels are zero. */
static int mask_tail_clear(const uint8_t *mask, uint32_t out_channels) {
    uint32_t bits = out_channels % 8u;
    return bits == 0 || (mask[out_channels / 8u] >> bits) == 0;
}

void ftte_wire_selection_init(ftte_wire_selection *s) {
    if (s == NULL) return;
    s->num_layers = 0;
    s->mask_bytes = 0;
}

ftte_wire_status ftte_wire_selection_add_layer(ftte_wire_selection *s, uint8_t mode, uint16_t out_channels) {
    CHECK(s != NULL, FTTE_WIRE_ERR_ARG);
    CHECK(mode_valid(mode), FTTE_WIRE_ERR_BAD_FIELD);
    CHECK(s->num_layers < FTTE_MAX_LAYERS && s->mask_bytes <= FTTE_WIRE_MAX_MASK_BYTES, FTTE_WIRE_ERR_TOO_LARGE);
    ftte_wire_layer_selection *L = &s->layers[s->num_layers];
    L->mode = mode;
    L->out_channels = 0;
    L->count = 0;
    L->mask_offset = 0;
    if (mode == FTTE_UPDATE_CHANNELS) {
        CHECK(out_channels >= 1, FTTE_WIRE_ERR_BAD_FIELD);
        uint32_t mb = ((uint32_t)out_channels + 7u) / 8u;
        CHECK(s->mask_bytes + mb <= FTTE_WIRE_MAX_MASK_BYTES, FTTE_WIRE_ERR_TOO_LARGE);
        memset(s->masks + s->mask_bytes, 0, mb);
        L->out_channels = out_channels;
        L->mask_offset = s->mask_bytes;
        s->mask_bytes = (uint16_t)(s->mask_bytes + mb);
    }
    s->num_layers++;
    return FTTE_WIRE_OK;
}

/* The mask byte of a channel of a CHANNELS layer, or NULL when out of range. */
static const uint8_t *channel_byte(const ftte_wire_selection *s, uint16_t layer, uint16_t channel) {
    if (s == NULL || layer >= s->num_layers || layer >= FTTE_MAX_LAYERS) return NULL;
    const ftte_wire_layer_selection *L = &s->layers[layer];
    if (L->mode != FTTE_UPDATE_CHANNELS || channel >= L->out_channels) return NULL;
    uint32_t at = (uint32_t)L->mask_offset + channel / 8u;
    return at < FTTE_WIRE_MAX_MASK_BYTES ? s->masks + at : NULL;
}

ftte_wire_status ftte_wire_selection_set_channel(ftte_wire_selection *s, uint16_t layer, uint16_t channel) {
    const uint8_t *b = channel_byte(s, layer, channel);
    CHECK(b != NULL, FTTE_WIRE_ERR_BAD_FIELD);
    s->masks[b - s->masks] |= (uint8_t)(1u << (channel % 8u));
    return FTTE_WIRE_OK;
}

int32_t ftte_wire_selection_has_channel(const ftte_wire_selection *s, uint16_t layer, uint16_t channel) {
    const uint8_t *b = channel_byte(s, layer, channel);
    CHECK(b != NULL, FTTE_WIRE_ERR_BAD_FIELD);
    return (*b >> (channel % 8u)) & 1u;
}

int32_t ftte_wire_selection_encode(ftte_wire_selection *s, uint8_t *out, size_t cap) {
    CHECK(s != NULL && out != NULL, FTTE_WIRE_ERR_ARG);
    CHECK(s->num_layers >= 1 && s->num_layers <= FTTE_MAX_LAYERS, FTTE_WIRE_ERR_BAD_FIELD);
    size_t pos = 0;
    CHECK(cap >= 1, FTTE_WIRE_ERR_TOO_LARGE);
    out[pos++] = (uint8_t)s->num_layers;
    for (uint32_t l = 0; l < s->num_layers; l++) {
        ftte_wire_layer_selection *L = &s->layers[l];
        CHECK(mode_valid(L->mode), FTTE_WIRE_ERR_BAD_FIELD);
        CHECK(pos < cap, FTTE_WIRE_ERR_TOO_LARGE);
        out[pos++] = L->mode;
        if (L->mode != FTTE_UPDATE_CHANNELS) continue;
        uint32_t oc = L->out_channels, mb = (oc + 7u) / 8u;
        CHECK(oc >= 1 && (uint32_t)L->mask_offset + mb <= FTTE_WIRE_MAX_MASK_BYTES, FTTE_WIRE_ERR_BAD_FIELD);
        const uint8_t *mask = s->masks + L->mask_offset;
        CHECK(mask_tail_clear(mask, oc), FTTE_WIRE_ERR_BAD_FIELD);
        uint32_t count = 0;
        for (uint32_t i = 0; i < mb; i++) count += popcount8(mask[i]);
        uint8_t form = canonical_form(count, mb);
        size_t data = form == FTTE_WIRE_SEL_INDEX ? 2u * count : mb;
        CHECK(cap - pos >= 5u + data, FTTE_WIRE_ERR_TOO_LARGE);
        out[pos++] = form;
        wire_put_u16(out + pos, (uint16_t)oc);
        wire_put_u16(out + pos + 2, (uint16_t)count);
        pos += 4;
        if (form == FTTE_WIRE_SEL_BITMASK) {
            memcpy(out + pos, mask, mb);
            pos += mb;
        } else {
            for (uint32_t o = 0; o < oc; o++) {
                if (mask[o / 8u] & (1u << (o % 8u))) {
                    wire_put_u16(out + pos, (uint16_t)o);
                    pos += 2;
                }
            }
        }
        L->count = (uint16_t)count;
    }
    CHECK(pos <= FTTE_WIRE_MAX_SELECTION_BYTES, FTTE_WIRE_ERR_TOO_LARGE);
    return (int32_t)pos;
}

ftte_wire_status ftte_wire_selection_decode(const uint8_t *in, size_t n, ftte_wire_selection *s) {
    CHECK(in != NULL && s != NULL, FTTE_WIRE_ERR_ARG);
    CHECK(n >= 1, FTTE_WIRE_ERR_TRUNCATED);
    CHECK(n <= FTTE_WIRE_MAX_SELECTION_BYTES, FTTE_WIRE_ERR_TOO_LARGE);
    uint32_t layers = in[0];
    CHECK(layers >= 1 && layers <= FTTE_MAX_LAYERS, FTTE_WIRE_ERR_BAD_FIELD);
    size_t pos = 1;
    uint32_t mask_pos = 0;
    for (uint32_t l = 0; l < layers; l++) {
        ftte_wire_layer_selection *L = &s->layers[l];
        CHECK(pos < n, FTTE_WIRE_ERR_TRUNCATED);
        uint8_t mode = in[pos++];
        CHECK(mode_valid(mode), FTTE_WIRE_ERR_BAD_FIELD);
        L->mode = mode;
        L->out_channels = 0;
        L->count = 0;
        L->mask_offset = 0;
        if (mode != FTTE_UPDATE_CHANNELS) continue;
        CHECK(n - pos >= 5u, FTTE_WIRE_ERR_TRUNCATED);
        uint8_t form = in[pos];
        uint32_t oc = wire_get_u16(in + pos + 1), count = wire_get_u16(in + pos + 3);
        pos += 5;
        CHECK(oc >= 1 && count <= oc, FTTE_WIRE_ERR_BAD_FIELD);
        uint32_t mb = (oc + 7u) / 8u;
        CHECK(form == canonical_form(count, mb), FTTE_WIRE_ERR_BAD_FIELD);
        CHECK(mask_pos + mb <= FTTE_WIRE_MAX_MASK_BYTES, FTTE_WIRE_ERR_TOO_LARGE);
        uint8_t *mask = s->masks + mask_pos;
        if (form == FTTE_WIRE_SEL_BITMASK) {
            CHECK(n - pos >= mb, FTTE_WIRE_ERR_TRUNCATED);
            memcpy(mask, in + pos, mb);
            pos += mb;
            CHECK(mask_tail_clear(mask, oc), FTTE_WIRE_ERR_BAD_FIELD);
            uint32_t bits = 0;
            for (uint32_t i = 0; i < mb; i++) bits += popcount8(mask[i]);
            CHECK(bits == count, FTTE_WIRE_ERR_BAD_FIELD);
        } else {
            CHECK(n - pos >= 2u * count, FTTE_WIRE_ERR_TRUNCATED);
            memset(mask, 0, mb);
            for (uint32_t i = 0; i < count; i++) {
                uint32_t o = wire_get_u16(in + pos + 2u * i);
                CHECK(o < oc, FTTE_WIRE_ERR_BAD_FIELD);
                CHECK(i == 0 || o > wire_get_u16(in + pos + 2u * (i - 1u)), FTTE_WIRE_ERR_BAD_FIELD);
                mask[o / 8u] |= (uint8_t)(1u << (o % 8u));
            }
            pos += 2u * count;
        }
        L->out_channels = (uint16_t)oc;
        L->count = (uint16_t)count;
        L->mask_offset = (uint16_t)mask_pos;
        mask_pos += mb;
    }
    CHECK(pos == n, FTTE_WIRE_ERR_BAD_FIELD); /* trailing bytes */
    s->num_layers = (uint16_t)layers;
    s->mask_bytes = (uint16_t)mask_pos;
    return FTTE_WIRE_OK;
}

ftte_wire_status ftte_wire_selection_updates(const ftte_wire_selection *s,
                                             ftte_layer_update *updates, int32_t num_layers) {
    CHECK(s != NULL && updates != NULL, FTTE_WIRE_ERR_ARG);
    CHECK(num_layers == (int32_t)s->num_layers, FTTE_WIRE_ERR_MODEL_MISMATCH);
    for (int32_t l = 0; l < num_layers; l++) {
        updates[l].mode = s->layers[l].mode;
        updates[l].channel_mask =
            s->layers[l].mode == FTTE_UPDATE_CHANNELS ? s->masks + s->layers[l].mask_offset : NULL;
    }
    return FTTE_WIRE_OK;
}
