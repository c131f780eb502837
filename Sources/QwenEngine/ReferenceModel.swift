import Foundation
import ModelFiles

/// A plain-Swift float32 Qwen3.5 forward pass on dequantized weights, one token at a time with the
/// recurrent delta rule (spec §2, GGUF tensor conventions).
///
/// It is the oracle for the Vulkan plan: it proves the weight mapping and the reading of the math
/// against the transformers references with no GPU involved, and gives per-layer hidden states
/// when a GPU result has to be bisected. Slow by design (no SIMD, no threads): use it on the
/// conformance kit's tiny models.
public final class ReferenceModel {
    public let dimensions: ModelDimensions
    private let layers: [Layer]
    private let tokenEmbedding: [Float]
    private let outputNorm: [Float]
    private let output: [Float]

    /// Everything a sequence carries between tokens.
    public struct State {
        /// Per full-attention layer: keys and values of every past position, [position][kvHead·headDim].
        var keys: [[[Float]]]
        var values: [[[Float]]]
        /// Per linear-attention layer: the last (convKernel − 1) pre-conv rows, oldest first.
        var convRows: [[[Float]]]
        /// Per linear-attention layer: S[vHead][k][v] flattened, float32.
        var recurrent: [[Float]]
        public private(set) var position = 0

        mutating func advance() { position += 1 }
    }

    private struct DeltaNetWeights {
        let qkv: [Float], gate: [Float], beta: [Float], alpha: [Float]
        let conv: [Float], dtBias: [Float], a: [Float], norm: [Float], out: [Float]
    }
    private struct AttentionWeights {
        let q: [Float], k: [Float], v: [Float], o: [Float], qNorm: [Float], kNorm: [Float]
    }
    private enum FFNWeights {
        case dense(gate: [Float], up: [Float], down: [Float])
        case moe(router: [Float], gate: [Float], up: [Float], down: [Float],
                 sharedGate: [Float], sharedUp: [Float], sharedDown: [Float], sharedRouter: [Float])
    }
    private enum Mixer { case deltaNet(DeltaNetWeights), attention(AttentionWeights) }
    private struct Layer { let attnNorm: [Float], postNorm: [Float], mixer: Mixer, ffn: FFNWeights }

    /// Loads every tensor the forward pass reads, dequantized to float32. `tensor` returns the
    /// values of a GGUF-named tensor (`blk.0.attn_qkv.weight`) with their element count checked.
    public init(dimensions d: ModelDimensions, tensor: (String, Int) throws -> [Float]) throws {
        self.dimensions = d
        let h = d.hidden
        tokenEmbedding = try tensor("token_embd.weight", d.vocab * h)
        outputNorm = try tensor("output_norm.weight", h)
        output = d.tiedEmbeddings ? tokenEmbedding : try tensor("output.weight", d.vocab * h)
        var layers: [Layer] = []
        for (i, kind) in d.layerKinds.enumerated() {
            func w(_ name: String, _ count: Int) throws -> [Float] { try tensor("blk.\(i).\(name)", count) }
            let mixer: Mixer
            switch kind {
            case .linearAttention:
                let nv = d.linearValueHeads
                mixer = .deltaNet(DeltaNetWeights(
                    qkv: try w("attn_qkv.weight", d.convChannels * h), gate: try w("attn_gate.weight", d.linearValueDim * nv * h),
                    beta: try w("ssm_beta.weight", nv * h), alpha: try w("ssm_alpha.weight", nv * h),
                    conv: try w("ssm_conv1d.weight", d.convChannels * d.convKernel), dtBias: try w("ssm_dt.bias", nv),
                    a: try w("ssm_a", nv), norm: try w("ssm_norm.weight", d.linearValueDim),
                    out: try w("ssm_out.weight", h * nv * d.linearValueDim)))
            case .fullAttention:
                let hd = d.headDim
                mixer = .attention(AttentionWeights(
                    q: try w("attn_q.weight", 2 * d.heads * hd * h), k: try w("attn_k.weight", d.kvHeads * hd * h),
                    v: try w("attn_v.weight", d.kvHeads * hd * h), o: try w("attn_output.weight", h * d.heads * hd),
                    qNorm: try w("attn_q_norm.weight", hd), kNorm: try w("attn_k_norm.weight", hd)))
            }
            let ffn: FFNWeights
            switch d.ffn {
            case .dense(let inter):
                ffn = .dense(gate: try w("ffn_gate.weight", inter * h), up: try w("ffn_up.weight", inter * h),
                             down: try w("ffn_down.weight", h * inter))
            case .moe(let e, _, let ie, let shared):
                ffn = .moe(router: try w("ffn_gate_inp.weight", e * h), gate: try w("ffn_gate_exps.weight", e * ie * h),
                           up: try w("ffn_up_exps.weight", e * ie * h), down: try w("ffn_down_exps.weight", e * h * ie),
                           sharedGate: try w("ffn_gate_shexp.weight", shared * h), sharedUp: try w("ffn_up_shexp.weight", shared * h),
                           sharedDown: try w("ffn_down_shexp.weight", h * shared), sharedRouter: try w("ffn_gate_inp_shexp.weight", h))
            }
            layers.append(Layer(attnNorm: try w("attn_norm.weight", h), postNorm: try w("post_attention_norm.weight", h),
                                mixer: mixer, ffn: ffn))
        }
        self.layers = layers
    }

    public func makeState() -> State {
        let d = dimensions
        let linear = d.layerKinds.filter { $0 == .linearAttention }.count
        let full = d.layerKinds.count - linear
        return State(keys: Array(repeating: [], count: full), values: Array(repeating: [], count: full),
                     convRows: Array(repeating: Array(repeating: [Float](repeating: 0, count: d.convChannels),
                                                      count: d.convKernel - 1), count: linear),
                     recurrent: Array(repeating: [Float](repeating: 0, count: d.linearValueHeads * d.linearKeyDim * d.linearValueDim),
                                      count: linear))
    }

    /// Runs one token and returns its logits. `hidden`, if given, receives the residual stream:
    /// index 0 the embedding, 1…L each layer's output, L+1 the final-norm output (the layout of the
    /// kit's `hidden_len64.npy`).
    public func forward(token: Int32, state: inout State, hidden: ((Int, [Float]) -> Void)? = nil) -> [Float] {
        let d = dimensions
        let h = d.hidden
        var x = Array(tokenEmbedding[Int(token) * h..<(Int(token) + 1) * h])
        hidden?(0, x)
        var linearIndex = 0, fullIndex = 0
        for (i, layer) in layers.enumerated() {
            let normed = ReferenceMath.rmsNorm(x, weight: layer.attnNorm, eps: d.rmsEps)
            let mixed: [Float]
            switch layer.mixer {
            case .deltaNet(let w):
                mixed = deltaNet(normed, w, layer: linearIndex, state: &state)
                linearIndex += 1
            case .attention(let w):
                mixed = attention(normed, w, layer: fullIndex, state: &state)
                fullIndex += 1
            }
            for j in 0..<h { x[j] += mixed[j] }
            let normed2 = ReferenceMath.rmsNorm(x, weight: layer.postNorm, eps: d.rmsEps)
            let f = feedForward(normed2, layer.ffn)
            for j in 0..<h { x[j] += f[j] }
            hidden?(i + 1, x)
        }
        let final = ReferenceMath.rmsNorm(x, weight: outputNorm, eps: d.rmsEps)
        hidden?(layers.count + 1, final)
        state.advance()
        return ReferenceMath.matVec(output, rows: d.vocab, cols: h, final)
    }

    private func deltaNet(_ x: [Float], _ w: DeltaNetWeights, layer: Int, state: inout State) -> [Float] {
        let d = dimensions
        let h = d.hidden, nk = d.linearKeyHeads, nv = d.linearValueHeads
        let dk = d.linearKeyDim, dv = d.linearValueDim, channels = d.convChannels, kernel = d.convKernel
        let qkv = ReferenceMath.matVec(w.qkv, rows: channels, cols: h, x)
        let z = ReferenceMath.matVec(w.gate, rows: nv * dv, cols: h, x)
        let b = ReferenceMath.matVec(w.beta, rows: nv, cols: h, x)
        let a = ReferenceMath.matVec(w.alpha, rows: nv, cols: h, x)

        // Depthwise causal conv: tap kernel−1 multiplies the current token; then SiLU.
        var conv = [Float](repeating: 0, count: channels)
        let rows = state.convRows[layer]
        for c in 0..<channels {
            var acc = w.conv[c * kernel + kernel - 1] * qkv[c]
            for j in 0..<(kernel - 1) { acc += w.conv[c * kernel + j] * rows[j][c] }
            conv[c] = ReferenceMath.silu(acc)
        }
        state.convRows[layer] = Array(rows.dropFirst()) + [qkv]

        var q = conv[0..<nk * dk], k = conv[nk * dk..<2 * nk * dk]
        let v = conv[2 * nk * dk..<channels]
        let qScale = 1 / Float(dk).squareRoot()
        for head in 0..<nk {
            ReferenceMath.l2Normalize(&q[(q.startIndex + head * dk)..<(q.startIndex + (head + 1) * dk)])
            ReferenceMath.l2Normalize(&k[(k.startIndex + head * dk)..<(k.startIndex + (head + 1) * dk)])
        }
        var o = [Float](repeating: 0, count: nv * dv)
        state.recurrent[layer].withUnsafeMutableBufferPointer { s in
            for vh in 0..<nv {
                let kh = vh % nk            // GGUF stores value heads tiled over key heads
                let g = ReferenceMath.softplus(a[vh] + w.dtBias[vh]) * w.a[vh]
                let beta = ReferenceMath.sigmoid(b[vh])
                let decay = expf(g)
                let base = vh * dk * dv
                let kOff = k.startIndex + kh * dk, qOff = q.startIndex + kh * dk, vOff = v.startIndex + vh * dv
                for i in 0..<dk * dv { s[base + i] *= decay }
                var delta = [Float](repeating: 0, count: dv)
                for j in 0..<dv {
                    var kv: Float = 0
                    for i in 0..<dk { kv += s[base + i * dv + j] * k[kOff + i] }
                    delta[j] = (v[vOff + j] - kv) * beta
                }
                for i in 0..<dk {
                    let ki = k[kOff + i]
                    for j in 0..<dv { s[base + i * dv + j] += ki * delta[j] }
                }
                for j in 0..<dv {
                    var acc: Float = 0
                    for i in 0..<dk { acc += s[base + i * dv + j] * q[qOff + i] * qScale }
                    o[vh * dv + j] = acc
                }
            }
        }
        // Gated RMSNorm per value head: plain weight, SiLU(z) gate.
        var gated = [Float](repeating: 0, count: nv * dv)
        for vh in 0..<nv {
            let normed = ReferenceMath.rmsNorm(o[vh * dv..<(vh + 1) * dv], weight: w.norm, eps: d.rmsEps)
            for j in 0..<dv { gated[vh * dv + j] = normed[j] * ReferenceMath.silu(z[vh * dv + j]) }
        }
        return ReferenceMath.matVec(w.out, rows: h, cols: nv * dv, gated)
    }

    private func attention(_ x: [Float], _ w: AttentionWeights, layer: Int, state: inout State) -> [Float] {
        let d = dimensions
        let h = d.hidden, nh = d.heads, nkv = d.kvHeads, hd = d.headDim
        let position = state.position
        let qg = ReferenceMath.matVec(w.q, rows: 2 * nh * hd, cols: h, x)
        var k = ReferenceMath.matVec(w.k, rows: nkv * hd, cols: h, x)
        let v = ReferenceMath.matVec(w.v, rows: nkv * hd, cols: h, x)
        var q = [Float](repeating: 0, count: nh * hd)
        for head in 0..<nh {
            // q_proj rows are per head [query | gate].
            var qh = ReferenceMath.rmsNorm(qg[head * 2 * hd..<head * 2 * hd + hd], weight: w.qNorm, eps: d.rmsEps)[...]
            ReferenceMath.rope(&qh, position: position, rotaryDim: d.rotaryDim, theta: d.ropeTheta)
            q.replaceSubrange(head * hd..<(head + 1) * hd, with: qh)
        }
        for head in 0..<nkv {
            var kh = ReferenceMath.rmsNorm(k[head * hd..<(head + 1) * hd], weight: w.kNorm, eps: d.rmsEps)[...]
            ReferenceMath.rope(&kh, position: position, rotaryDim: d.rotaryDim, theta: d.ropeTheta)
            k.replaceSubrange(head * hd..<(head + 1) * hd, with: kh)
        }
        state.keys[layer].append(k)
        state.values[layer].append(v)
        let keys = state.keys[layer], values = state.values[layer]
        let scale = 1 / Float(hd).squareRoot()
        var o = [Float](repeating: 0, count: nh * hd)
        for head in 0..<nh {
            let kvh = head / (nh / nkv)
            var scores = [Float](repeating: 0, count: keys.count)
            for t in 0..<keys.count {
                var dot: Float = 0
                for j in 0..<hd { dot += q[head * hd + j] * keys[t][kvh * hd + j] }
                scores[t] = dot * scale
            }
            let p = ReferenceMath.softmax(scores)
            for t in 0..<keys.count {
                for j in 0..<hd { o[head * hd + j] += p[t] * values[t][kvh * hd + j] }
            }
            for j in 0..<hd { o[head * hd + j] *= ReferenceMath.sigmoid(qg[head * 2 * hd + hd + j]) }
        }
        return ReferenceMath.matVec(w.o, rows: h, cols: nh * hd, o)
    }

    private func feedForward(_ x: [Float], _ w: FFNWeights) -> [Float] {
        let h = dimensions.hidden
        func swiGLU(gate: ArraySlice<Float>, up: ArraySlice<Float>, down: ArraySlice<Float>, width: Int) -> [Float] {
            let g = ReferenceMath.matVec(Array(gate), rows: width, cols: h, x)
            let u = ReferenceMath.matVec(Array(up), rows: width, cols: h, x)
            let act = zip(g, u).map { ReferenceMath.silu($0) * $1 }
            return ReferenceMath.matVec(Array(down), rows: h, cols: width, act)
        }
        switch w {
        case .dense(let gate, let up, let down):
            return swiGLU(gate: gate[...], up: up[...], down: down[...], width: gate.count / h)
        case .moe(let router, let gate, let up, let down, let sGate, let sUp, let sDown, let sRouter):
            guard case .moe(let experts, let topK, let ie, let shared) = dimensions.ffn else { fatalError("unreachable") }
            let p = ReferenceMath.softmax(ReferenceMath.matVec(router, rows: experts, cols: h, x))
            let chosen = p.indices.sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }.prefix(topK)
            let total = chosen.reduce(Float(0)) { $0 + p[$1] }
            var out = [Float](repeating: 0, count: h)
            for e in chosen {
                let y = swiGLU(gate: gate[e * ie * h..<(e + 1) * ie * h], up: up[e * ie * h..<(e + 1) * ie * h],
                               down: down[e * h * ie..<(e + 1) * h * ie], width: ie)
                let weight = p[e] / total
                for j in 0..<h { out[j] += weight * y[j] }
            }
            let sharedY = swiGLU(gate: sGate[...], up: sUp[...], down: sDown[...], width: shared)
            var dot: Float = 0
            for j in 0..<h { dot += sRouter[j] * x[j] }
            let sharedWeight = ReferenceMath.sigmoid(dot)
            for j in 0..<h { out[j] += sharedWeight * sharedY[j] }
            return out
        }
    }
}
