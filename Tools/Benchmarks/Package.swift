// swift-tools-version:6.1
// Benchmarks, kept out of the library's dependencies. Run through `Tools/bench NAME`.
import PackageDescription

let package = Package(
    name: "QueueGraphBenchmarks",
    platforms: [.macOS(.v15)],
    traits: [
        .trait(name: "LTTng", description: "Build QueueGraph with its LTTng tracepoints"),
        .default(enabledTraits: ["LTTng"]),
    ],
    dependencies: [
        .package(name: "QueueGraph", path: "../..", traits: [.trait(name: "LTTng", condition: .when(traits: ["LTTng"]))]),
        .package(url: "https://github.com/ordo-one/malloc-interposer", from: "1.6.1"),
    ],
    targets: [
        .systemLibrary(name: "CGLBench"),   // raw GL for the bare loop `qgbench gl` compares with
        .executableTarget(
            name: "qgbench",
            dependencies: [
                "CGLBench",
                .product(name: "QueueGraph", package: "QueueGraph"),
                .product(name: "QueueGraphFile", package: "QueueGraph"),
                .product(name: "QueueGraphRender", package: "QueueGraph"),
                .product(name: "QueueGraphGL", package: "QueueGraph"),
                .product(name: "QueueGraphMedia", package: "QueueGraph"),
                .product(name: "QueueGraphControl", package: "QueueGraph"),
                .product(name: "QueueGraphRemote", package: "QueueGraph"),
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
