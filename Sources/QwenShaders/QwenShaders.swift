import VulkanRuntime

/// The compiled shader variants of every kernel family. `Tools/build-shaders.py` writes one extension per
/// `Shaders/manifest/<family>.json` into `Generated/`; each member is a `ShaderSource`.
public enum Shaders {}
