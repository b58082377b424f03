// swift-tools-version:6.1
import PackageDescription

// Module map (arrows point one way):
//
//   CQueueGraph (C: futex event) ← QueueGraphCore (no threads) ← QueueGraphRuntime (threads)
//                                               ↖ QueueGraphTestKit ↙
//   qgraph-demo → QueueGraphRuntime
let package = Package(
    name: "QueueGraph",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "QueueGraph", targets: ["QueueGraphCore", "QueueGraphRuntime"]),
        .library(name: "QueueGraphTestKit", targets: ["QueueGraphTestKit"]),
        .executable(name: "qgraph-demo", targets: ["qgraph-demo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
    ],
    targets: [
        .target(name: "CQueueGraph"),
        .target(
            name: "QueueGraphCore",
            dependencies: [
                "CQueueGraph",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        .target(name: "QueueGraphRuntime", dependencies: ["QueueGraphCore", "CQueueGraph"]),
        .target(name: "QueueGraphTestKit", dependencies: ["QueueGraphCore"]),
        .executableTarget(name: "qgraph-demo", dependencies: ["QueueGraphCore", "QueueGraphRuntime"]),
        .testTarget(name: "QueueGraphCoreTests", dependencies: ["QueueGraphCore", "QueueGraphTestKit"]),
        .testTarget(
            name: "QueueGraphRuntimeTests",
            dependencies: ["QueueGraphCore", "QueueGraphRuntime", "QueueGraphTestKit"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
