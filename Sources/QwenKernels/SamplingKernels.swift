import QwenShaders
import VulkanRuntime

/// Token selection on the device, so that decode reads back a token id (or k candidates) instead of a whole
/// vocabulary row.
///
/// Order of every selection: larger logit first, equal logits to the lower token id, NaN after every number
/// (a NaN is picked only when a row has fewer than k numbers). Rows are `[rows, vocab]` f32, contiguous.
/// A row is cut into chunks, one workgroup each, that keep their own top-k; further passes of the same shader
/// merge those candidates a chunk at a time until one chunk is left. For k ≥ 16 two cheap passes first find a
/// bound τ (the k-th of the per-invocation maxima) so that the chunks only rank elements up to τ. Intermediate
/// candidates live in a caller-provided scratch slice of `scratchByteCount(rows:vocab:topK:)` bytes.
/// Methods only record work; the caller adds a barrier before reading what they wrote.
public final class SamplingKernels {
    /// Most candidates `encodeTopK` returns per row.
    public static let maxTopK = 64

    private let device: VulkanDevice
    /// Argmax keeps one candidate per invocation, top-k four (see LANE_CACHE in moe_common.glsl).
    private let argmax: MoEPipeline
    private let topK: MoEPipeline
    /// Elements one workgroup covers: 256 per invocation (on lavapipe fewer, longer workgroups measured ~2×
    /// faster than 64 per invocation), and at least 512 so that a merge pass shrinks k = 64 candidates 8×.
    private let chunk: Int

    /// `subgroupArithmetic: false` forces the portable shared-memory reductions even where subgroups would do.
    public convenience init(device: VulkanDevice, subgroupArithmetic: Bool = true) throws {
        try self.init(device: device, subgroupArithmetic: subgroupArithmetic, workgroupSize: nil)
    }

    /// `workgroupSize` overrides the choice below (tests use it to reach the multi-subgroup reductions).
    init(device: VulkanDevice, subgroupArithmetic: Bool, workgroupSize: Int?) throws {
        self.device = device
        let subgroups = subgroupArithmetic && device.selectionSubgroupsUsable
        // With subgroup arithmetic a workgroup is one subgroup, whose rounds then need no barrier (on a CPU
        // device barriers are most of a round's cost).
        let size = workgroupSize ?? (subgroups ? device.info.subgroupSize : 64)
        argmax = try MoEPipeline(device: device, shader: subgroups ? Shaders.argmax_rows_subgroup : Shaders.argmax_rows,
                                 preferredWorkgroup: size)
        topK = try MoEPipeline(device: device, shader: subgroups ? Shaders.topk_rows_subgroup : Shaders.topk_rows,
                               preferredWorkgroup: size)
        chunk = max(512, topK.workgroupSize * 256)
    }

    /// One dispatch of a selection: `elements` candidates per row in, `chunks · topK` per row out.
    private struct Pass {
        let elements: Int
        let chunks: Int
        /// Where this pass writes its candidates in the scratch (values, then ids at `idsOffset`); nil for the
        /// last pass, which writes the caller's outputs.
        let valuesOffset: Int?
        let idsOffset: Int
    }

    /// The threshold step of a top-k: the maxima of every invocation of the first pass (`count` per row, values
    /// then ids), then their top-k, whose k-th element τ bounds the row's top-k (see topk_rows.comp).
    private struct Threshold {
        let count: Int
        let maximaValues: Int, maximaIds: Int
        let tauValues: Int, tauIds: Int
    }

    /// Every dispatch of a selection and where its parts of the scratch start (each at the device's
    /// storage-buffer offset alignment); `winnersOffset`: argmax's winning values, which nobody reads back.
    private struct Plan {
        var threshold: Threshold?
        var passes: [Pass] = []
        var winnersOffset = 0
        var byteCount = 0
    }

    private func plan(rows: Int, vocab: Int, topK: Int) -> Plan {
        let alignment = max(4, device.info.minStorageBufferOffsetAlignment)
        var offset = 0
        /// Reserves `count` 4-byte elements per row.
        func reserve(_ count: Int) -> Int {
            defer { offset += (4 * rows * count + alignment - 1) / alignment * alignment }
            return offset
        }
        var plan = Plan()
        // The threshold pays off (measured on lavapipe) from k = 16, when the row spans several chunks and gives
        // plenty of maxima to rank.
        let maxima = (vocab + chunk - 1) / chunk * argmax.workgroupSize
        if topK >= 16, vocab > chunk, maxima >= 4 * topK {
            plan.threshold = Threshold(count: maxima, maximaValues: reserve(maxima),
                                       maximaIds: reserve(maxima), tauValues: reserve(topK), tauIds: reserve(topK))
        }
        var elements = vocab
        while true {
            let chunks = (elements + chunk - 1) / chunk
            if chunks == 1 {
                plan.passes.append(Pass(elements: elements, chunks: 1, valuesOffset: nil, idsOffset: 0))
                break
            }
            plan.passes.append(Pass(elements: elements, chunks: chunks, valuesOffset: reserve(chunks * topK),
                                    idsOffset: reserve(chunks * topK)))
            elements = chunks * topK
        }
        plan.winnersOffset = reserve(1)
        plan.byteCount = offset
        return plan
    }

    /// Scratch bytes `encodeArgmax` (`topK` 1) or `encodeTopK` needs for these shapes.
    public func scratchByteCount(rows: Int, vocab: Int, topK: Int = 1) -> Int {
        plan(rows: rows, vocab: vocab, topK: topK).byteCount
    }

    /// `ids[r]` (Int32) = the index of the largest logit of row r, ties to the lowest index, NaN ignored
    /// (a row of NaN only gives 0).
    public func encodeArgmax(_ recorder: CommandRecorder, logits: BufferSlice, rows: Int, vocab: Int,
                             ids: BufferSlice, scratch: BufferSlice) throws {
        try MoEShapeCheck.fits(ids, elements: rows, "ids", in: "encodeArgmax")
        try checkScratch(scratch, rows: rows, vocab: vocab, topK: 1, in: "encodeArgmax")
        let winners = scratch.slice(offset: plan(rows: rows, vocab: vocab, topK: 1).winnersOffset, byteCount: 4 * rows)
        try encodeSelection(recorder, argmax, logits: logits, rows: rows, vocab: vocab, topK: 1,
                            values: winners, ids: ids, scratch: scratch, in: "encodeArgmax")
    }

    /// The `topK` largest logits of each row in selection order: `values [rows, topK]` f32 and
    /// `ids [rows, topK]` Int32.
    public func encodeTopK(_ recorder: CommandRecorder, logits: BufferSlice, rows: Int, vocab: Int, topK: Int,
                           values: BufferSlice, ids: BufferSlice, scratch: BufferSlice) throws {
        guard (1...Self.maxTopK).contains(topK) else {
            throw VulkanError(.invalidUsage, "encodeTopK: topK \(topK) must be in 1...\(Self.maxTopK)")
        }
        try MoEShapeCheck.fits(values, elements: rows * topK, "values", in: "encodeTopK")
        try MoEShapeCheck.fits(ids, elements: rows * topK, "ids", in: "encodeTopK")
        try checkScratch(scratch, rows: rows, vocab: vocab, topK: topK, in: "encodeTopK")
        try encodeSelection(recorder, self.topK, logits: logits, rows: rows, vocab: vocab, topK: topK,
                            values: values, ids: ids, scratch: scratch, in: "encodeTopK")
    }

    private func checkScratch(_ scratch: BufferSlice, rows: Int, vocab: Int, topK: Int, in call: String) throws {
        let needed = scratchByteCount(rows: rows, vocab: vocab, topK: topK)
        guard scratch.byteCount >= needed else {
            throw VulkanError(.invalidUsage, "\(call): scratch holds \(scratch.byteCount) bytes, needs \(needed) "
                + "(scratchByteCount(rows: \(rows), vocab: \(vocab), topK: \(topK)))")
        }
    }

    private func encodeSelection(_ recorder: CommandRecorder, _ select: MoEPipeline, logits: BufferSlice, rows: Int,
                                 vocab: Int, topK: Int, values: BufferSlice, ids: BufferSlice, scratch: BufferSlice,
                                 in call: String) throws {
        try MoEShapeCheck.positive(rows, "rows", in: call)
        guard vocab >= topK else {
            throw VulkanError(.invalidUsage, "\(call): rows of \(vocab) logits cannot give \(topK) candidates")
        }
        try MoEShapeCheck.fits(logits, elements: rows * vocab, "logits", in: call)
        guard rows <= device.info.maxComputeWorkGroupCount[1] else {
            throw VulkanError(.invalidUsage, "\(call): \(rows) rows exceed the device's workgroup grid; split them")
        }
        let plan = plan(rows: rows, vocab: vocab, topK: topK)
        func part(_ offset: Int, _ count: Int) -> BufferSlice {
            scratch.slice(offset: offset, byteCount: 4 * rows * count)
        }
        // The first pass over the logits reads them 4 per load where the row length and the slice allow it.
        let vec4Logits: UInt32 = vocab % 4 == 0 && logits.offset % 16 == 0 ? 1 : 0
        // Bindings: values, ids, out values, out ids, values as vec4, threshold values, threshold ids (the
        // unused ones get any valid slice).
        var threshold = (values: logits, ids: logits, use: UInt32(0))
        if let t = plan.threshold {
            let maximaValues = part(t.maximaValues, t.count), maximaIds = part(t.maximaIds, t.count)
            let tauValues = part(t.tauValues, topK), tauIds = part(t.tauIds, topK)
            // argmax and topK share the workgroup size, so the maxima pass covers the same chunks.
            recorder.dispatch(argmax.pipeline,
                              bindings: [logits, logits, maximaValues, maximaIds, logits, logits, logits],
                              push: [UInt32(vocab), 1, UInt32(chunk), 0, vec4Logits, 0, 1],
                              groups: (t.count / argmax.workgroupSize, rows, 1))
            recorder.barrier()
            recorder.dispatch(self.topK.pipeline,
                              bindings: [maximaValues, maximaIds, tauValues, tauIds, maximaValues, logits, logits],
                              push: [UInt32(t.count), UInt32(topK), UInt32(t.count), 1, 0, 0, 0], groups: (1, rows, 1))
            recorder.barrier()
            threshold = (tauValues, tauIds, 1)
        }
        var inValues = logits, inIds = logits, candidateIds: UInt32 = 0, vec4Rows = vec4Logits
        for pass in plan.passes {
            let push = [UInt32(pass.elements), UInt32(topK), UInt32(chunk), candidateIds, vec4Rows, threshold.use, 0]
            var outValues = values, outIds = ids
            if let valuesOffset = pass.valuesOffset {
                outValues = part(valuesOffset, pass.chunks * topK)
                outIds = part(pass.idsOffset, pass.chunks * topK)
            }
            recorder.dispatch(select.pipeline,
                              bindings: [inValues, inIds, outValues, outIds, inValues, threshold.values, threshold.ids],
                              push: push, groups: (pass.chunks, rows, 1))
            if pass.valuesOffset == nil { return }
            recorder.barrier()
            (inValues, inIds, candidateIds, vec4Rows, threshold.use) = (outValues, outIds, 1, 0, 0)
        }
    }
}
