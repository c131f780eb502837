import ModelFiles
import VulkanRuntime

/// Dispatch planning shared by the `MatMulKernels` entry points: pipeline choice, splitting weights into
/// bindable pieces, and the push-constant block of `matvec.comp` / `matmul.comp`:
/// rows, cols, tokens, rowBytes, weightOffsetA, weightOffsetB, inStride, inOffset, outStride, outOffset,
/// expertBytes, expertFirst, expertCount, slotDivisor (14 × u32).
extension MatMulKernels {
    struct Piece { let first: Int; let count: Int }

    /// A binding that starts at the device's offset alignment at or before the wanted byte, and how far
    /// into it the wanted byte is. Lengths are rounded up to whole words (kernels read 32-bit words).
    struct Bound { let slice: BufferSlice; let residual: Int }

    func aligned(_ slice: BufferSlice, from byte: Int, byteCount: Int) -> Bound {
        let alignment = max(info.minStorageBufferOffsetAlignment, 4)
        let start = slice.offset + byte
        let base = start - start % alignment
        let residual = start - base
        let length = min((residual + byteCount + 3) / 4 * 4, slice.buffer.byteCount - base)
        return Bound(slice: BufferSlice(buffer: slice.buffer, offset: base, byteCount: length), residual: residual)
    }

    /// Splits `rows` rows of `rowBytes` each into runs that fit one binding and one dispatch's workgroup count.
    func pieces(rows: Int, rowBytes: Int, maxGroups: Int, rowsPerGroup: Int) throws -> [Piece] {
        let room = (maxBindingBytes ?? info.maxStorageBufferRange) - max(info.minStorageBufferOffsetAlignment, 4) - 4
        guard rowBytes <= room else {
            throw MatMulError(.tooLarge, "one row or expert of \(rowBytes) bytes exceeds the device's "
                + "maxStorageBufferRange of \(info.maxStorageBufferRange) bytes")
        }
        let perPiece = min(room / rowBytes, maxGroups == Int.max ? Int.max : maxGroups * rowsPerGroup)
        return stride(from: 0, to: rows, by: perPiece).map { Piece(first: $0, count: min(perPiece, rows - $0)) }
    }

    func shaderSet(_ type: GGMLType) throws -> MatMulShaderSet {
        guard let set = MatMulShaderSet(type) else {
            throw MatMulError(.unsupportedType, "no GPU mat-mul kernel for \(type)")
        }
        return set
    }

    func matvecPipeline(_ type: GGMLType, tokens: Int, fused: Bool, bySlot: Bool = false,
                        byExpert: Bool = false) throws -> ComputePipeline {
        let set = try shaderSet(type)
        let spec = [matvecShape.workgroup, matvecShape.rows, tokens, fused ? 1 : 0, bySlot ? 1 : 0, byExpert ? 1 : 0]
            .map { UInt32($0) }
        return try device.pipeline(useSubgroups ? set.matvecSubgroup : set.matvecShared, specialization: spec)
    }

    func matmulPipeline(_ type: GGMLType, shape: TileShape, fused: Bool, byExpert: Bool) throws -> ComputePipeline {
        let spec = [shape.workgroup, shape.bm, shape.bn, shape.tm, shape.tn, fused ? 1 : 0, byExpert ? 1 : 0]
        return try device.pipeline(try shaderSet(type).matmul, specialization: spec.map { UInt32($0) })
    }

    func checkFloats(_ slice: BufferSlice, _ what: String, needed: Int) throws {
        guard slice.byteCount >= needed * 4 else {
            throw MatMulError(.bufferTooSmall, "\(what): needs \(needed) floats (\(needed * 4) bytes), the slice "
                + "holds \(slice.byteCount) bytes")
        }
        guard slice.byteCount <= info.maxStorageBufferRange else {
            throw MatMulError(.tooLarge, "\(what): \(slice.byteCount) bytes exceed maxStorageBufferRange "
                + "\(info.maxStorageBufferRange); pass a smaller slice or fewer tokens")
        }
    }

    func checkPair(_ gate: ExpertWeights, _ up: ExpertWeights) throws {
        guard gate.type == up.type, gate.rows == up.rows, gate.cols == up.cols, gate.experts == up.experts,
              gate.expertBytes == up.expertBytes else {
            throw MatMulError(.badShape, "expert gate+up: gate is \(gate.experts)×\(gate.rows)×\(gate.cols) "
                + "\(gate.type), up is \(up.experts)×\(up.rows)×\(up.cols) \(up.type); they must match")
        }
    }

    // MARK: Dense

    func encodeDense(_ recorder: CommandRecorder, gate: WeightMatrix, up: WeightMatrix?, input: BufferSlice,
                     output: BufferSlice, tokens: Int, inputStride: Int?, outputLayout: OutputLayout) throws {
        guard tokens > 0 else { return }
        let inStride = inputStride ?? gate.cols
        let outStride = outputLayout.stride ?? gate.rows
        guard inStride >= gate.cols, outStride >= 1 else {
            throw MatMulError(.badShape, "input stride \(inStride) is shorter than a row of \(gate.cols)")
        }
        try checkFloats(input, "mat-mul input", needed: (tokens - 1) * inStride + gate.cols)
        try checkFloats(output, "mat-mul output", needed: outputLayout.offset + (tokens - 1) * outStride + gate.rows)
        let fused = up != nil
        let x = aligned(input, from: 0, byteCount: input.byteCount)
        let y = aligned(output, from: 0, byteCount: output.byteCount)

        // Token batches: one dispatch for all tokens on the tiled kernel, or up to `matvecTokenLimit` tokens
        // per mat-vec dispatch (the faster choice on CPU devices, where shared-memory tiles do not pay).
        let tiled = tokens > Self.matvecTokenLimit && prefillUsesTiles
        let batch = tiled ? tokens : min(tokens, Self.matvecTokenLimit)
        let rowsPerGroup = tiled ? tileShape.bm : matvecShape.rows
        let tokenGroups = tiled ? ceilDiv(tokens, tileShape.bn) : 1
        guard tokenGroups <= info.maxComputeWorkGroupCount[1] else {
            throw MatMulError(.tooLarge, "\(tokens) tokens need \(tokenGroups) workgroups; split the batch")
        }
        let rowBytes = gate.rowBytes
        let rowPieces = try pieces(rows: gate.rows, rowBytes: rowBytes, maxGroups: info.maxComputeWorkGroupCount[0],
                                   rowsPerGroup: rowsPerGroup)
        for first in stride(from: 0, to: tokens, by: batch) {
            let count = min(batch, tokens - first)
            let pipeline = tiled ? try matmulPipeline(gate.type, shape: tileShape, fused: fused, byExpert: false)
                : try matvecPipeline(gate.type, tokens: count, fused: fused)
            for piece in rowPieces {
                let a = aligned(gate.slice, from: piece.first * rowBytes, byteCount: piece.count * rowBytes)
                let b = up.map { aligned($0.slice, from: piece.first * rowBytes, byteCount: piece.count * rowBytes) } ?? a
                let push: [UInt32] = [piece.count, gate.cols, count, rowBytes, a.residual, b.residual,
                                      inStride, x.residual / 4 + first * inStride, outStride,
                                      y.residual / 4 + outputLayout.offset + first * outStride + piece.first,
                                      0, 0, 1, 1].map { UInt32($0) }
                let bindings = [a.slice, b.slice, x.slice, y.slice, x.slice, x.slice, x.slice]
                recorder.dispatch(pipeline, bindings: bindings, push: push,
                                  groups: (ceilDiv(piece.count, rowsPerGroup), tokenGroups, 1))
            }
        }
    }

    // MARK: Experts

    private func expertCommon(_ gate: ExpertWeights, input: BufferSlice, output: BufferSlice, slots: Int,
                              inputRows: ExpertInput, outputLayout: OutputLayout) throws -> (Int, Int) {
        let divisor = inputRows.divisor
        guard divisor >= 1 else { throw MatMulError(.badShape, "top-k must be at least 1") }
        let inputRowCount = (slots - 1) / divisor + 1
        let outStride = outputLayout.stride ?? gate.rows
        try checkFloats(input, "expert input", needed: inputRowCount * gate.cols)
        try checkFloats(output, "expert output", needed: outputLayout.offset + (slots - 1) * outStride + gate.rows)
        return (divisor, outStride)
    }

    /// Experts [first, first + count) that fit one binding.
    private func expertPieces(_ w: ExpertWeights) throws -> [Piece] {
        try pieces(rows: w.experts, rowBytes: w.expertBytes, maxGroups: Int.max, rowsPerGroup: 1)
    }

    func encodeExpertsBySlot(_ recorder: CommandRecorder, gate: ExpertWeights, up: ExpertWeights?, ids: BufferSlice,
                             input: BufferSlice, output: BufferSlice, slots: Int, inputRows: ExpertInput,
                             outputLayout: OutputLayout) throws {
        guard slots > 0 else { return }
        guard slots <= info.maxComputeWorkGroupCount[1] else {
            throw MatMulError(.tooLarge, "\(slots) slots exceed one dispatch; use the by-expert kernel")
        }
        guard ids.byteCount >= slots * 4 else {
            throw MatMulError(.bufferTooSmall, "expert ids: \(slots) slots need \(slots * 4) bytes")
        }
        let (divisor, outStride) = try expertCommon(gate, input: input, output: output, slots: slots,
                                                    inputRows: inputRows, outputLayout: outputLayout)
        let pipeline = try matvecPipeline(gate.type, tokens: 1, fused: up != nil, bySlot: true)
        let x = aligned(input, from: 0, byteCount: input.byteCount)
        let y = aligned(output, from: 0, byteCount: output.byteCount)
        let idsBinding = aligned(ids, from: 0, byteCount: ids.byteCount)
        guard idsBinding.residual == 0 else {
            throw MatMulError(.badShape, "expert ids must start at a multiple of minStorageBufferOffsetAlignment")
        }
        for piece in try expertPieces(gate) {
            let bytes = piece.count * gate.expertBytes
            let a = aligned(gate.slice, from: piece.first * gate.expertBytes, byteCount: bytes)
            let b = up.map { aligned($0.slice, from: piece.first * $0.expertBytes, byteCount: bytes) } ?? a
            let push: [UInt32] = [gate.rows, gate.cols, slots, gate.rowBytes,
                                  a.residual + gate.rowOffset * gate.rowBytes,
                                  b.residual + (up ?? gate).rowOffset * gate.rowBytes,
                                  gate.cols, x.residual / 4, outStride, y.residual / 4 + outputLayout.offset,
                                  gate.expertBytes, piece.first, piece.count, divisor].map { UInt32($0) }
            recorder.dispatch(pipeline, bindings: [a.slice, b.slice, x.slice, y.slice, idsBinding.slice, x.slice, x.slice],
                              push: push,
                              groups: (ceilDiv(gate.rows, matvecShape.rows), slots, 1))
        }
    }

    func encodeExpertsByExpert(_ recorder: CommandRecorder, gate: ExpertWeights, up: ExpertWeights?,
                               routing: ExpertRouting, input: BufferSlice, output: BufferSlice, slots: Int,
                               inputRows: ExpertInput, outputLayout: OutputLayout) throws {
        guard slots > 0 else { return }
        guard routing.counts.byteCount >= gate.experts * 4, routing.offsets.byteCount >= gate.experts * 4,
              routing.sortedSlots.byteCount >= slots * 4 else {
            throw MatMulError(.bufferTooSmall, "expert routing: counts and offsets need \(gate.experts) int32 each, "
                + "sortedSlots \(slots)")
        }
        let (divisor, outStride) = try expertCommon(gate, input: input, output: output, slots: slots,
                                                    inputRows: inputRows, outputLayout: outputLayout)
        // GPUs: shared-memory tiles of `expertTileShape.bn` slots. CPU devices: mat-vec workgroups of
        // `matvecTokenLimit` slots (see `prefillUsesTiles`).
        let tiled = prefillUsesTiles
        let batch = tiled ? expertTileShape.bn : Self.matvecTokenLimit
        let rowsPerGroup = tiled ? expertTileShape.bm : matvecShape.rows
        let pipeline = tiled ? try matmulPipeline(gate.type, shape: expertTileShape, fused: up != nil, byExpert: true)
            : try matvecPipeline(gate.type, tokens: batch, fused: up != nil, byExpert: true)
        let x = aligned(input, from: 0, byteCount: input.byteCount)
        let y = aligned(output, from: 0, byteCount: output.byteCount)
        let tables = [routing.counts, routing.offsets, routing.sortedSlots].map {
            aligned($0, from: 0, byteCount: $0.byteCount)
        }
        guard tables.allSatisfy({ $0.residual == 0 }) else {
            throw MatMulError(.badShape, "expert routing tables must start at a multiple of "
                + "minStorageBufferOffsetAlignment")
        }
        // matmul.comp binds counts, offsets, sortedSlots at 4, 5, 6; matvec.comp sortedSlots, counts, offsets.
        let tableBindings = tiled ? tables.map(\.slice) : [tables[2].slice, tables[0].slice, tables[1].slice]
        let rowGroups = ceilDiv(gate.rows, rowsPerGroup)
        guard rowGroups <= info.maxComputeWorkGroupCount[0] else {
            throw MatMulError(.tooLarge, "\(gate.rows) expert rows need too many workgroups")
        }
        for piece in try expertPieces(gate) {
            // At most one partial batch per expert with slots, plus the full batches.
            let tiles = min(ceilDiv(slots, batch) + min(piece.count, slots), info.maxComputeWorkGroupCount[1])
            let bytes = piece.count * gate.expertBytes
            let a = aligned(gate.slice, from: piece.first * gate.expertBytes, byteCount: bytes)
            let b = up.map { aligned($0.slice, from: piece.first * $0.expertBytes, byteCount: bytes) } ?? a
            let push: [UInt32] = [gate.rows, gate.cols, slots, gate.rowBytes,
                                  a.residual + gate.rowOffset * gate.rowBytes,
                                  b.residual + (up ?? gate).rowOffset * gate.rowBytes,
                                  gate.cols, x.residual / 4, outStride, y.residual / 4 + outputLayout.offset,
                                  gate.expertBytes, piece.first, piece.count, divisor].map { UInt32($0) }
            recorder.dispatch(pipeline, bindings: [a.slice, b.slice, x.slice, y.slice] + tableBindings,
                              push: push, groups: (rowGroups, tiles, 1))
        }
    }
}

func ceilDiv(_ a: Int, _ b: Int) -> Int { (a + b - 1) / b }
