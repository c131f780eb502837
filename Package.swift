// swift-tools-version: 6.0
import PackageDescription

// Layers, left to right; a module imports only modules to its left:
// CVulkan → VulkanRuntime → QwenShaders → ModelFiles → QwenTokenizer → QwenKernels → QwenEngine → QwenVK → qwenvk
let package = Package(
    name: "QwenVK",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "QwenVK", targets: ["QwenVK"]),
        .executable(name: "qwenvk", targets: ["qwenvk"]),
        .executable(name: "kernel-bench", targets: ["KernelBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CVulkan", pkgConfig: "vulkan", providers: [.apt(["libvulkan-dev"])]),
        .target(name: "VulkanRuntime", dependencies: ["CVulkan"]),
        .target(name: "QwenShaders", dependencies: ["VulkanRuntime"]),
        .target(name: "ModelFiles"),
        .target(name: "QwenTokenizer", dependencies: ["ModelFiles"]),
        .target(name: "QwenKernels", dependencies: ["VulkanRuntime", "QwenShaders", "ModelFiles"]),
        .target(name: "QwenEngine", dependencies: ["QwenKernels", "ModelFiles", "QwenTokenizer"]),
        .target(name: "QwenVK", dependencies: ["QwenEngine"]),
        .executableTarget(name: "qwenvk", dependencies: [
            "QwenVK", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "KernelBench", dependencies: ["QwenKernels"], path: "Benchmarks/KernelBench"),
        .executableTarget(name: "TokenizerBench", dependencies: ["QwenTokenizer"], path: "Benchmarks/tokenizer",
                          exclude: ["run.py", "README.md"]),

        // Shared by the test targets: fixture paths, .npy reading, seeded random data, error norms.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "VulkanRuntimeTests", dependencies: ["VulkanRuntime", "QwenShaders", "TestSupport"]),
        .testTarget(name: "ModelFilesTests", dependencies: ["ModelFiles", "TestSupport"]),
        .testTarget(name: "QwenTokenizerTests", dependencies: ["QwenTokenizer", "TestSupport"]),
        .testTarget(name: "QwenKernelsTests", dependencies: ["QwenKernels", "TestSupport"]),
        .testTarget(name: "QwenEngineTests", dependencies: ["QwenEngine", "TestSupport"]),
        .testTarget(name: "QwenVKTests", dependencies: ["QwenVK", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
