// swift-tools-version:6.1
import PackageDescription

// Module map (arrows point one way):
//
//   CQueueGraph (C: futex event, clock) ← QueueGraphCore (no threads, no processes) ← QueueGraphRuntime (threads, child processes)
//   CQueueGraphTrace (C: LTTng-UST provider "qgraph") ↗        ↑   ↖ QueueGraphTestKit
//                                  QueueGraphFile (graph files, launch lines; Yams) → QueueGraphCore only
//   QueueGraphRender (BufferProvider, render engine, media nodes, their registry entries) → QueueGraphRuntime (server threads), CLibPNG
//   QueueGraphGL (GL owner queue, render command mailbox, GL processors and their entries) → QueueGraphRender, CGLFW, CEGL
//   QueueGraphMedia (FFmpeg's libraries: mediasrc, videoconvert, audioresample, mediasink, tonesrc) → QueueGraphRender, CFFmpeg
//   QueueGraphControl (control endpoint and client, OpenMetrics; swift-prometheus) → QueueGraphRuntime
//   QueueGraphWeb (the live page; Hummingbird) → QueueGraphControl
//   QueueGraphRemote (remote hosts: worker daemon, links and compound servers over UCX) → QueueGraphRender, CUCX
//   qgraph (CLI; ArgumentParser) composes them: the core's, render's and GL's processors in one registry
let package = Package(
    name: "QueueGraph",
    platforms: [.macOS(.v15)],
    products: [
        // Each wing its own product: an application that only runs graphs, or
        // only reads graph files, links neither GLFW/EGL nor libpng.
        .library(name: "QueueGraph", targets: ["QueueGraphCore", "QueueGraphRuntime"]),
        .library(name: "QueueGraphFile", targets: ["QueueGraphFile"]),
        .library(name: "QueueGraphRender", targets: ["QueueGraphRender"]),
        .library(name: "QueueGraphGL", targets: ["QueueGraphGL"]),
        .library(name: "QueueGraphMedia", targets: ["QueueGraphMedia"]),
        .library(name: "QueueGraphControl", targets: ["QueueGraphControl"]),
        .library(name: "QueueGraphWeb", targets: ["QueueGraphWeb"]),
        .library(name: "QueueGraphRemote", targets: ["QueueGraphRemote"]),
        .library(name: "QueueGraphTestKit", targets: ["QueueGraphTestKit"]),
        .executable(name: "qgraph", targets: ["qgraph"]),
    ],
    traits: [
        .trait(name: "LTTng", description: "Emit LTTng-UST tracepoints (provider 'qgraph'); needs liblttng-ust-dev"),
        .default(enabledTraits: ["LTTng"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
    ],
    targets: [
        .target(name: "CQueueGraph"),
        .target(
            name: "CQueueGraphTrace",
            cSettings: [.headerSearchPath("."), .define("QG_HAVE_LTTNG", to: "1", .when(traits: ["LTTng"]))],
            linkerSettings: [.linkedLibrary("lttng-ust", .when(traits: ["LTTng"]))]
        ),
        .target(
            name: "QueueGraphCore",
            dependencies: [
                "CQueueGraph", "CQueueGraphTrace",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        .target(name: "QueueGraphRuntime", dependencies: ["QueueGraphCore", "CQueueGraph"]),
        .systemLibrary(name: "CLibPNG"),   // libpng-dev (Tools/setup installs it)
        .target(
            name: "QueueGraphRender",
            dependencies: [
                "QueueGraphCore", "QueueGraphRuntime", "CLibPNG",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),   // compound servers are threads
        .systemLibrary(name: "CGLFW"),   // libglfw3-dev, libgl-dev
        .systemLibrary(name: "CEGL"),    // libegl-dev (Mesa's surfaceless platform when there is no X server)
        .target(name: "QueueGraphGL", dependencies: ["QueueGraphCore", "QueueGraphRender", "CGLFW", "CEGL", "CLibPNG", "CQueueGraphTrace"]),
        .target(
            name: "CFFmpeg",   // libavformat-dev libavcodec-dev libswscale-dev libswresample-dev (Tools/setup)
            linkerSettings: ["avformat", "avcodec", "avutil", "swscale", "swresample"].map { .linkedLibrary($0) }
        ),
        .target(name: "QueueGraphMedia", dependencies: ["QueueGraphCore", "QueueGraphRender", "CFFmpeg"]),
        .target(name: "QueueGraphTestKit", dependencies: ["QueueGraphCore"]),
        .target(
            name: "QueueGraphControl",   // the control endpoint, its protocol and client; OpenMetrics through swift-prometheus
            dependencies: ["QueueGraphCore", "QueueGraphRuntime", .product(name: "Prometheus", package: "swift-prometheus")]
        ),
        .target(
            name: "QueueGraphWeb",   // the live page (qgraph run --serve): Hummingbird, Graphviz's dot for the picture
            dependencies: [
                "QueueGraphCore", "QueueGraphRuntime", "QueueGraphControl",
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "CUCX",   // libucx-dev (UCP) and libssl-dev (HMAC), Tools/setup
            linkerSettings: ["ucp", "uct", "ucs", "crypto"].map { .linkedLibrary($0) }
        ),
        .target(name: "QueueGraphRemote", dependencies: ["QueueGraphCore", "QueueGraphRuntime", "QueueGraphRender", "CUCX",
                                                         .product(name: "DequeModule", package: "swift-collections")]),   // render: compound servers on hosts
        .target(name: "QueueGraphFile", dependencies: ["QueueGraphCore", .product(name: "Yams", package: "Yams")]),
        .executableTarget(
            name: "qgraph",
            dependencies: [
                "QueueGraphCore", "QueueGraphRuntime", "QueueGraphFile", "QueueGraphGL", "QueueGraphRender", "QueueGraphMedia",
                "QueueGraphControl", "QueueGraphWeb", "QueueGraphRemote", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "QueueGraphCoreTests", dependencies: ["QueueGraphCore", "QueueGraphTestKit"]),
        .testTarget(
            name: "QueueGraphRuntimeTests",
            dependencies: ["QueueGraphCore", "QueueGraphRuntime", "QueueGraphTestKit"]
        ),
        .testTarget(
            name: "QueueGraphRenderTests",
            dependencies: ["QueueGraphCore", "QueueGraphRuntime", "QueueGraphRender", "QueueGraphTestKit", "CLibPNG"]
        ),
        .testTarget(
            name: "QueueGraphGLTests",
            dependencies: ["QueueGraphCore", "QueueGraphRuntime", "QueueGraphRender", "QueueGraphGL", "QueueGraphTestKit"]
        ),
        .testTarget(
            name: "QueueGraphMediaTests",
            dependencies: ["QueueGraphCore", "QueueGraphRuntime", "QueueGraphRender", "QueueGraphMedia", "QueueGraphFile", "QueueGraphTestKit"]
        ),
        .testTarget(name: "QueueGraphControlTests", dependencies: ["QueueGraphCore", "QueueGraphRuntime", "QueueGraphControl", "QueueGraphTestKit"]),
        .testTarget(
            name: "QueueGraphFileTests",
            dependencies: ["QueueGraphCore", "QueueGraphRuntime", "QueueGraphFile", "QueueGraphRender", "QueueGraphGL", "QueueGraphMedia",
                           "QueueGraphRemote", "qgraph"],
            exclude: ["Malformed", "Traced"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
