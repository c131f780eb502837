// Scratch layouts of the Gated DeltaNet kernels (in floats). DeltaNetKernels.swift sizes the buffers with the same
// formulas; keep the two in step.
#ifndef QWENVK_DELTANET_LAYOUT_GLSL
#define QWENVK_DELTANET_LAYOUT_GLSL

// Per-token preparation (deltanet_prep.comp), for T tokens of one segment:
//   q̂ [T, NK, D] | k̂ [T, NK, D] | κ = k̂·q̂ [T, NK] | β [T, NV] | g [T, NV]
uint prepQOffset(uint T, uint NK, uint D) { return 0u; }
uint prepKOffset(uint T, uint NK, uint D) { return T * NK * D; }
uint prepKappaOffset(uint T, uint NK, uint D) { return 2u * T * NK * D; }
uint prepBetaOffset(uint T, uint NK, uint D) { return 2u * T * NK * D + T * NK; }
uint prepGOffset(uint T, uint NK, uint NV, uint D) { return 2u * T * NK * D + T * NK + T * NV; }

// Chunked form (deltanet_chunk_prep.comp → deltanet_chunk_scan.comp), one block per (chunk n, value head h):
//   W = L⁻¹ diag(e^γ) Kβ [64, D] | Q' = diag(e^γ) Q − Aqk W [64, D] | U = L⁻¹ Vβ [64, D] | O0 = Aqk U [64, D] | γ [64]
const uint CHUNK = 64u;
uint chunkBlockFloats(uint D) { return 4u * CHUNK * D + CHUNK; }
uint chunkBlockOffset(uint n, uint h, uint NV, uint D) { return (n * NV + h) * chunkBlockFloats(D); }
uint chunkWOffset(uint D) { return 0u; }
uint chunkQOffset(uint D) { return CHUNK * D; }
uint chunkUOffset(uint D) { return 2u * CHUNK * D; }
uint chunkO0Offset(uint D) { return 3u * CHUNK * D; }
uint chunkGammaOffset(uint D) { return 4u * CHUNK * D; }

#endif
