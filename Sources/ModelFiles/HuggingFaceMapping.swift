import Foundation

/// Maps a Hugging Face Qwen3.5 checkpoint onto the canonical (GGUF) tensor set, undoing what llama.cpp's
/// converter (`conversion/qwen.py`) does so that both sources mean the same numbers:
/// shapes reversed into ggml order; `ssm_a` = −exp(A_log) in float32; +1 on every (1 + w) norm except
/// `linear_attn.norm`; conv1d squeezed; value heads reordered from grouped to tiled in qkv / z / a / b /
/// A_log / dt_bias / conv1d / out_proj; fused `gate_up_proj` experts split (per-expert tensors stacked);
/// `mtp.*` as the nextn block. Small tensors the converter stores as F32 (norms, conv, router, gates,
/// A and dt) become F32; every other matrix keeps its stored dtype.
enum HuggingFaceMapping {
    static func load(directory: URL) throws -> ModelWeights {
        let configURL = directory.appendingPathComponent("config.json")
        let configData: Data
        do { configData = try Data(contentsOf: configURL) } catch {
            throw ModelFileError.cannotOpen(configURL.path, reason: error.localizedDescription)
        }
        var config = try ModelConfig(huggingFaceConfig: configData, path: configURL.path)
        let checkpoint = try SafetensorsCheckpoint(directory: directory)
        // Text-only checkpoints use `model.`, multimodal ones `model.language_model.`.
        let prefix = checkpoint.contains("model.language_model.embed_tokens.weight") ? "model.language_model." : "model."
        // A checkpoint saved without its MTP weights (or a config that names none) runs without MTP.
        if !checkpoint.contains("mtp.fc.weight") { config.mtpLayers = 0 }
        if config.tieEmbeddings == false && !checkpoint.contains("lm_head.weight") {
            throw ModelFileError.missingTensor("lm_head.weight")
        }
        let builder = Builder(config: config, checkpoint: checkpoint)
        var entries: [String: ModelWeights.Entry] = [:]
        func put(_ name: String, _ entry: ModelWeights.Entry?) { if let entry { entries[name] = entry } }

        put(TensorNames.tokenEmbedding, try builder.plain(prefix + "embed_tokens.weight"))
        put(TensorNames.outputNorm, try builder.norm(prefix + "norm.weight", addOne: true))
        if !config.tieEmbeddings { put(TensorNames.output, try builder.plain("lm_head.weight")) }
        for (i, kind) in config.layerKinds.enumerated() {
            try builder.layer(hf: "\(prefix)layers.\(i).", gguf: i, kind: kind, into: &entries)
        }
        for m in 0..<config.mtpLayers {
            let i = config.layerCount + m
            put(TensorNames.block(i, "nextn.eh_proj.weight"), try builder.plain("mtp.fc.weight"))
            put(TensorNames.block(i, "nextn.enorm.weight"), try builder.norm("mtp.pre_fc_norm_embedding.weight", addOne: true))
            put(TensorNames.block(i, "nextn.hnorm.weight"), try builder.norm("mtp.pre_fc_norm_hidden.weight", addOne: true))
            put(TensorNames.block(i, "nextn.shared_head_norm.weight"), try builder.norm("mtp.norm.weight", addOne: true))
            try builder.layer(hf: "mtp.layers.\(m).", gguf: i, kind: .fullAttention, into: &entries)
        }
        return try ModelWeights(config: config, source: .huggingFace(checkpoint, directory: directory), entries: entries)
    }

    /// Builds entries from checkpoint tensors; shapes are checked against the config here, before any bytes
    /// are read, so a mis-shaped HF tensor is reported under its own name.
    struct Builder {
        let config: ModelConfig
        let checkpoint: SafetensorsCheckpoint

        /// The HF tensor's type and ggml-order shape.
        func source(_ name: String) throws -> (type: GGMLType, shape: [Int]) {
            guard let info = checkpoint.info(name) else { throw ModelFileError.missingTensor(name) }
            guard let type = info.ggmlType else {
                throw SafetensorsError.unsupportedDType(name, tensor: name, dtype: info.dtype)
            }
            return (type, info.shape.isEmpty ? [1] : info.shape.reversed())
        }

        func expect(_ name: String, _ shape: [Int], hfShape: [Int]) throws {
            guard ModelConfig.sameShape(shape, hfShape) else {
                throw ModelFileError.wrongShape(name, expected: Array(shape.reversed()), found: Array(hfShape.reversed()))
            }
        }

        /// Same bytes, ggml shape.
        func plain(_ name: String) throws -> ModelWeights.Entry {
            let (type, shape) = try source(name)
            return ModelWeights.Entry(type: type, shape: shape) { try checkpoint.tensor(name) }
        }

        /// A 1-D (or [n, 1]) weight as F32, optionally with the (1 + w) fold.
        func norm(_ name: String, addOne: Bool) throws -> ModelWeights.Entry {
            let (_, shape) = try source(name)
            return ModelWeights.Entry(type: .f32, shape: shape) {
                let values = try checkpoint.tensor(name).toFloat()
                return TensorData(name: name, shape: shape, floats: addOne ? values.map { $0 + 1 } : values)
            }
        }

        /// The value-head permutation grouped → tiled: tiled head t = j·NK + k holds grouped head k·r + j
        /// (r = NV / NK), so that value head t pairs with key head t % NK.
        var tiledFromGrouped: [Int] {
            let nk = config.linearKeyHeads, nv = config.linearValueHeads, r = nv / nk
            return (0..<nv).map { t in (t % nk) * r + t / nk }
        }

        func layer(hf p: String, gguf i: Int, kind: ModelConfig.LayerKind,
                   into entries: inout [String: ModelWeights.Entry]) throws {
            let h = config.hiddenSize
            func put(_ suffix: String, _ entry: ModelWeights.Entry) { entries[TensorNames.block(i, suffix)] = entry }
            func checked(_ name: String, _ shape: [Int]) throws -> ModelWeights.Entry {
                let entry = try plain(name)
                try expect(name, shape, hfShape: entry.shape)
                return entry
            }
            put("attn_norm.weight", try norm(p + "input_layernorm.weight", addOne: true))
            put("post_attention_norm.weight", try norm(p + "post_attention_layernorm.weight", addOne: true))

            switch kind {
            case .linearAttention:
                let a = p + "linear_attn."
                let nv = config.linearValueHeads, dv = config.linearValueHeadDim
                let perm = tiledFromGrouped
                let vStart = 2 * config.linearKeyDim
                put("attn_qkv.weight", try permutedRows(a + "in_proj_qkv.weight", [h, config.convDim],
                                                        start: vStart, blockRows: dv, perm: perm))
                put("attn_gate.weight", try permutedRows(a + "in_proj_z.weight", [h, nv * dv], start: 0, blockRows: dv, perm: perm))
                put("ssm_beta.weight", try permutedRows(a + "in_proj_b.weight", [h, nv], start: 0, blockRows: 1, perm: perm))
                put("ssm_alpha.weight", try permutedRows(a + "in_proj_a.weight", [h, nv], start: 0, blockRows: 1, perm: perm))
                // conv1d [C, 1, K] → ggml [K, 1, C] → squeezed [K, C]; each channel is a row of K taps.
                let conv = a + "conv1d.weight"
                let (_, convShape) = try source(conv)
                let squeezed = convShape.filter { $0 != 1 }
                try expect(conv, [config.convKernel, config.convDim], hfShape: squeezed.count == 2 ? squeezed : convShape)
                put("ssm_conv1d.weight", try permutedRows(conv, [config.convKernel, config.convDim], start: vStart,
                                                          blockRows: dv, perm: perm, toF32: true, allowSqueeze: true))
                put("ssm_dt.bias", try permutedVector(a + "dt_bias", perm: perm) { $0 })
                put("ssm_a", try permutedVector(a + "A_log", perm: perm) { -Foundation.exp($0) })
                let ssmNorm = try norm(a + "norm.weight", addOne: false)
                try expect(a + "norm.weight", [dv], hfShape: ssmNorm.shape)
                put("ssm_norm.weight", ssmNorm)
                put("ssm_out.weight", try permutedColumns(a + "out_proj.weight", [nv * dv, h], blockColumns: dv, perm: perm))
            case .fullAttention:
                let s = p + "self_attn."
                let nh = config.attentionHeads, nkv = config.kvHeads, hd = config.headDim
                put("attn_q.weight", try checked(s + "q_proj.weight", [h, 2 * nh * hd]))
                put("attn_k.weight", try checked(s + "k_proj.weight", [h, nkv * hd]))
                put("attn_v.weight", try checked(s + "v_proj.weight", [h, nkv * hd]))
                put("attn_output.weight", try checked(s + "o_proj.weight", [nh * hd, h]))
                put("attn_q_norm.weight", try norm(s + "q_norm.weight", addOne: true))
                put("attn_k_norm.weight", try norm(s + "k_norm.weight", addOne: true))
            }

            let m = p + "mlp."
            switch config.feedForward {
            case let .dense(ff):
                put("ffn_gate.weight", try checked(m + "gate_proj.weight", [h, ff]))
                put("ffn_up.weight", try checked(m + "up_proj.weight", [h, ff]))
                put("ffn_down.weight", try checked(m + "down_proj.weight", [ff, h]))
            case let .moe(experts, _, ff, shared):
                let router = try norm(m + "gate.weight", addOne: false)
                try expect(m + "gate.weight", [h, experts], hfShape: router.shape)
                put("ffn_gate_inp.weight", router)
                try expertEntries(m + "experts.", experts: experts, ff: ff, i: i, into: &entries)
                if shared > 0 {
                    let gate = try norm(m + "shared_expert_gate.weight", addOne: false)
                    try expect(m + "shared_expert_gate.weight", [h, 1], hfShape: gate.shape)
                    put("ffn_gate_inp_shexp.weight", gate)
                    put("ffn_gate_shexp.weight", try checked(m + "shared_expert.gate_proj.weight", [h, shared]))
                    put("ffn_up_shexp.weight", try checked(m + "shared_expert.up_proj.weight", [h, shared]))
                    put("ffn_down_shexp.weight", try checked(m + "shared_expert.down_proj.weight", [shared, h]))
                }
            }
        }

        /// Routed experts: fused `gate_up_proj` [E, 2·ff, H] (gate rows first) and `down_proj` [E, H, ff], or
        /// per-expert `{e}.gate_proj/up_proj/down_proj.weight` stacked (expert outermost, as in ggml).
        func expertEntries(_ e: String, experts: Int, ff: Int, i: Int, into entries: inout [String: ModelWeights.Entry]) throws {
            let h = config.hiddenSize
            if checkpoint.contains(e + "gate_up_proj") {
                let fused = e + "gate_up_proj"
                let (type, shape) = try source(fused)
                try expect(fused, [h, 2 * ff, experts], hfShape: shape)
                for (suffix, half) in [("ffn_gate_exps.weight", 0), ("ffn_up_exps.weight", 1)] {
                    entries[TensorNames.block(i, suffix)] = ModelWeights.Entry(type: type, shape: [h, ff, experts]) {
                        let source = try checkpoint.tensor(fused)
                        let expertBytes = source.byteCount / experts, halfBytes = expertBytes / 2
                        let out = OwnedBytes(count: source.byteCount / 2)
                        for x in 0..<experts {
                            out.pointer[(x * halfBytes)..<((x + 1) * halfBytes)].copyBytes(
                                from: source.bytes[(x * expertBytes + half * halfBytes)..<(x * expertBytes + (half + 1) * halfBytes)])
                        }
                        return TensorData(name: fused, type: type, shape: [h, ff, experts], bytes: out.bytes, storage: out)
                    }
                }
                let down = e + "down_proj"
                let downEntry = try plain(down)
                try expect(down, [ff, h, experts], hfShape: downEntry.shape)
                entries[TensorNames.block(i, "ffn_down_exps.weight")] = downEntry
            } else {
                for (suffix, projection, shape) in [("ffn_gate_exps.weight", "gate_proj", [h, ff]),
                                                    ("ffn_up_exps.weight", "up_proj", [h, ff]),
                                                    ("ffn_down_exps.weight", "down_proj", [ff, h])] {
                    let names = (0..<experts).map { "\(e)\($0).\(projection).weight" }
                    var type: GGMLType?
                    for name in names {
                        let (t, s) = try source(name)
                        try expect(name, shape, hfShape: s)
                        guard type == nil || type == t else {
                            throw ModelFileError.unexpectedType(name, type: t, reason: "experts of one layer must share a dtype")
                        }
                        type = t
                    }
                    entries[TensorNames.block(i, suffix)] = ModelWeights.Entry(type: type!, shape: shape + [experts]) {
                        let parts = try names.map { try checkpoint.tensor($0) }
                        let out = OwnedBytes(count: parts.reduce(0) { $0 + $1.byteCount })
                        var offset = 0
                        for part in parts {
                            out.pointer[offset..<offset + part.byteCount].copyBytes(from: part.bytes)
                            offset += part.byteCount
                        }
                        return TensorData(name: names[0], type: type!, shape: shape + [experts], bytes: out.bytes, storage: out)
                    }
                }
            }
        }

        /// Rows (ggml's outer dimension) `start + blockRows·t ..< ...` take the block `perm[t]`; rows before
        /// `start` stay. The value-head rows of qkv / z / a / b and the value channels of conv1d.
        func permutedRows(_ name: String, _ shape: [Int], start: Int, blockRows: Int, perm: [Int],
                          toF32: Bool = false, allowSqueeze: Bool = false) throws -> ModelWeights.Entry {
            let (type, hfShape) = try source(name)
            if !allowSqueeze { try expect(name, shape, hfShape: hfShape) }
            let outType: GGMLType = toF32 ? .f32 : type
            return ModelWeights.Entry(type: outType, shape: shape) {
                let source = try checkpoint.tensor(name)
                let rowBytes = source.byteCount / shape[1], blockBytes = rowBytes * blockRows
                let out = OwnedBytes(count: source.byteCount)
                out.pointer.copyMemory(from: source.bytes)
                for (t, from) in perm.enumerated() {
                    let dst = (start * rowBytes) + t * blockBytes, src = (start * rowBytes) + from * blockBytes
                    out.pointer[dst..<dst + blockBytes].copyBytes(from: source.bytes[src..<src + blockBytes])
                }
                let permuted = TensorData(name: name, type: type, shape: shape, bytes: out.bytes, storage: out)
                return toF32 ? TensorData(name: name, shape: shape, floats: permuted.toFloat()) : permuted
            }
        }

        /// Within every row, column block t takes column block `perm[t]`: the input columns of out_proj.
        func permutedColumns(_ name: String, _ shape: [Int], blockColumns: Int, perm: [Int]) throws -> ModelWeights.Entry {
            let (type, hfShape) = try source(name)
            try expect(name, shape, hfShape: hfShape)
            return ModelWeights.Entry(type: type, shape: shape) {
                let source = try checkpoint.tensor(name)
                let rowBytes = type.byteCount(elements: shape[0]), blockBytes = type.byteCount(elements: blockColumns)
                let out = OwnedBytes(count: source.byteCount)
                for row in 0..<shape[1] {
                    for (t, from) in perm.enumerated() {
                        let dst = row * rowBytes + t * blockBytes, src = row * rowBytes + from * blockBytes
                        out.pointer[dst..<dst + blockBytes].copyBytes(from: source.bytes[src..<src + blockBytes])
                    }
                }
                return TensorData(name: name, type: type, shape: shape, bytes: out.bytes, storage: out)
            }
        }

        /// A per-value-head vector (A_log, dt_bias) as F32, permuted to tiled order and transformed.
        func permutedVector(_ name: String, perm: [Int], _ transform: @escaping (Float) -> Float) throws -> ModelWeights.Entry {
            let (_, hfShape) = try source(name)
            try expect(name, [perm.count], hfShape: hfShape)
            return ModelWeights.Entry(type: .f32, shape: [perm.count]) {
                let values = try checkpoint.tensor(name).toFloat()
                return TensorData(name: name, shape: [perm.count], floats: perm.map { transform(values[$0]) })
            }
        }
    }
}
