import Foundation
import QueueGraphCore
import QueueGraphFile
import QueueGraphMedia
import QueueGraphRender
import QueueGraphRuntime
import QueueGraphTestKit
import Testing

let registry = {
    var registry = ProcessorRegistry.builtIn
    registry.registerRender()
    registry.registerMedia()
    return registry
}()

/// Runs a graph file's text to its end; the statistics and the graph (stopped).
func run(_ yaml: String) throws -> (statistics: GraphStatistics, graph: QueueGraph) {
    let graph = try GraphFile(yaml: yaml, file: "media.yaml", registry: registry).config.createQueueGraph()
    try graph.start()
    #expect(graph.waitUntilFinished(timeoutNanoseconds: 120_000_000_000))
    let statistics = graph.stop()
    #expect(Ledger.problems(statistics) == [])
    return (statistics, graph)
}

/// What ffprobe finds in each stream: codec, frames (counted by decoding), duration, size.
struct Probed: Equatable {
    var codec: String
    var frames: Int
    var duration: Double
    var start: Double
    var width = 0
    var height = 0
}

func probe(_ path: String) throws -> [String: Probed] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/ffprobe")
    process.arguments = ["-v", "error", "-count_frames", "-show_entries",
                         "stream=codec_type,codec_name,nb_read_frames,duration,start_time,width,height", "-of", "json", path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
    var streams: [String: Probed] = [:]
    for stream in json?["streams"] as? [[String: Any]] ?? [] {
        let number = { (key: String) in Double(stream[key] as? String ?? "") ?? 0 }
        streams[stream["codec_type"] as? String ?? "?"] = Probed(
            codec: stream["codec_name"] as? String ?? "?", frames: Int(number("nb_read_frames")), duration: number("duration"),
            start: number("start_time"), width: stream["width"] as? Int ?? 0, height: stream["height"] as? Int ?? 0)
    }
    return streams
}

/// A scratch directory for one test.
func scratch() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("qg-media-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The test media: the bouncing ball (64×36, 30 fps, 1 s) with a 440 Hz
/// tone, encoded by QueueGraph itself into H.264 + AAC. Made once per run.
let testMedia: Result<String, any Error> = Result {
    let path = try scratch().appendingPathComponent("ball.mp4").path
    _ = try run("""
        queues:
          - {name: render, processor: render, parameters: {width: 64, height: 36, fps: 30, frames: 30, latency: 100}, pool: {count: 8}, threading: thread}
          - {name: ball, processor: ball, size: 2, buffers: reuse}
          - {name: tone, processor: tonesrc, parameters: {seconds: 1}, threading: thread}
          - {name: out, processor: mediasink, parameters: {path: '\(path)', preset: ultrafast, gop: 10}, size: 8, threading: thread}
        connections: [render -> ball, ball -> out, tone -> out]
        """)
    return path
}

/// The test media's video alone, encoded again into a scratch file named
/// `name` (its extension picks the container); the file's path.
func videoOnly(_ name: String, preset: String = "ultrafast") throws -> String {
    let output = try scratch().appendingPathComponent(name).path
    _ = try run("""
        queues:
          - {name: source, processor: mediasrc, parameters: {path: '\(try testMedia.get())'}, threading: thread}
          - {name: out, processor: mediasink, parameters: {path: '\(output)', preset: \(preset)}}
        connections: [source -> out]
        """)
    return output
}

@Suite("Media through FFmpeg's libraries")
struct MediaTests {
    @Test("a render and a tone encode into an mp4 whose frames, duration and sync ffprobe confirms")
    func encode() throws {
        let path = try testMedia.get()
        let streams = try probe(path)
        let video = try #require(streams["video"])
        let audio = try #require(streams["audio"])
        #expect(video.codec == "h264" && audio.codec == "aac")
        #expect((video.width, video.height) == (64, 36))
        #expect(video.frames > 0 && video.frames <= 30)   // a frame whose deadline passed is dropped, never late
        #expect(abs(audio.duration - 1) < 0.05, "\(audio)")
        #expect(abs(video.start - audio.start) <= 1.0 / 30, "video starts at \(video.start), audio at \(audio.start)")
    }

    @Test("mediasrc decodes every frame of the file, and the ledger balances")
    func decode() throws {
        let path = try testMedia.get()
        let expected = try #require(try probe(path)["video"]).frames
        let (statistics, graph) = try run("""
            queues:
              - {name: source, processor: mediasrc, parameters: {path: '\(path)'}, threading: thread}
              - {name: convert, processor: videoconvert, parameters: {format: rgba}, buffers: upstream, size: 4}
              - {name: check, processor: framesink, size: 4}
            connections: [source -> convert, convert -> check]
            """)
        #expect(statistics.queues.first { $0.name == "check" }?.arrived == expected)
        let source = try #require(graph.processor(ofQueue: "source") as? MediaSource)
        #expect(source.corrupt == 0 && source.failureReason == nil)
        #expect(source.decodedInPlace + source.copied == expected)
    }

    /// Keeps the visible rows of every I420 frame it gets; with `scribble`
    /// it then zeroes them (on a `reuse` queue, which owns what it writes).
    final class Planes: BufferProcessor, @unchecked Sendable {
        let scribble: Bool
        var bytes: [UInt8] = []
        init(scribble: Bool) { self.scribble = scribble }

        func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
            if let frame = Frame(buffer), frame.pixelFormat == .i420 {
                for i in 0..<3 {
                    let (first, stride) = frame.plane(i)
                    let (width, height) = i == 0 ? (frame.width, frame.height) : ((frame.width + 1) / 2, (frame.height + 1) / 2)
                    for row in 0..<height {
                        bytes.append(contentsOf: UnsafeBufferPointer(start: first + row * stride, count: width))
                        if scribble { (first + row * stride).update(repeating: 0, count: width) }
                    }
                }
            }
            context.doneBuffer(buffer)
            return .ok
        }
    }

    @Test("frames decode straight into their buffers, pixel for pixel as ffmpeg decodes them, also when a processor writes on them in place")
    func decodeInPlace() throws {
        let path = try videoOnly("references.mp4", preset: "slower")   // many reference frames, and B-frames
        let frames = try #require(try probe(path)["video"]).frames
        let ffmpeg = Process()
        ffmpeg.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        ffmpeg.arguments = ["-v", "error", "-i", path, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"]
        let pipe = Pipe()
        ffmpeg.standardOutput = pipe
        try ffmpeg.run()
        let expected = [UInt8](pipe.fileHandleForReading.readDataToEndOfFile())
        ffmpeg.waitUntilExit()
        #expect(frames > 0 && expected.count == frames * (64 * 36 + 2 * 32 * 18))
        // Writing in place on a frame the decoder still predicts from would change the frames after it.
        for scribble in [false, true] {
            var registry = registry
            let planes = Planes(scribble: scribble)
            registry.register(ProcessorSpec(name: "planes", summary: "keeps the pixels", outputs: 0...0, make: { _ in planes }))
            let graph = try GraphFile(yaml: """
                queues:
                  - {name: source, processor: mediasrc, parameters: {path: '\(path)', threads: 2}, threading: thread}
                  - {name: check, processor: planes, size: 4, buffers: \(scribble ? "reuse" : "forward")}
                connections: [source -> check]
                """, file: "in-place.yaml", registry: registry).config.createQueueGraph()
            try graph.start()
            #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
            let statistics = graph.stop()
            #expect(Ledger.problems(statistics) == [])
            let source = try #require(graph.processor(ofQueue: "source") as? MediaSource)
            #expect(source.decodedInPlace > 0 && source.decodedInPlace + source.copied == frames, "\(source.decodedInPlace) in place, \(source.copied) copied")
            let difference = planes.bytes.indices.first { $0 >= expected.count || planes.bytes[$0] != expected[$0] }   // not the bytes: a failure would print them all
            #expect(planes.bytes.count == expected.count && difference == nil,
                    "\(scribble ? "written on in place" : "read only"): \(planes.bytes.count) bytes, first difference at \(difference ?? -1) (frame \((difference ?? 0) / (64 * 36 * 3 / 2)))")
        }
    }

    @Test("a transcode (video scaled, audio passed to the encoder) keeps the frame count and the audio's length")
    func transcode() throws {
        let path = try testMedia.get()
        let input = try probe(path)
        let output = try scratch().appendingPathComponent("small.mkv").path
        _ = try run("""
            queues:
              - {name: source, processor: mediasrc, parameters: {path: '\(path)', streams: video+audio}, threading: thread}
              - {name: scale, processor: videoscale, parameters: {width: 32, height: 18}, buffers: upstream, size: 4}
              - {name: encode, processor: mediasink, parameters: {path: '\(output)', preset: ultrafast}, size: 8, threading: thread}
            connections: [source:0 -> scale, scale -> encode, source:1 -> encode]
            """)
        let streams = try probe(output)
        #expect(streams["video"]?.frames == input["video"]?.frames)
        #expect((streams["video"]?.width, streams["video"]?.height) == (32, 18))
        // Matroska keeps no stream duration: the audio's length shows as its count of AAC frames (1024 samples each, same rate).
        let (made, given) = (try #require(streams["audio"]).frames, try #require(input["audio"]).frames)
        #expect(abs(made - given) <= 1, "\(made) AAC frames from \(given)")
    }

    @Test("webm gets VP9 and Opus")
    func webm() throws {
        let path = try testMedia.get()
        let output = try scratch().appendingPathComponent("out.webm").path
        _ = try run("""
            queues:
              - {name: source, processor: mediasrc, parameters: {path: '\(path)', streams: video+audio}, threading: thread}
              - {name: encode, processor: mediasink, parameters: {path: '\(output)', preset: ultrafast}, size: 8, threading: thread}
            connections: [source:0 -> encode, source:1 -> encode]
            """)
        let streams = try probe(output)
        #expect(streams["video"]?.codec == "vp9" && streams["audio"]?.codec == "opus")
        #expect(streams["video"]?.frames == (try probe(path))["video"]?.frames)
    }

    @Test("a missing file, a missing stream, an unknown codec and a container that cannot hold the codec refuse the graph with the reason")
    func refusals() throws {
        let path = try testMedia.get()
        func refusal(_ yaml: String) -> String {
            do {
                _ = try GraphFile(yaml: yaml, file: "bad.yaml", registry: registry).config.createQueueGraph()
                return "no refusal"
            } catch {
                return "\(error)"
            }
        }
        let missing = refusal("""
            queues: [{name: source, processor: mediasrc, parameters: {path: /nonexistent/clip.mp4}}, {name: sink, processor: nullsink}]
            connections: [source -> sink]
            """)
        #expect(missing.contains("queue 'source'") && missing.contains("cannot open '/nonexistent/clip.mp4': No such file or directory"), "\(missing)")
        let noAudio = try videoOnly("silent.mp4")
        let stream = refusal("""
            queues: [{name: source, processor: mediasrc, parameters: {path: '\(noAudio)', streams: audio}}, {name: sink, processor: nullsink}]
            connections: [source -> sink]
            """)
        #expect(stream.contains("has no audio stream (it has: video h264)"), "\(stream)")
        // A Matroska file whose video codec id this FFmpeg does not know (same length, so the file stays well formed).
        let whole = try videoOnly("unknown.mkv")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: whole)))
        let avc = Array("V_MPEG4/ISO/AVC".utf8)
        let at = try #require(bytes.indices.first { bytes[$0...].starts(with: avc) })
        bytes.replaceSubrange(at..<at + avc.count, with: Array("V_QGRAPH/UNKNO".utf8) + [0x4e])
        let unknown = try scratch().appendingPathComponent("unknown-codec.mkv").path
        try Data(bytes).write(to: URL(fileURLWithPath: unknown))
        let codec = refusal("""
            queues: [{name: source, processor: mediasrc, parameters: {path: '\(unknown)'}}, {name: sink, processor: nullsink}]
            connections: [source -> sink]
            """)
        #expect(codec.contains("the video of '\(unknown)' is in a codec FFmpeg does not know (tag '....'), which this FFmpeg cannot decode"), "\(codec)")
        let container = refusal("""
            queues: [{name: source, processor: mediasrc, parameters: {path: '\(path)'}}, {name: out, processor: mediasink, parameters: {path: /tmp/x.webm, video-codec: h264}}]
            connections: [source -> out]
            """)
        #expect(container.contains("a .webm file cannot hold h264"), "\(container)")
    }

    @Test("a link whose downstream cannot take its format is refused: when read if the parameters tell, else when created")
    func linkFormats() throws {
        let path = try testMedia.get()
        #expect(throws: GraphFileErrors.self) {
            _ = try GraphFile(yaml: """
                queues: [{name: source, processor: mediasrc, parameters: {path: x.mp4, streams: audio}}, {name: blur, processor: boxblur}, {name: sink, processor: framesink}]
                connections: [source -> blur, blur -> sink]
                """, file: "kinds.yaml", registry: registry)
        }
        // Known from the parameters alone: refused when the file is read, at the link.
        do {
            _ = try GraphFile(yaml: """
                queues:
                  - {name: source, processor: mediasrc, parameters: {path: x.mp4}}
                  - {name: convert, processor: videoconvert, parameters: {format: nv12}, buffers: upstream}
                  - {name: blur, processor: boxblur}
                  - {name: sink, processor: framesink}
                connections:
                  - source -> convert
                  - convert -> blur
                  - blur -> sink
                """, file: "read.yaml", registry: registry)
            Issue.record("an NV12 link into an RGBA filter was not refused when read")
        } catch {
            #expect(error.description == "read.yaml:8:5: error: the link from 'convert' into 'blur' cannot carry its buffers: found video nv12, expected video rgba (a videoconvert with format: rgba makes it)", "\(error)")
        }
        // Known once the file is open: refused when the graph is created.
        let pixels = try GraphFile(yaml: """
            queues:
              - {name: source, processor: mediasrc, parameters: {path: '\(path)'}}
              - {name: blur, processor: boxblur}
              - {name: sink, processor: framesink}
            connections:
              - source -> blur
              - blur -> sink
            """, file: "pixels.yaml", registry: registry)
        do {
            _ = try pixels.config.createQueueGraph()
            Issue.record("an I420 link into an RGBA filter was not refused")
        } catch let errors as ConfigErrors {
            // Located at the link's line, naming both queues.
            #expect(pixels.locate(errors).description.hasPrefix("pixels.yaml:6:5: error: queue 'blur': the link from 'source' into 'blur' cannot carry its buffers: found video i420 64×36 30 fps, expected video rgba"),
                    "\(pixels.locate(errors))")
        }
        let graph = try GraphFile(yaml: """
            queues:
              - {name: source, processor: mediasrc, parameters: {path: '\(path)', streams: video+audio}}
              - {name: convert, processor: videoconvert, parameters: {format: rgba, width: 32, height: 18}, buffers: upstream}
              - {name: blur, processor: boxblur}
              - {name: sink, processor: nullsink}
              - {name: frames, processor: framesink}
            connections: [source:0 -> convert, convert -> blur, blur -> frames, source:1 -> sink]
            """, file: "ok.yaml", registry: registry).config.createQueueGraph()
        #expect(graph.engine.linkFormats[0].map(\.description) == ["video i420 64×36 30 fps", "audio fltp 48000 Hz 2 ch"])
        #expect(graph.engine.linkFormats[1].map(\.description) == ["video rgba 32×18 30 fps"])
    }

    @Test("a truncated file ends at its last good frame; damaged copies never crash and always balance the ledger")
    func damagedInput() throws {
        let path = try testMedia.get()
        let directory = try scratch()
        // Matroska streams (its index is not needed to read it), so a file cut short still opens.
        let whole = try videoOnly("whole.mkv")
        // Damaged copies of both: an mp4 (its index at the end) and a Matroska file (read as a stream).
        let originals = [try Data(contentsOf: URL(fileURLWithPath: path)), try Data(contentsOf: URL(fileURLWithPath: whole))]
        let copies = Int(ProcessInfo.processInfo.environment["QG_MEDIA_FUZZ_COPIES"] ?? "") ?? 200
        var generator = SystemRandomNumberGenerator()
        var (refused, ran, corrupt) = (0, 0, 0)
        for copy in 0..<copies {
            var bytes = [UInt8](originals[copy % 2])
            switch copy / 2 % 3 {
            case 0:   // bytes flipped
                for _ in 0..<Int.random(in: 1...64, using: &generator) { bytes[Int.random(in: 0..<bytes.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator) }
            case 1:   // truncated
                bytes.removeLast(Int.random(in: 1..<bytes.count, using: &generator))
            default:  // header zeroed
                for i in 0..<min(bytes.count, Int.random(in: 8...4096, using: &generator)) { bytes[i] = 0 }
            }
            let damaged = directory.appendingPathComponent("damaged-\(copy).\(copy % 2 == 0 ? "mp4" : "mkv")").path
            try Data(bytes).write(to: URL(fileURLWithPath: damaged))
            let graph: QueueGraph
            do {
                graph = try GraphFile(yaml: """
                    queues:
                      - {name: source, processor: mediasrc, parameters: {path: '\(damaged)'}, threading: thread}
                      - {name: convert, processor: videoconvert, parameters: {format: rgba}, buffers: upstream, size: 4}
                      - {name: sink, processor: framesink}
                    connections: [source -> convert, convert -> sink]
                    """, file: "damaged.yaml", registry: registry).config.createQueueGraph()
            } catch {
                refused += 1
                continue
            }
            try graph.start()
            #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000), "copy \(copy) did not finish")
            let statistics = graph.stop()
            #expect(Ledger.problems(statistics) == [], "copy \(copy)")
            ran += 1
            corrupt += statistics.queues[0].dropped[.corrupt] ?? 0
        }
        print("damaged copies: \(copies), refused at creation \(refused), ran \(ran), corrupt packets or frames counted \(corrupt)")
        #expect(refused + ran == copies)

        let full = try #require(try probe(whole)["video"]).frames
        let truncated = directory.appendingPathComponent("truncated.mkv").path
        let wholeBytes = try Data(contentsOf: URL(fileURLWithPath: whole))
        try wholeBytes.prefix(wholeBytes.count * 3 / 5).write(to: URL(fileURLWithPath: truncated))
        let (statistics, graph) = try run("""
            queues:
              - {name: source, processor: mediasrc, parameters: {path: '\(truncated)'}, threading: thread}
              - {name: sink, processor: nullsink}
            connections: [source -> sink]
            """)
        let delivered = statistics.queues.first { $0.name == "sink" }?.arrived ?? 0
        #expect(delivered > 0 && delivered < full, "\(delivered) of \(full)")
        #expect((graph.processor(ofQueue: "source") as? MediaSource)?.corrupt == 0)
    }
}

@Suite("Audio resampling")
struct AudioResampleTests {
    @Test("audioresample turns the decoder's stereo 48 kHz float into mono 16 kHz s16, keeping the length and every buffer accounted for")
    func resample() throws {
        let path = try testMedia.get()
        let audio = try #require(try probe(path)["audio"])
        let (statistics, graph) = try run("""
            queues:
              - {name: source, processor: mediasrc, parameters: {path: '\(path)', streams: audio}, threading: thread}
              - {name: resample, processor: audioresample, parameters: {format: s16, rate: 16000, channels: 1}, buffers: upstream, size: 4}
              - {name: check, processor: nullsink, size: 4}
            connections: [source -> resample, resample -> check]
            """)
        #expect(graph.engine.linkFormats[1].map(\.description) == ["audio s16 16000 Hz 1 ch"])
        #expect((statistics.queues.first { $0.name == "check" }?.arrived ?? 0) > 0)
        #expect((graph.processor(ofQueue: "resample") as? AudioResampler)?.failureReason == nil)
        let output = try scratch().appendingPathComponent("mono.m4a").path
        _ = try run("""
            queues:
              - {name: source, processor: mediasrc, parameters: {path: '\(path)', streams: audio}, threading: thread}
              - {name: resample, processor: audioresample, parameters: {format: s16, rate: 16000, channels: 1}, buffers: upstream, size: 4}
              - {name: out, processor: mediasink, parameters: {path: '\(output)'}}
            connections: [source -> resample, resample -> out]
            """)
        let resampled = try #require(try probe(output)["audio"])
        #expect(abs(resampled.duration - audio.duration) < 0.03, "\(resampled) from \(audio)")
    }
}

@Suite("mediasrc's timeline")
struct TimelineTests {
    /// A sink that keeps each frame's media time, pts and deadline (written
    /// on the sink's thread, read once the graph has stopped).
    final class Times: BufferProcessor, @unchecked Sendable {
        var mediaTimes: [Int64] = []
        var pts: [Int64] = []
        var deadlines: [UInt64] = []
        func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
            if let frame = Frame(buffer) {
                mediaTimes.append(frame.job.mediaTime)
                pts.append(frame.pts)
                deadlines.append(frame.job.deadline)
            }
            context.doneBuffer(buffer)
            return .ok
        }
    }

    func times(_ parameters: String) throws -> (times: Times, statistics: GraphStatistics) {
        let path = try testMedia.get()
        var registry = registry
        let times = Times()
        registry.register(ProcessorSpec(name: "times", summary: "keeps media times", outputs: 0...0, make: { _ in times }))
        let graph = try GraphFile(yaml: """
            queues:
              - {name: source, processor: mediasrc, parameters: {path: '\(path)', \(parameters)}, threading: thread}
              - {name: sink, processor: times, size: 4}
            connections: [source -> sink]
            """, file: "timeline.yaml", registry: registry).config.createQueueGraph()
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
        let statistics = graph.stop()
        #expect(Ledger.problems(statistics) == [])
        return (times, statistics)
    }

    @Test("start and duration cut the file; loop runs the timeline on past the file's end")
    func cuts() throws {
        let full = try times("streams: video").times.mediaTimes
        let period = full.count > 1 ? full[1] - full[0] : 33_333_333
        let cut = try times("start: 0.3, duration: 0.4").times
        #expect(cut.mediaTimes.first.map { $0 >= 0 && $0 < period } == true, "\(cut.mediaTimes)")
        #expect(cut.mediaTimes.allSatisfy { $0 < 400_000_000 } && cut.mediaTimes.count >= 10 && cut.mediaTimes.count <= 13, "\(cut.mediaTimes)")
        let looped = try times("loop: true, duration: 2.5").times
        #expect(zip(looped.mediaTimes, looped.mediaTimes.dropFirst()).allSatisfy { $0 < $1 }, "the timeline runs on across loops")
        #expect(looped.mediaTimes.count > full.count * 2 && looped.mediaTimes.allSatisfy { $0 < 2_500_000_000 }, "\(looped.mediaTimes.count) frames")
        #expect(zip(looped.pts, looped.pts.dropFirst()).allSatisfy { $0 < $1 })
    }

    @Test("pace live gives each frame a deadline; fast gives none")
    func pace() throws {
        // No timing is asserted: only that live frames carry deadlines and fast ones do not.
        let live = try times("pace: live, duration: 0.3").times.deadlines
        let fast = try times("pace: fast, duration: 0.3").times.deadlines
        #expect(!live.isEmpty && live.allSatisfy { $0 < UInt64.max })
        #expect(!fast.isEmpty && fast.allSatisfy { $0 == UInt64.max })
    }
}
