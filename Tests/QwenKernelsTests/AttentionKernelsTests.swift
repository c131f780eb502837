import QwenKernels
import TestSupport
import VulkanRuntime
import XCTest

final class AttentionKernelsTests: XCTestCase {
    // MARK: q/k norm + RoPE + cache append

    func testQKNormRopeAppendF32() throws {
        try checkPrepare(heads: 16, kvHeads: 2, headDim: 256, rotaryDim: 64, section: [11, 11, 10], tokens: 3,
                         cacheStart: 5, firstPosition: 5, cacheType: .f32, tolerance: 2e-5)
    }

    func testQKNormRopeAppendOneBindingPerKVHead() throws {
        // A cache larger than one binding may span is written one KV head per dispatch.
        try checkPrepare(heads: 8, kvHeads: 4, headDim: 128, rotaryDim: 32, section: [3, 3, 2], tokens: 3,
                         cacheStart: 9, firstPosition: 40, cacheType: .f16, tolerance: 1e-3, perHeadBindings: true)
    }

    func testQKNormRopeAppendF16AtLargePositions() throws {
        // Positions near 200k exercise the angle range reduction; distinct T/H/W rows exercise the mRoPE map.
        try checkPrepare(heads: 8, kvHeads: 2, headDim: 128, rotaryDim: 32, section: [3, 3, 2], tokens: 4,
                         cacheStart: 17, firstPosition: 199_990, cacheType: .f16, tolerance: 1e-3,
                         distinctAxes: true)
    }

    func testQKNormRopeAppendHeadDim64() throws {
        try checkPrepare(heads: 6, kvHeads: 6, headDim: 64, rotaryDim: 16, section: [3, 3, 2], tokens: 5,
                         cacheStart: 0, firstPosition: 262_000, cacheType: .f32, tolerance: 2e-5,
                         distinctAxes: true)
    }

    private func checkPrepare(heads: Int, kvHeads: Int, headDim hd: Int, rotaryDim: Int, section: [Int],
                              tokens: Int, cacheStart: Int, firstPosition: Int, cacheType: KVCacheType,
                              tolerance: Double, distinctAxes: Bool = false, perHeadBindings: Bool = false) throws {
        let device = try KernelTestDevice.get()
        let subgroupRuns = try AttentionKernels(device: device).subgroupKernelSupports(headDim: hd)
        let variants: [AttentionVariant] = subgroupRuns ? [.tiled, .subgroup] : [.tiled]
        for variant in variants {
            try checkPrepare(variant: variant, heads: heads, kvHeads: kvHeads, headDim: hd, rotaryDim: rotaryDim,
                             section: section, tokens: tokens, cacheStart: cacheStart, firstPosition: firstPosition,
                             cacheType: cacheType, tolerance: tolerance, distinctAxes: distinctAxes,
                             perHeadBindings: perHeadBindings, device: device)
        }
    }

    /// `.tiled` runs the workgroup-per-row kernel, `.subgroup` the invocation-per-row one.
    private func checkPrepare(variant: AttentionVariant, heads: Int, kvHeads: Int, headDim hd: Int, rotaryDim: Int,
                              section: [Int], tokens: Int, cacheStart: Int, firstPosition: Int,
                              cacheType: KVCacheType, tolerance: Double, distinctAxes: Bool, perHeadBindings: Bool,
                              device: VulkanDevice) throws {
        // 64 slots keep one head's slice a multiple of every device's storage-buffer offset alignment.
        let capacity = perHeadBindings ? 64 : cacheStart + tokens + 3
        let headBytes = KVCache.byteCount(kvHeads: 1, capacity: capacity, headDim: hd, type: cacheType)
        let kernels = try AttentionKernels(device: device, variant: variant,
                                           cacheBindingLimit: perHeadBindings ? headBytes : nil)
        var (rng, seed) = SeededGenerator.fresh()
        let shape = try AttentionShape(heads: heads, kvHeads: kvHeads, headDim: hd, rotaryDim: rotaryDim,
                                       mropeSection: section)
        let qGate = rng.normals(tokens * heads * 2 * hd, std: 2)
        let k = rng.normals(tokens * kvHeads * hd, std: 2), v = rng.normals(tokens * kvHeads * hd)
        let qNorm = rng.floats(hd, in: 0.5...1.5), kNorm = rng.floats(hd, in: 0.5...1.5)
        let invFreq = AttentionKernels.inverseFrequencies(rotaryDim: rotaryDim, theta: 10_000_000)
        var positions = AttentionKernels.textPositions(start: firstPosition, count: tokens)
        if distinctAxes { for i in tokens..<3 * tokens { positions[i] += Int32(i % 7) * 1000 - 3000 } }

        let qGateBuffer = try NormTestSupport.upload(qGate, on: device, "qgate")
        let kBuffer = try NormTestSupport.upload(k, on: device, "k")
        let vBuffer = try NormTestSupport.upload(v, on: device, "v")
        let qNormBuffer = try NormTestSupport.upload(qNorm, on: device, "q_norm")
        let kNormBuffer = try NormTestSupport.upload(kNorm, on: device, "k_norm")
        let freqBuffer = try NormTestSupport.upload(invFreq, on: device, "inv_freq")
        let positionBuffer = try NormTestSupport.upload(positions, on: device, "positions")
        let startBuffer = try NormTestSupport.upload([UInt32(cacheStart)], on: device, "cache_start")
        let cacheBytes = KVCache.byteCount(kvHeads: kvHeads, capacity: capacity, headDim: hd, type: cacheType)
        let word = cacheType == .f16 ? NormTestSupport.halfPoison : NormTestSupport.poison
        let keys = try NormTestSupport.poisoned(bytes: cacheBytes, on: device, "k_cache", word: word)
        let values = try NormTestSupport.poisoned(bytes: cacheBytes, on: device, "v_cache", word: word)
        let cache = try KVCache(keys: keys.whole, values: values.whole, type: cacheType, kvHeads: kvHeads,
                                capacity: capacity, headDim: hd)
        let query = try NormTestSupport.poisoned(floats: tokens * heads * hd, on: device, "q")
        try device.run { r in
            try kernels.encodeQKNormRopeAppend(r, shape: shape, tokens: tokens, queryGate: qGateBuffer.whole,
                                               key: kBuffer.whole, value: vBuffer.whole, queryNorm: qNormBuffer.whole,
                                               keyNorm: kNormBuffer.whole, inverseFrequencies: freqBuffer.whole,
                                               positions: positionBuffer.whole, cacheStart: startBuffer.whole,
                                               cache: cache, query: query.whole)
        }
        let refShape = AttentionReference.Shape(heads: heads, kvHeads: kvHeads, headDim: hd, rotaryDim: rotaryDim,
                                                section: section, eps: 1e-6)
        let expected = AttentionReference.prepare(qGate: qGate, k: k, qNorm: qNorm, kNorm: kNorm, invFreq: invFreq,
                                                  positions: positions, tokens: tokens, shape: refShape)
        NormTestSupport.assertClose(try NormTestSupport.floats(query, on: device), expected.q.map { Float($0) },
                                    tolerance: 2e-5, "q (\(variant))", seed: seed)

        let cachedKeys = try readCache(keys, type: cacheType, device: device)
        let cachedValues = try readCache(values, type: cacheType, device: device)
        var gotK = [Float](), gotV = [Float](), wantK = [Float](), wantV = [Float]()
        for t in 0..<tokens {
            for h in 0..<kvHeads {
                let slot = (h * capacity + cacheStart + t) * hd, source = (t * kvHeads + h) * hd
                gotK += cachedKeys[slot..<slot + hd]
                gotV += cachedValues[slot..<slot + hd]
                wantK += expected.k[source..<source + hd].map { Float($0) }
                wantV += v[source..<source + hd]
            }
        }
        NormTestSupport.assertClose(gotK, wantK, tolerance: tolerance, "cached k", seed: seed)
        NormTestSupport.assertClose(gotV, wantV, tolerance: tolerance, "cached v", seed: seed)
        // Slots outside [cacheStart, cacheStart + tokens) keep their poison.
        let written = cachedKeys.enumerated().filter { !$0.element.isNaN }.count
        XCTAssertEqual(written, tokens * kvHeads * hd, "slots written outside the batch (seed \(seed))")
    }

    private func readCache(_ buffer: Buffer, type: KVCacheType, device: VulkanDevice) throws -> [Float] {
        switch type {
        case .f32: return try NormTestSupport.floats(buffer, on: device)
        case .f16: return try device.download(Float16.self, from: buffer.whole, count: buffer.byteCount / 2).map(Float.init)
        }
    }

    // MARK: attention

    func testDecodeSplitKHeadDim256F16() throws {
        // The 35B shape: 16 query heads over 2 KV heads of 256; auto plan → many splits.
        try checkAttention(heads: 16, kvHeads: 2, headDim: 256, tokens: 1, cacheStart: 1500, maxKeys: 1501,
                           keysPerSplit: nil, cacheType: .f16, expectSplits: 2...64)
    }

    func testDecodeWithEmptySplitsGroupOf2HeadDim128F32() throws {
        // The plan is made for 3000 keys, the cache holds 701: most splits lie past the end and stay empty.
        try checkAttention(heads: 4, kvHeads: 2, headDim: 128, tokens: 1, cacheStart: 700, maxKeys: 3000,
                           keysPerSplit: 128, cacheType: .f32, expectSplits: 24...24)
    }

    func testDecodeLongestSplitHeadDim256() throws {
        // One workgroup walks maxKeysPerSplit keys at the largest head dim: lavapipe's per-invocation loop
        // budget (~65k iterations) must hold, or the tail of the keys would silently be dropped.
        try checkAttention(heads: 8, kvHeads: 1, headDim: 256, tokens: 1, cacheStart: 4095, maxKeys: 4096,
                           keysPerSplit: 4096, cacheType: .f16, expectSplits: 1...1)
    }

    func testLongestSplitOfTheDevicesKernel() throws {
        // On CPU devices the subgroup kernel walks up to 32768 keys per workgroup; were its inner loops not
        // unrolled, lavapipe's loop budget would cut the walk short and the output would be wrong. Other devices
        // run the same one-split shape through the kernel they get.
        let device = try KernelTestDevice.get()
        let kernels = try AttentionKernels(device: device)
        let shape = try AttentionShape(heads: 1, kvHeads: 1, headDim: 256, rotaryDim: 64, mropeSection: [11, 11, 10])
        let plan = try kernels.plan(shape: shape, tokens: 1, maxKeys: 32768, keysPerSplit: 32768)
        if device.info.kind == .cpu && kernels.subgroupKernelSupports(headDim: 256) {
            XCTAssertEqual(plan.variant, .subgroup)
            XCTAssertEqual(plan.splits, 1)
        }
        try checkAttention(heads: 1, kvHeads: 1, headDim: 256, tokens: 1, cacheStart: 32767, maxKeys: 32768,
                           keysPerSplit: 32768, cacheType: .f16, expectSplits: plan.splits...plan.splits,
                           tiled: plan.variant == .tiled)
    }

    func testDecodeGroupOf8HeadDim128() throws {
        try checkAttention(heads: 8, kvHeads: 1, headDim: 128, tokens: 1, cacheStart: 333, maxKeys: 334,
                           keysPerSplit: 64, cacheType: .f32, expectSplits: 6...6)
    }

    func testPrefillHeadDim256F16() throws {
        try checkAttention(heads: 16, kvHeads: 2, headDim: 256, tokens: 37, cacheStart: 50, maxKeys: 87,
                           keysPerSplit: nil, cacheType: .f16, expectSplits: 1...1)
    }

    func testPrefillSplitKGroupOf3HeadDim64() throws {
        try checkAttention(heads: 6, kvHeads: 2, headDim: 64, tokens: 33, cacheStart: 100, maxKeys: 133,
                           keysPerSplit: 64, cacheType: .f32, expectSplits: 3...3)
    }

    func testPrefillOneBindingPerKVHeadGroupOf4() throws {
        try checkAttention(heads: 16, kvHeads: 4, headDim: 128, tokens: 20, cacheStart: 30, maxKeys: 59,
                           keysPerSplit: 64, cacheType: .f16, expectSplits: 1...1, perHeadBindings: true)
    }

    func testPrefillFromEmptyCacheGroupOf5HeadDim128() throws {
        try checkAttention(heads: 10, kvHeads: 2, headDim: 128, tokens: 70, cacheStart: 0, maxKeys: 70,
                           keysPerSplit: nil, cacheType: .f16, expectSplits: 1...1)
    }

    private func checkAttention(heads: Int, kvHeads: Int, headDim hd: Int, tokens: Int, cacheStart: Int,
                                maxKeys: Int, keysPerSplit: Int?, cacheType: KVCacheType,
                                expectSplits: ClosedRange<Int>, tiled runTiled: Bool = true,
                                perHeadBindings: Bool = false) throws {
        let device = try KernelTestDevice.get()
        // With per-head bindings, 64-slot multiples keep each head's slice aligned.
        let capacity = perHeadBindings ? (maxKeys + 64) / 64 * 64 : maxKeys + 5
        let limit = perHeadBindings
            ? KVCache.byteCount(kvHeads: 1, capacity: capacity, headDim: hd, type: cacheType) : nil
        let tiled = try AttentionKernels(device: device, variant: .tiled, cacheBindingLimit: limit)
        let subgroup = tiled.subgroupKernelSupports(headDim: hd)
            ? [try AttentionKernels(device: device, variant: .subgroup, cacheBindingLimit: limit)] : []
        let kernelSets = (runTiled ? [tiled] : []) + subgroup
        var (rng, seed) = SeededGenerator.fresh()
        let shape = try AttentionShape(heads: heads, kvHeads: kvHeads, headDim: hd, rotaryDim: hd / 4,
                                       mropeSection: [11, 11, 10])

        let q = rng.normals(tokens * heads * hd), qGate = rng.normals(tokens * heads * 2 * hd, std: 2)
        // Random over the whole cache, so a kernel reading past the causal end would be caught.
        var keys = rng.floats(kvHeads * capacity * hd, in: -2...2), values = rng.floats(kvHeads * capacity * hd, in: -2...2)
        let keyBuffer: Buffer, valueBuffer: Buffer
        switch cacheType {
        case .f32:
            keyBuffer = try NormTestSupport.upload(keys, on: device, "k_cache")
            valueBuffer = try NormTestSupport.upload(values, on: device, "v_cache")
        case .f16:
            let halfKeys = keys.map { Float16($0) }, halfValues = values.map { Float16($0) }
            keys = halfKeys.map(Float.init)
            values = halfValues.map(Float.init)
            keyBuffer = try NormTestSupport.upload(halfKeys, on: device, "k_cache")
            valueBuffer = try NormTestSupport.upload(halfValues, on: device, "v_cache")
        }
        let cache = try KVCache(keys: keyBuffer.whole, values: valueBuffer.whole, type: cacheType, kvHeads: kvHeads,
                                capacity: capacity, headDim: hd)
        let qBuffer = try NormTestSupport.upload(q, on: device, "q")
        let gateBuffer = try NormTestSupport.upload(qGate, on: device, "qgate")
        let startBuffer = try NormTestSupport.upload([UInt32(cacheStart)], on: device, "cache_start")
        let refShape = AttentionReference.Shape(heads: heads, kvHeads: kvHeads, headDim: hd, rotaryDim: hd / 4,
                                                section: [11, 11, 10], eps: 1e-6)
        let expected = AttentionReference.attention(q: q, qGate: qGate, keys: keys, values: values, capacity: capacity,
                                                    cacheStart: cacheStart, tokens: tokens, shape: refShape)
        for kernels in kernelSets {
            let plan = try kernels.plan(shape: shape, tokens: tokens, maxKeys: maxKeys, keysPerSplit: keysPerSplit)
            XCTAssertTrue(expectSplits.contains(plan.splits), "splits \(plan.splits), expected \(expectSplits)")
            let output = try NormTestSupport.poisoned(floats: tokens * heads * hd, on: device, "out")
            let scratch = plan.scratchByteCount > 0
                ? try NormTestSupport.poisoned(bytes: plan.scratchByteCount, on: device, "scratch") : nil
            try device.run { r in
                try kernels.encodeAttention(r, shape: shape, plan: plan, query: qBuffer.whole,
                                            queryGate: gateBuffer.whole, cache: cache, cacheStart: startBuffer.whole,
                                            scratch: scratch?.whole, output: output.whole)
            }
            // The reference reads the same (f16-rounded) cache values, so both cache types meet the f32 bound.
            NormTestSupport.assertClose(try NormTestSupport.floats(output, on: device), expected, tolerance: 2e-5,
                                        "attention \(plan.variant) \(heads)/\(kvHeads)×\(hd) T=\(tokens) "
                                            + "start=\(cacheStart) splits=\(plan.splits) \(cacheType)", seed: seed)
        }
    }

    // MARK: a replayed decode step

    func testRecordedDecodeStepReplaysWithNewPositions() throws {
        let device = try KernelTestDevice.get()
        let kernels = try AttentionKernels(device: device)
        var (rng, seed) = SeededGenerator.fresh()
        let heads = 4, kvHeads = 2, hd = 64, rotaryDim = 16, capacity = 40
        let shape = try AttentionShape(heads: heads, kvHeads: kvHeads, headDim: hd, rotaryDim: rotaryDim,
                                       mropeSection: [3, 3, 2])
        let refShape = AttentionReference.Shape(heads: heads, kvHeads: kvHeads, headDim: hd, rotaryDim: rotaryDim,
                                                section: [3, 3, 2], eps: 1e-6)
        let qNorm = rng.floats(hd, in: 0.5...1.5), kNorm = rng.floats(hd, in: 0.5...1.5)
        let invFreq = AttentionKernels.inverseFrequencies(rotaryDim: rotaryDim, theta: 10_000_000)
        let qGateBuffer = try device.makeBuffer(byteCount: heads * 2 * hd * 4)
        let kBuffer = try device.makeBuffer(byteCount: kvHeads * hd * 4)
        let vBuffer = try device.makeBuffer(byteCount: kvHeads * hd * 4)
        let positionBuffer = try device.makeBuffer(byteCount: 3 * 4)
        let startBuffer = try device.makeBuffer(byteCount: 4)
        let qNormBuffer = try NormTestSupport.upload(qNorm, on: device, "q_norm")
        let kNormBuffer = try NormTestSupport.upload(kNorm, on: device, "k_norm")
        let freqBuffer = try NormTestSupport.upload(invFreq, on: device, "inv_freq")
        let cacheBytes = KVCache.byteCount(kvHeads: kvHeads, capacity: capacity, headDim: hd, type: .f32)
        let keys = try NormTestSupport.poisoned(bytes: cacheBytes, on: device, "k_cache")
        let values = try NormTestSupport.poisoned(bytes: cacheBytes, on: device, "v_cache")
        let cache = try KVCache(keys: keys.whole, values: values.whole, type: .f32, kvHeads: kvHeads,
                                capacity: capacity, headDim: hd)
        let query = try device.makeBuffer(byteCount: heads * hd * 4)
        let output = try device.makeBuffer(byteCount: heads * hd * 4)
        let plan = try kernels.plan(shape: shape, tokens: 1, maxKeys: capacity, keysPerSplit: 64)
        let scratch = try device.makeBuffer(byteCount: max(4, plan.scratchByteCount))
        let step = try device.record { r in
            try kernels.encodeQKNormRopeAppend(r, shape: shape, tokens: 1, queryGate: qGateBuffer.whole,
                                               key: kBuffer.whole, value: vBuffer.whole, queryNorm: qNormBuffer.whole,
                                               keyNorm: kNormBuffer.whole, inverseFrequencies: freqBuffer.whole,
                                               positions: positionBuffer.whole, cacheStart: startBuffer.whole,
                                               cache: cache, query: query.whole)
            r.barrier()
            try kernels.encodeAttention(r, shape: shape, plan: plan, query: query.whole, queryGate: qGateBuffer.whole,
                                        cache: cache, cacheStart: startBuffer.whole, scratch: scratch.whole,
                                        output: output.whole)
        }
        var cachedK = [Float](repeating: 0, count: kvHeads * capacity * hd)
        var cachedV = cachedK
        for position in 0..<3 {
            let qGate = rng.normals(heads * 2 * hd), k = rng.normals(kvHeads * hd), v = rng.normals(kvHeads * hd)
            let positions = AttentionKernels.textPositions(start: position, count: 1)
            try device.upload(qGate, to: qGateBuffer.whole)
            try device.upload(k, to: kBuffer.whole)
            try device.upload(v, to: vBuffer.whole)
            try device.upload(positions, to: positionBuffer.whole)
            try device.upload([UInt32(position)], to: startBuffer.whole)
            try device.submitAndWait(step)

            let prepared = AttentionReference.prepare(qGate: qGate, k: k, qNorm: qNorm, kNorm: kNorm,
                                                      invFreq: invFreq, positions: positions, tokens: 1,
                                                      shape: refShape)
            for h in 0..<kvHeads {
                for d in 0..<hd {
                    cachedK[(h * capacity + position) * hd + d] = Float(prepared.k[h * hd + d])
                    cachedV[(h * capacity + position) * hd + d] = v[h * hd + d]
                }
            }
            let expected = AttentionReference.attention(q: prepared.q.map { Float($0) }, qGate: qGate, keys: cachedK,
                                                        values: cachedV, capacity: capacity, cacheStart: position,
                                                        tokens: 1, shape: refShape)
            NormTestSupport.assertClose(try NormTestSupport.floats(output, on: device), expected, tolerance: 5e-5,
                                        "replayed decode step at position \(position)", seed: seed)
        }
    }
}
