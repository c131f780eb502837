import ModelFiles
import QwenShaders
import VulkanRuntime

/// The compiled variants of `Shaders/matvec.comp`, `matmul.comp` and `get_rows.comp` for one weight type.
struct MatMulShaderSet {
    /// Mat-vec reducing with subgroupAdd (needs subgroup arithmetic).
    let matvecSubgroup: ShaderSource
    /// Mat-vec reducing through shared memory only (any device).
    let matvecShared: ShaderSource
    let matmul: ShaderSource
    let getRows: ShaderSource

    init?(_ type: GGMLType) {
        switch type {
        case .f32: self.init(Shaders.matvec_f32, Shaders.matvec_f32_shmem, Shaders.matmul_f32, Shaders.get_rows_f32)
        case .f16: self.init(Shaders.matvec_f16, Shaders.matvec_f16_shmem, Shaders.matmul_f16, Shaders.get_rows_f16)
        case .bf16:
            self.init(Shaders.matvec_bf16, Shaders.matvec_bf16_shmem, Shaders.matmul_bf16, Shaders.get_rows_bf16)
        case .q4_0:
            self.init(Shaders.matvec_q4_0, Shaders.matvec_q4_0_shmem, Shaders.matmul_q4_0, Shaders.get_rows_q4_0)
        case .q4_1:
            self.init(Shaders.matvec_q4_1, Shaders.matvec_q4_1_shmem, Shaders.matmul_q4_1, Shaders.get_rows_q4_1)
        case .q5_0:
            self.init(Shaders.matvec_q5_0, Shaders.matvec_q5_0_shmem, Shaders.matmul_q5_0, Shaders.get_rows_q5_0)
        case .q5_1:
            self.init(Shaders.matvec_q5_1, Shaders.matvec_q5_1_shmem, Shaders.matmul_q5_1, Shaders.get_rows_q5_1)
        case .q8_0:
            self.init(Shaders.matvec_q8_0, Shaders.matvec_q8_0_shmem, Shaders.matmul_q8_0, Shaders.get_rows_q8_0)
        case .q2_K:
            self.init(Shaders.matvec_q2_K, Shaders.matvec_q2_K_shmem, Shaders.matmul_q2_K, Shaders.get_rows_q2_K)
        case .q3_K:
            self.init(Shaders.matvec_q3_K, Shaders.matvec_q3_K_shmem, Shaders.matmul_q3_K, Shaders.get_rows_q3_K)
        case .q4_K:
            self.init(Shaders.matvec_q4_K, Shaders.matvec_q4_K_shmem, Shaders.matmul_q4_K, Shaders.get_rows_q4_K)
        case .q5_K:
            self.init(Shaders.matvec_q5_K, Shaders.matvec_q5_K_shmem, Shaders.matmul_q5_K, Shaders.get_rows_q5_K)
        case .q6_K:
            self.init(Shaders.matvec_q6_K, Shaders.matvec_q6_K_shmem, Shaders.matmul_q6_K, Shaders.get_rows_q6_K)
        case .iq4_nl:
            self.init(Shaders.matvec_iq4_nl, Shaders.matvec_iq4_nl_shmem, Shaders.matmul_iq4_nl,
                      Shaders.get_rows_iq4_nl)
        case .iq4_xs:
            self.init(Shaders.matvec_iq4_xs, Shaders.matvec_iq4_xs_shmem, Shaders.matmul_iq4_xs,
                      Shaders.get_rows_iq4_xs)
        case .mxfp4:
            self.init(Shaders.matvec_mxfp4, Shaders.matvec_mxfp4_shmem, Shaders.matmul_mxfp4, Shaders.get_rows_mxfp4)
        default: return nil
        }
    }

    private init(_ matvecSubgroup: ShaderSource, _ matvecShared: ShaderSource, _ matmul: ShaderSource,
                 _ getRows: ShaderSource) {
        self.matvecSubgroup = matvecSubgroup
        self.matvecShared = matvecShared
        self.matmul = matmul
        self.getRows = getRows
    }
}
