// Block layouts and dequantisation of every GGML weight type QwenVK reads, byte for byte as GGUF stores
// them (ggml-common.h). Weights are bound as plain `uint` words, never re-packed: blocks of 17, 18, 22,
// 34, 110 or 210 bytes sit at odd offsets, so bytes are assembled from 32-bit words and no 8/16-bit
// storage feature is needed.
//
// The including shader defines, before `#include "quants.glsl"`:
//   QTYPE_<NAME>            one of F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS MXFP4
//   Q_WORD(buf, index)      the 32-bit word `index` of weight buffer `buf` (a constant at every call site,
//                           so shaders with two weight bindings, e.g. fused gate+up, share these helpers)
// and optionally Q_PRECISE as `precise` where results must match the CPU dequantiser bit for bit.
//
// Every type is read in chunks of 32 consecutive elements of one row: `q_dequant32(buf, blockByte, chunk, v)`
// writes elements [32·chunk, 32·chunk + 32) of the block that starts at byte `blockByte`.
// QK = elements per block, Q_BLOCK_BYTES = bytes per block; rows are whole blocks.

#ifndef Q_PRECISE
#define Q_PRECISE
#endif

#if defined(QTYPE_F32)
#define QK 32
#define Q_BLOCK_BYTES 128
#elif defined(QTYPE_F16) || defined(QTYPE_BF16)
#define QK 32
#define Q_BLOCK_BYTES 64
#elif defined(QTYPE_Q4_0) || defined(QTYPE_IQ4_NL)
#define QK 32
#define Q_BLOCK_BYTES 18
#elif defined(QTYPE_Q4_1)
#define QK 32
#define Q_BLOCK_BYTES 20
#elif defined(QTYPE_Q5_0)
#define QK 32
#define Q_BLOCK_BYTES 22
#elif defined(QTYPE_Q5_1)
#define QK 32
#define Q_BLOCK_BYTES 24
#elif defined(QTYPE_Q8_0)
#define QK 32
#define Q_BLOCK_BYTES 34
#elif defined(QTYPE_MXFP4)
#define QK 32
#define Q_BLOCK_BYTES 17
#elif defined(QTYPE_Q2_K)
#define QK 256
#define Q_BLOCK_BYTES 84
#elif defined(QTYPE_Q3_K)
#define QK 256
#define Q_BLOCK_BYTES 110
#elif defined(QTYPE_Q4_K)
#define QK 256
#define Q_BLOCK_BYTES 144
#elif defined(QTYPE_Q5_K)
#define QK 256
#define Q_BLOCK_BYTES 176
#elif defined(QTYPE_Q6_K)
#define QK 256
#define Q_BLOCK_BYTES 210
#elif defined(QTYPE_IQ4_XS)
#define QK 256
#define Q_BLOCK_BYTES 136
#else
#error "define QTYPE_<type> before including quants.glsl"
#endif

#define Q_CHUNKS_PER_BLOCK (QK / 32)

// ---- byte access ---------------------------------------------------------------------------------

// The 32 bits starting at any byte offset (little endian, as GGUF).
uint q_u32(uint buf, uint byteOffset) {
    uint w = byteOffset >> 2, shift = (byteOffset & 3u) * 8u;
    uint lo = Q_WORD(buf, w);
    return shift == 0u ? lo : (lo >> shift) | (Q_WORD(buf, w + 1u) << (32u - shift));
}

uint q_u16(uint buf, uint byteOffset) { return q_u32(buf, byteOffset) & 0xFFFFu; }

uint q_u8(uint buf, uint byteOffset) { return (Q_WORD(buf, byteOffset >> 2) >> ((byteOffset & 3u) * 8u)) & 0xFFu; }

float q_f16(uint buf, uint byteOffset) { return unpackHalf2x16(q_u16(buf, byteOffset)).x; }

// N = 4 or 8 little-endian words starting at any byte offset, with one extra load when unaligned
// (never reading the word past the end, which may lie outside the binding).
void q_words4(uint buf, uint byteOffset, out uint v[4]) {
    uint w = byteOffset >> 2, shift = (byteOffset & 3u) * 8u;
    uint raw[5];
    for (uint i = 0u; i < 4u; i++) raw[i] = Q_WORD(buf, w + i);
    if (shift == 0u) {
        for (uint i = 0u; i < 4u; i++) v[i] = raw[i];
    } else {
        raw[4] = Q_WORD(buf, w + 4u);
        for (uint i = 0u; i < 4u; i++) v[i] = (raw[i] >> shift) | (raw[i + 1u] << (32u - shift));
    }
}

void q_words8(uint buf, uint byteOffset, out uint v[8]) {
    uint w = byteOffset >> 2, shift = (byteOffset & 3u) * 8u;
    uint raw[9];
    for (uint i = 0u; i < 8u; i++) raw[i] = Q_WORD(buf, w + i);
    if (shift == 0u) {
        for (uint i = 0u; i < 8u; i++) v[i] = raw[i];
    } else {
        raw[8] = Q_WORD(buf, w + 8u);
        for (uint i = 0u; i < 8u; i++) v[i] = (raw[i] >> shift) | (raw[i + 1u] << (32u - shift));
    }
}

// Byte i of a little-endian word array.
#define Q_BYTE(words, i) (((words)[(i) >> 2] >> (((i) & 3u) * 8u)) & 0xFFu)

// ---- shared tables and scale decoders ------------------------------------------------------------

#if defined(QTYPE_IQ4_NL) || defined(QTYPE_IQ4_XS)
const float kvalues_iq4nl[16] = float[16](-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
                                          1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
#endif
#if defined(QTYPE_MXFP4)
// E2M1 values doubled; the block scale below is halved to match (ggml's GGML_E8M0_TO_FP32_HALF).
const float kvalues_mxfp4[16] = float[16](0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0,
                                          0.0, -1.0, -2.0, -3.0, -4.0, -6.0, -8.0, -12.0);
#endif

#if defined(QTYPE_Q4_K) || defined(QTYPE_Q5_K)
// The 6-bit scale and min of sub-block j (0..7) from the 12 packed scale bytes at `byteOffset`.
void q_scale_min_k4(uint buf, uint byteOffset, uint j, out uint sc, out uint m) {
    uint s[4];
    s[0] = q_u32(buf, byteOffset);
    s[1] = q_u32(buf, byteOffset + 4u);
    s[2] = q_u32(buf, byteOffset + 8u);
    if (j < 4u) {
        sc = Q_BYTE(s, j) & 63u;
        m = Q_BYTE(s, j + 4u) & 63u;
    } else {
        sc = (Q_BYTE(s, j + 4u) & 0xFu) | ((Q_BYTE(s, j - 4u) >> 6) << 4);
        m = (Q_BYTE(s, j + 4u) >> 4) | ((Q_BYTE(s, j) >> 6) << 4);
    }
}
#endif

// ---- dequantisation of one 32-element chunk ----------------------------------------------------

void q_dequant32(uint buf, uint blockByte, uint chunk, out float v[32]) {
#if defined(QTYPE_F32)
    for (uint i = 0u; i < 32u; i++) v[i] = uintBitsToFloat(Q_WORD(buf, (blockByte >> 2) + i));
#elif defined(QTYPE_F16) || defined(QTYPE_BF16)
    uint w[8];
    for (uint h = 0u; h < 2u; h++) {
        q_words8(buf, blockByte + 32u * h, w);
        for (uint i = 0u; i < 8u; i++) {
#if defined(QTYPE_F16)
            vec2 pair = unpackHalf2x16(w[i]);
            v[16u * h + 2u * i] = pair.x;
            v[16u * h + 2u * i + 1u] = pair.y;
#else
            v[16u * h + 2u * i] = uintBitsToFloat(w[i] << 16);
            v[16u * h + 2u * i + 1u] = uintBitsToFloat(w[i] & 0xFFFF0000u);
#endif
        }
    }
#elif defined(QTYPE_Q4_0) || defined(QTYPE_IQ4_NL)
    float d = q_f16(buf, blockByte);
    uint qs[4];
    q_words4(buf, blockByte + 2u, qs);
    for (uint j = 0u; j < 16u; j++) {
        uint b = Q_BYTE(qs, j);
#if defined(QTYPE_Q4_0)
        Q_PRECISE float lo = float(int(b & 0xFu) - 8) * d;
        Q_PRECISE float hi = float(int(b >> 4) - 8) * d;
#else
        Q_PRECISE float lo = d * kvalues_iq4nl[b & 0xFu];
        Q_PRECISE float hi = d * kvalues_iq4nl[b >> 4];
#endif
        v[j] = lo;
        v[j + 16u] = hi;
    }
#elif defined(QTYPE_Q4_1)
    vec2 dm = unpackHalf2x16(q_u32(buf, blockByte));   // d and m share a word
    float d = dm.x, m = dm.y;
    uint qs[4];
    q_words4(buf, blockByte + 4u, qs);
    for (uint j = 0u; j < 16u; j++) {
        uint b = Q_BYTE(qs, j);
        Q_PRECISE float lo = float(b & 0xFu) * d + m;
        Q_PRECISE float hi = float(b >> 4) * d + m;
        v[j] = lo;
        v[j + 16u] = hi;
    }
#elif defined(QTYPE_Q5_0) || defined(QTYPE_Q5_1)
#if defined(QTYPE_Q5_0)
    const uint qhAt = 2u;
#else
    const uint qhAt = 4u;
    float m = q_f16(buf, blockByte + 2u);
#endif
    float d = q_f16(buf, blockByte);
    uint qh = q_u32(buf, blockByte + qhAt);
    uint qs[4];
    q_words4(buf, blockByte + qhAt + 4u, qs);
    for (uint j = 0u; j < 16u; j++) {
        uint b = Q_BYTE(qs, j);
        uint x0 = (b & 0xFu) | (((qh >> j) << 4) & 0x10u);
        uint x1 = (b >> 4) | ((qh >> (j + 12u)) & 0x10u);
#if defined(QTYPE_Q5_0)
        Q_PRECISE float lo = float(int(x0) - 16) * d;
        Q_PRECISE float hi = float(int(x1) - 16) * d;
#else
        Q_PRECISE float lo = float(x0) * d + m;
        Q_PRECISE float hi = float(x1) * d + m;
#endif
        v[j] = lo;
        v[j + 16u] = hi;
    }
#elif defined(QTYPE_Q8_0)
    float d = q_f16(buf, blockByte);
    uint qs[8];
    q_words8(buf, blockByte + 2u, qs);
    for (uint j = 0u; j < 32u; j++) {
        Q_PRECISE float x = float(bitfieldExtract(int(qs[j >> 2]), int((j & 3u) * 8u), 8)) * d;
        v[j] = x;
    }
#elif defined(QTYPE_MXFP4)
    uint e = q_u8(buf, blockByte);
    float d = uintBitsToFloat(e < 2u ? (0x00200000u << e) : ((e - 1u) << 23));
    uint qs[4];
    q_words4(buf, blockByte + 1u, qs);
    for (uint j = 0u; j < 16u; j++) {
        uint b = Q_BYTE(qs, j);
        Q_PRECISE float lo = kvalues_mxfp4[b & 0xFu] * d;
        Q_PRECISE float hi = kvalues_mxfp4[b >> 4] * d;
        v[j] = lo;
        v[j + 16u] = hi;
    }
#elif defined(QTYPE_Q2_K)
    // scales[16] @0, qs[64] @16, d @80, dmin @82. Chunk c: 2-bit field (c % 4) of qs bytes 32·(c / 4)…+32.
    uint n = chunk >> 2, j = chunk & 3u;
    vec2 dm = unpackHalf2x16(q_u32(buf, blockByte + 80u));   // d and dmin share a word
    float d = dm.x, dmin = dm.y;
    uint qs[8];
    q_words8(buf, blockByte + 16u + 32u * n, qs);
    uint scales = q_u16(buf, blockByte + 8u * n + 2u * j);
    for (uint h = 0u; h < 2u; h++) {
        uint sc = (scales >> (8u * h)) & 0xFFu;
        Q_PRECISE float dl = d * float(sc & 0xFu);
        Q_PRECISE float ml = dmin * float(sc >> 4);
        for (uint l = 0u; l < 16u; l++) {
            uint q = (Q_BYTE(qs, 16u * h + l) >> (2u * j)) & 3u;
            Q_PRECISE float x = dl * float(q) - ml;
            v[16u * h + l] = x;
        }
    }
#elif defined(QTYPE_Q3_K)
    // hmask[32] @0, qs[64] @32, scales[12] @96 (16 six-bit scales), d @108.
    uint n = chunk >> 2, j = chunk & 3u;
    float d = q_f16(buf, blockByte + 108u);
    uint qs[8], hm[8];
    q_words8(buf, blockByte + 32u + 32u * n, qs);
    q_words8(buf, blockByte, hm);
    uint hbit = 4u * n + j;
    for (uint h = 0u; h < 2u; h++) {
        uint k = 8u * n + 2u * j + h;
        uint low4 = (q_u8(buf, blockByte + 96u + (k & 7u)) >> (4u * (k >> 3))) & 0xFu;
        uint high2 = (q_u8(buf, blockByte + 104u + (k & 3u)) >> (2u * (k >> 2))) & 3u;
        Q_PRECISE float dl = d * float(int(low4 | (high2 << 4)) - 32);
        for (uint l = 0u; l < 16u; l++) {
            uint i = 16u * h + l;
            int q = int((Q_BYTE(qs, i) >> (2u * j)) & 3u) - (((Q_BYTE(hm, i) >> hbit) & 1u) != 0u ? 0 : 4);
            Q_PRECISE float x = dl * float(q);
            v[i] = x;
        }
    }
#elif defined(QTYPE_Q4_K) || defined(QTYPE_Q5_K)
    // d @0, dmin @2, scales[12] @4, [Q5_K: qh[32] @16], qs[128] @16 (Q4_K) / @48 (Q5_K).
    // Chunk c: nibble (c % 2) of qs bytes 32·(c / 2)…+32.
    vec2 dm = unpackHalf2x16(q_u32(buf, blockByte));   // d and dmin share a word
    float d = dm.x, dmin = dm.y;
    uint sc, mn;
    q_scale_min_k4(buf, blockByte + 4u, chunk, sc, mn);
    Q_PRECISE float d1 = d * float(sc);
    Q_PRECISE float m1 = dmin * float(mn);
#if defined(QTYPE_Q4_K)
    const uint qsAt = 16u;
#else
    const uint qsAt = 48u;
    uint qh[8];
    q_words8(buf, blockByte + 16u, qh);
#endif
    uint qs[8];
    q_words8(buf, blockByte + qsAt + 32u * (chunk >> 1), qs);
    uint shift = 4u * (chunk & 1u);
    for (uint l = 0u; l < 32u; l++) {
        uint q = (Q_BYTE(qs, l) >> shift) & 0xFu;
#if defined(QTYPE_Q5_K)
        q += ((Q_BYTE(qh, l) >> chunk) & 1u) << 4;
#endif
        Q_PRECISE float x = d1 * float(q) - m1;
        v[l] = x;
    }
#elif defined(QTYPE_Q6_K)
    // ql[128] @0, qh[64] @128, scales[16] (int8) @192, d @208.
    // Chunk c = 4n + g: low nibbles (g < 2) or high nibbles of ql bytes 64n + 32·(g % 2)…+32, 2-bit field g
    // of qh bytes 32n…+32, scales 8n + 2g (first 16) and 8n + 2g + 1 (last 16).
    uint n = chunk >> 2, g = chunk & 3u;
    float d = q_f16(buf, blockByte + 208u);
    uint ql[8], qh[8];
    q_words8(buf, blockByte + 64u * n + 32u * (g & 1u), ql);
    q_words8(buf, blockByte + 128u + 32u * n, qh);
    uint scales = q_u16(buf, blockByte + 192u + 8u * n + 2u * g);
    uint lshift = 4u * (g >> 1);
    for (uint h = 0u; h < 2u; h++) {
        Q_PRECISE float ds = d * float(bitfieldExtract(int(scales), int(8u * h), 8));
        for (uint l = 0u; l < 16u; l++) {
            uint i = 16u * h + l;
            uint q = ((Q_BYTE(ql, i) >> lshift) & 0xFu) | (((Q_BYTE(qh, i) >> (2u * g)) & 3u) << 4);
            Q_PRECISE float x = ds * float(int(q) - 32);
            v[i] = x;
        }
    }
#elif defined(QTYPE_IQ4_XS)
    // d @0, scales_h (u16) @2, scales_l[4] @4, qs[128] @8; chunk ib uses qs bytes 16·ib…+16.
    float d = q_f16(buf, blockByte);
    uint scalesH = q_u16(buf, blockByte + 2u);
    uint ls = ((q_u8(buf, blockByte + 4u + (chunk >> 1)) >> (4u * (chunk & 1u))) & 0xFu)
            | (((scalesH >> (2u * chunk)) & 3u) << 4);
    Q_PRECISE float dl = d * float(int(ls) - 32);
    uint qs[4];
    q_words4(buf, blockByte + 8u + 16u * chunk, qs);
    for (uint j = 0u; j < 16u; j++) {
        uint b = Q_BYTE(qs, j);
        Q_PRECISE float lo = dl * kvalues_iq4nl[b & 0xFu];
        Q_PRECISE float hi = dl * kvalues_iq4nl[b >> 4];
        v[j] = lo;
        v[j + 16u] = hi;
    }
#endif
}

// Chunk `c` (32 elements) of a row that starts at byte `rowByte`.
void q_dequant_row_chunk(uint buf, uint rowByte, uint c, out float v[32]) {
    q_dequant32(buf, rowByte + (c / Q_CHUNKS_PER_BLOCK) * Q_BLOCK_BYTES, c % Q_CHUNKS_PER_BLOCK, v);
}
