/// CPU reference dequantization of ggml blocks to Float, written for clarity over speed: it is the oracle the
/// GPU kernels are tested against. Each format follows the block layouts of ggml (`ggml-common.h`) and
/// evaluates the same float32 expression, in the same order, as gguf-py's `gguf.quants.dequantize`
/// (`d * q - m` with two roundings, never a fused multiply-add), so results are bit-identical to it.
public enum Dequantize {
    /// The types `toFloat` handles.
    public static let supportedTypes: Set<GGMLType> = [
        .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0,
        .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs, .mxfp4,
    ]

    public static func supports(_ type: GGMLType) -> Bool { supportedTypes.contains(type) }

    /// Dequantizes the first `count` elements stored in `raw` as `type`.
    /// Preconditions (programming errors, not file errors — the readers validate files before this):
    /// `supports(type)`, `count` a multiple of `type.blockSize`, `raw` holding at least that many blocks.
    public static func toFloat(_ raw: UnsafeRawBufferPointer, type: GGMLType, count: Int) -> [Float] {
        precondition(supports(type), "no CPU dequantization for \(type)")
        let blockCount = count / type.blockSize
        precondition(count >= 0 && blockCount * type.blockSize == count,
                     "\(count) elements is not a whole number of \(type) blocks")
        precondition(raw.count >= blockCount * type.bytesPerBlock,
                     "\(raw.count) bytes hold fewer than \(count) \(type) elements")
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            initialized = count
            // Plain types skip the per-block call: they are the bulk of unquantized checkpoints.
            switch type {
            case .f32:
                for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                return
            case .f16:
                for i in 0..<count { out[i] = halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                return
            case .bf16:
                for i in 0..<count { out[i] = bf16ToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                return
            default:
                break
            }
            let decode = blockDecoder(type)
            for block in 0..<blockCount {
                let start = block * type.bytesPerBlock
                let bytes = UnsafeRawBufferPointer(rebasing: raw[start..<start + type.bytesPerBlock])
                decode(Block(bytes), out.baseAddress! + block * type.blockSize)
            }
        }
    }

    /// IEEE half → float, exact (subnormals, infinities and NaN payloads preserved as numpy does).
    public static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h) & 0x3FF
        switch exponent {
        case 0:
            // Zero or subnormal: mantissa · 2⁻²⁴ is exact in float32.
            let magnitude = Float(mantissa) * 0x1p-24
            return Float(bitPattern: sign | magnitude.bitPattern)
        case 31:
            return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
        default:
            return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
        }
    }

    /// bfloat16 → float (the upper half of a float32).
    public static func bf16ToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

    /// MXFP4's shared E8M0 exponent, halved because the element table below is stored doubled
    /// (ggml `ggml_e8m0_to_fp32_half`): 2^(e − 128), with e < 2 landing in float32's subnormals.
    static func e8m0Half(_ e: UInt8) -> Float {
        e < 2 ? Float(bitPattern: UInt32(0x0020_0000) << UInt32(e)) : Float(bitPattern: UInt32(e - 1) << 23)
    }

    /// Non-linear 4-bit code books.
    static let iq4Values: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
    static let e2m1DoubledValues: [Int8] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]

    private typealias BlockDecoder = (Block, UnsafeMutablePointer<Float>) -> Void

    private static func blockDecoder(_ type: GGMLType) -> BlockDecoder {
        switch type {
        case .q4_0: return decodeQ4_0
        case .q4_1: return decodeQ4_1
        case .q5_0: return decodeQ5_0
        case .q5_1: return decodeQ5_1
        case .q8_0: return decodeQ8_0
        case .q2_K: return decodeQ2_K
        case .q3_K: return decodeQ3_K
        case .q4_K: return decodeQ4_K
        case .q5_K: return decodeQ5_K
        case .q6_K: return decodeQ6_K
        case .iq4_nl: return decodeIQ4_NL
        case .iq4_xs: return decodeIQ4_XS
        case .mxfp4: return decodeMXFP4
        default: preconditionFailure("no CPU dequantization for \(type)")
        }
    }

    // MARK: 32-element blocks. Element j < 16 comes from the low nibble of byte j, element j + 16 from its
    // high nibble.

    /// { f16 d; u8 qs[16] }: d · (q − 8).
    private static func decodeQ4_0(_ b: Block, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0)
        for j in 0..<16 {
            y[j] = d * Float(Int(b[2 + j] & 0x0F) - 8)
            y[j + 16] = d * Float(Int(b[2 + j] >> 4) - 8)
        }
    }

    /// { f16 d; f16 m; u8 qs[16] }: d · q + m.
    private static func decodeQ4_1(_ b: Block, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0), m = b.f16(2)
        for j in 0..<16 {
            y[j] = d * Float(b[4 + j] & 0x0F) + m
            y[j + 16] = d * Float(b[4 + j] >> 4) + m
        }
    }

    /// { f16 d; u32 qh; u8 qs[16] }: bit j of qh is the fifth bit of element j; d · (q − 16).
    private static func decodeQ5_0(_ b: Block, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0), qh = b.u32(2)
        for j in 0..<16 {
            let low = UInt32(b[6 + j] & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
            let high = UInt32(b[6 + j] >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
            y[j] = d * Float(Int(low) - 16)
            y[j + 16] = d * Float(Int(high) - 16)
        }
    }

    /// { f16 d; f16 m; u32 qh; u8 qs[16] }: d · q + m.
    private static func decodeQ5_1(_ b: Block, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0), m = b.f16(2), qh = b.u32(4)
        for j in 0..<16 {
            let low = UInt32(b[8 + j] & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
            let high = UInt32(b[8 + j] >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
            y[j] = d * Float(low) + m
            y[j + 16] = d * Float(high) + m
        }
    }

    /// { f16 d; i8 qs[32] }: q · d.
    private static func decodeQ8_0(_ b: Block, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0)
        for j in 0..<32 { y[j] = Float(Int8(bitPattern: b[2 + j])) * d }
    }

    /// { f16 d; u8 qs[16] } with the IQ4 code book: d · table[q].
    private static func decodeIQ4_NL(_ b: Block, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0)
        for j in 0..<16 {
            y[j] = d * Float(iq4Values[Int(b[2 + j] & 0x0F)])
            y[j + 16] = d * Float(iq4Values[Int(b[2 + j] >> 4)])
        }
    }

    /// { u8 e (E8M0); u8 qs[16] (E2M1) }: 2^(e−128) · (2 · e2m1[q]).
    private static func decodeMXFP4(_ b: Block, _ y: UnsafeMutablePointer<Float>) {
        let d = e8m0Half(b[0])
        for j in 0..<16 {
            y[j] = d * Float(e2m1DoubledValues[Int(b[1 + j] & 0x0F)])
            y[j + 16] = d * Float(e2m1DoubledValues[Int(b[1 + j] >> 4)])
        }
    }

    // MARK: 256-element super-blocks (K-quants, IQ4_XS). Element v = 128·h + 32·s + l often reads byte
    // 32·h + l of a packed array at bit shift depending on s: ggml packs the sub-blocks of each half
    // column-wise.

    /// { u8 scales[16] (4-bit scale | 4-bit min); u8 qs[64]; f16 d; f16 dmin }: 16 sub-blocks of 16.
    private static func decodeQ2_K(_ b: Block, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(80), dmin = b.f16(82)
        for v in 0..<256 {
            let h = v / 128, s = (v % 128) / 32, l = v % 32
            let q = (b[16 + 32 * h + l] >> UInt8(2 * s)) & 3
            let scale = b[v / 16]
            let dl = d * Float(scale & 0x0F)
            let ml = dmin * Float(scale >> 4)
            y[v] = dl * Float(q) - ml
        }
    }

    /// { u8 hmask[32]; u8 qs[64]; u8 scales[12] (16 × 6 bits); f16 d }: 2-bit low part, a high bit that
    /// *subtracts* 4 when clear, signed 6-bit scales offset by 32.
    private static func decodeQ3_K(_ b: Block, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(108)
        var dl = [Float](repeating: 0, count: 16)
        for i in 0..<16 {
            let low = i < 8 ? b[96 + i] & 0x0F : b[96 + i - 8] >> 4
            let high = (b[96 + 8 + i % 4] >> UInt8(2 * (i / 4))) & 3
            dl[i] = d * Float(Int(low | high << 4) - 32)
        }
        for v in 0..<256 {
            let h = v / 128, s = (v % 128) / 32, l = v % 32
            let low = Int((b[32 + 32 * h + l] >> UInt8(2 * s)) & 3)
            let highBitSet = (b[l] >> UInt8(v / 32)) & 1 == 1
            y[v] = dl[v / 16] * Float(highBitSet ? low : low - 4)
        }
    }

    /// The 8 six-bit (scale, min) pairs of Q4_K/Q5_K packed into 12 bytes at `offset`
    /// (ggml `get_scale_min_k4`).
    private static func scaleMinK4(_ b: Block, _ offset: Int, _ j: Int) -> (scale: UInt8, min: UInt8) {
        if j < 4 {
            return (b[offset + j] & 63, b[offset + j + 4] & 63)
        }
        let scale = (b[offset + j + 4] & 0x0F) | (b[offset + j - 4] >> 6) << 4
        let min = (b[offset + j + 4] >> 4) | (b[offset + j] >> 6) << 4
        return (scale, min)
    }

    /// { f16 d; f16 dmin; u8 scales[12]; u8 qs[128] }: 8 sub-blocks of 32, (d·sc)·q − dmin·m.
    private static func decodeQ4_K(_ b: Block, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0), dmin = b.f16(2)
        for j in 0..<8 {
            let (sc, m) = scaleMinK4(b, 4, j)
            let scale = d * Float(sc), offset = dmin * Float(m)
            for l in 0..<32 {
                let q = (b[16 + 32 * (j / 2) + l] >> UInt8(4 * (j % 2))) & 0x0F
                y[32 * j + l] = scale * Float(q) - offset
            }
        }
    }

    /// { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] }: Q4_K plus bit j of qh[l] as the fifth bit.
    private static func decodeQ5_K(_ b: Block, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0), dmin = b.f16(2)
        for j in 0..<8 {
            let (sc, m) = scaleMinK4(b, 4, j)
            let scale = d * Float(sc), offset = dmin * Float(m)
            for l in 0..<32 {
                let low = (b[48 + 32 * (j / 2) + l] >> UInt8(4 * (j % 2))) & 0x0F
                let high = (b[16 + l] >> UInt8(j)) & 1
                y[32 * j + l] = scale * Float(low | high << 4) - offset
            }
        }
    }

    /// { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d }: 6-bit values offset by 32, 16 sub-blocks of 16.
    private static func decodeQ6_K(_ b: Block, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(208)
        for v in 0..<256 {
            let h = v / 128, r = v % 128
            let low = (b[64 * h + r % 64] >> UInt8(4 * (r / 64))) & 0x0F
            let high = (b[128 + 32 * h + r % 32] >> UInt8(2 * (r / 32))) & 3
            let scale = d * Float(Int8(bitPattern: b[192 + v / 16]))
            y[v] = scale * Float(Int(low | high << 4) - 32)
        }
    }

    /// { f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128] }: 8 sub-blocks of 32 with 6-bit scales offset by
    /// 32 and the IQ4 code book; within a sub-block the 16 low nibbles come first.
    private static func decodeIQ4_XS(_ b: Block, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0), scalesHigh = b.u16(2)
        for j in 0..<8 {
            let low = (b[4 + j / 2] >> UInt8(4 * (j % 2))) & 0x0F
            let high = UInt8((scalesHigh >> UInt16(2 * j)) & 3)
            let dl = d * Float(Int(low | high << 4) - 32)
            for l in 0..<16 {
                let q = b[8 + 16 * j + l]
                y[32 * j + l] = dl * Float(iq4Values[Int(q & 0x0F)])
                y[32 * j + 16 + l] = dl * Float(iq4Values[Int(q >> 4)])
            }
        }
    }
}

/// The bytes of one block, read little-endian at any alignment.
private struct Block {
    let bytes: UnsafeRawBufferPointer
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
    subscript(_ i: Int) -> UInt8 { bytes[i] }
    func u16(_ i: Int) -> UInt16 { UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8 }
    func u32(_ i: Int) -> UInt32 { UInt32(u16(i)) | UInt32(u16(i + 2)) << 16 }
    func f16(_ i: Int) -> Float { Dequantize.halfToFloat(u16(i)) }
}
