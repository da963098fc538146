// swift-tools-version:6.0
import PackageDescription

// Numerical modules are always optimised: a debug build of the engine would be
// tens of times slower and make the fixture tests crawl.
let optimised: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

// Linux only: the code imports Glibc and links system libraries through pkg-config. SwiftPM's `platforms`
// names Apple platforms only, so none is declared.
let package = Package(
    name: "Darkroom",
    products: [
        .executable(name: "darkroomd", targets: ["darkroomd"]),
        .executable(name: "darkroom", targets: ["darkroom"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        // Observability: metrics API, its Prometheus backend, and the small HTTP listener that serves /metrics,
        // /healthz and /readyz (FlyingFox: async/await over plain sockets, no SwiftNIO; docs/operations.md says why).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        // What every module shares: the error shape, the lock, the hash.
        .target(name: "Core"),

        // C libraries, found through pkg-config.
        .systemLibrary(name: "CRabbitMQ", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // oneDNN (bf16 matmul, convolutions); Debian ships no pkg-config file for it: linked by name.
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // Thin safe Swift layers over them.
        .target(name: "AMQP", dependencies: ["Core", "CRabbitMQ"]),
        .target(name: "Imaging", dependencies: ["Core", "CPNG"]),
        .target(name: "Systemd", dependencies: ["CSystemd", "Core", .product(name: "Logging", package: "swift-log")]),

        // The engine.
        .target(name: "Tensor", dependencies: ["CDNNL", "COpenBLAS", "Core"], swiftSettings: optimised),
        .target(name: "Weights", dependencies: ["Core", "Tensor"], swiftSettings: optimised),
        .target(name: "Diffusion", dependencies: ["Core", "Tensor", "Text", "Weights"], swiftSettings: optimised),
        .target(name: "Text", dependencies: ["Core", "Tensor", "Weights"], swiftSettings: optimised),

        // The wire contract, configuration, and the worker.
        .target(name: "Jobs", dependencies: ["Core"]),
        .target(name: "Config", dependencies: ["Core", "TOMLKit"]),
        // Delivery beyond the reply queue: signed webhooks, results in a folder or an S3 bucket (SigV4), over
        // FoundationNetworking's URLSession; SHA-256/HMAC from libcrypto.
        .target(name: "Delivery", dependencies: ["CCrypto", "Config", "Core", "Jobs"]),
        // The autoscaler's decisions (pure; `darkroom autoscale` applies them through Systemd).
        .target(name: "Autoscale", dependencies: ["Config", "Core"]),
        .target(name: "Worker", dependencies: [
            "AMQP", "Config", "Core", "Delivery", "Diffusion", "Imaging", "Jobs", "Systemd", "Tensor", "Text", "Weights",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "FlyingFox", package: "FlyingFox"),
            .product(name: "FlyingSocks", package: "FlyingFox"),
        ]),

        .executableTarget(name: "darkroomd", dependencies: [
            "Config", "Systemd", "Worker",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "darkroom", dependencies: [
            "AMQP", "Autoscale", "Config", "Core", "Diffusion", "Jobs", "Systemd", "Tensor", "Text", "Weights", "Worker",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // What several test targets share.
        .target(name: "TestSupport", dependencies: ["Jobs", "Systemd"], path: "Tests/TestSupport", exclude: ["pika_publish.py", "webhook_receiver.py", "s3_server.py"]),
        // Logs through Systemd in a process of its own, for SystemdTests' journal tests.
        .executableTarget(name: "systemd-probe", dependencies: [
            "Systemd", .product(name: "Logging", package: "swift-log"),
        ], path: "Tests/SystemdProbe"),

        .testTarget(name: "AMQPTests", dependencies: ["AMQP", "Core", "TestSupport"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"]),
        .testTarget(name: "SystemdTests", dependencies: [
            "Systemd", "TestSupport", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "TensorTests", dependencies: ["Core", "Tensor"], swiftSettings: optimised),
        .testTarget(name: "DiffusionTests", dependencies: ["Diffusion", "Tensor", "Text", "Weights"],
                    resources: [.copy("Fixtures")], swiftSettings: optimised),
        .testTarget(name: "TextTests", dependencies: ["Core", "Tensor", "Text", "Weights"],
                    resources: [.copy("Fixtures")], swiftSettings: optimised),
        .testTarget(name: "JobsTests", dependencies: ["Jobs", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ConfigTests", dependencies: ["Config"]),
        .testTarget(name: "DeliveryTests", dependencies: ["Config", "Delivery", "Jobs", "TestSupport"]),
        .testTarget(name: "AutoscaleTests", dependencies: ["Autoscale", "Config"]),
        .testTarget(name: "WorkerTests", dependencies: [
            "AMQP", "Autoscale", "Config", "Core", "Delivery", "Diffusion", "Imaging", "Jobs", "Systemd", "TestSupport", "Worker",
            .product(name: "Logging", package: "swift-log"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
