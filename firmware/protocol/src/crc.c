/*
 * CRC-32 (IEEE 802.3, zlib): reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF.
 *
 * Why CRC-32 rather than CRC-16/CCITT: frames reach 4 KB and carry model weights for hours; a
 * 16-bit check lets one corrupted frame in 65536 through (a poisoned weight), CRC-32 one in
 * 4 billion and detects every burst up to 32 bits. It costs 2 more bytes per frame (0.2% of a
 * 1 KB frame), and the same function is the weights hash and the transfer body hash.
 *
 * A nibble table (16 entries, 64 bytes of flash) instead of the usual 1 KB byte table: two
 * lookups per byte, fast enough for a UART or BLE link on a Cortex-M0.
 */
#include "wire_internal.h"

static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t ftte_wire_crc32(uint32_t crc, const uint8_t *data, size_t n) {
    if (data == NULL) return crc;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
    }
    return ~crc;
}
