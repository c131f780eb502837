/// Every benchmark family, in the order `kernel-bench` runs them. Add your family's list here.
let allCases: [KernelBenchCase] = [
    CopyCases.all,
    MatMulCases.all,
    DeltaNetCases.all,
    AttentionCases.all,
    NormCases.all,
    MoECases.all,
    SamplingCases.all,
].flatMap { $0 }
