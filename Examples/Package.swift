// swift-tools-version: 6.0
import PackageDescription

// A separate package using QwenVK the way an application would: by dependency, here on the checkout above.
let package = Package(
    name: "QwenVKExamples",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "QwenVK", path: ".."),
    ],
    targets: [
        .executableTarget(name: "Generate", dependencies: [.product(name: "QwenVK", package: "QwenVK")]),
    ],
    swiftLanguageModes: [.v5]
)
