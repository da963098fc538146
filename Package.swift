// swift-tools-version:6.0
import PackageDescription

// Numerical modules are always optimised: a debug build of the engine would be
// tens of times slower and make the fixture tests crawl.
let optimised: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "Darkroom",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "darkroomd", targets: ["darkroomd"]),
        .executable(name: "darkroom", targets: ["darkroom"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // C libraries, found through pkg-config.
        .systemLibrary(name: "CRabbitMQ", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),

        // Thin safe Swift layers over them.
        .target(name: "AMQP", dependencies: ["CRabbitMQ"]),
        .target(name: "Imaging", dependencies: ["CPNG"]),
        .target(name: "Systemd", dependencies: ["CSystemd", "Config", .product(name: "Logging", package: "swift-log")]),

        // The engine.
        .target(name: "Tensor", dependencies: ["COpenBLAS"], swiftSettings: optimised),
        .target(name: "Diffusion", dependencies: ["Tensor"], swiftSettings: optimised),

        // The wire contract, configuration, and the worker.
        .target(name: "Jobs", dependencies: ["Imaging"]),
        .target(name: "Config", dependencies: ["TOMLKit"]),
        .target(name: "Worker", dependencies: [
            "AMQP", "Jobs", "Config", "Diffusion", "Imaging", "Systemd",
            .product(name: "Logging", package: "swift-log"),
        ]),

        .executableTarget(name: "darkroomd", dependencies: [
            "Worker", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "darkroom", dependencies: [
            "Worker", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "AMQPTests", dependencies: ["AMQP"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"]),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"], swiftSettings: optimised),
        .testTarget(name: "DiffusionTests", dependencies: ["Diffusion", "Tensor", "Imaging"],
                    resources: [.copy("Fixtures")], swiftSettings: optimised),
        .testTarget(name: "JobsTests", dependencies: ["Jobs"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config"]),
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "AMQP", "Jobs"]),
    ],
    swiftLanguageModes: [.v6]
)
