import CFFmpeg
import QueueGraphCore
import QueueGraphRender

extension ProcessorRegistry {
    /// Registers the media processors (FFmpeg's libraries): `mediasrc`,
    /// `videoconvert`, `videoscale`, `audioresample`, `mediasink` and `tonesrc`.
    public mutating func registerMedia() {
        var source = ProcessorSpec(
            name: "mediasrc", summary: "decodes a media file (anything libavformat opens): pad 0 video, then audio",
            parameters: [
                ParameterSpec("path", .text, default: nil, "the file or URL to read (a relative path starts at the working directory)"),
                ParameterSpec("streams", .choice(MediaSource.Streams.allCases.map(\.rawValue)), default: .text("video"),
                              "which streams to decode; their pads go in this order"),
                ParameterSpec("pace", .choice(MediaSource.Pace.allCases.map(\.rawValue)), default: .text("fast"),
                              "live: each buffer at its time on the graph's clock; fast: as fast as downstream takes them"),
                ParameterSpec("loop", .flag, default: .flag(false), "start again after the end (until duration, or a stop)"),
                ParameterSpec("start", .number(0...1e9), default: .number(0), "seconds into the file to begin at"),
                ParameterSpec("duration", .number(0...1e9), default: .number(0), "seconds to send; 0 sends to the end"),
                ParameterSpec("threads", .integer(0...64), default: .integer(0), "decoder threads; 0 lets FFmpeg choose"),
                ParameterSpec("latency", .number(0...60), default: .number(0.1), "seconds from a frame's time to its deadline (live)"),
            ],
            outputs: 1...2, isSource: true, makes: [.frames, .audio],
            makeCreator: { name, count, sharedWithChildren in
                FrameCreator(name: name, count: count + MediaSource.loanBuffers, engine: sharedWithChildren ? .sharedWithChildren : .shared)
            },
            make: { p in
                var options = MediaSource.Options(path: p.text("path"))
                options.streams = MediaSource.Streams(rawValue: p.text("streams"))!
                options.pace = MediaSource.Pace(rawValue: p.text("pace"))!
                options.loop = p.flag("loop")
                options.start = p.number("start")
                options.duration = p.number("duration")
                options.threads = p.integer("threads")
                options.latency = p.number("latency")
                return MediaSource(options)
            })
        source.negotiate = { p, _ in   // the pixel and sample formats are known once the file is open
            MediaSource.Streams(rawValue: p.text("streams"))!.kinds.map { $0 == AVMEDIA_TYPE_VIDEO ? .video(VideoFormat()) : .audio(AudioFormat()) }
        }
        register(source)
        let formats = ["same"] + PixelFormat.allCases.map(\.rawValue)
        let threads = ParameterSpec("threads", .integer(0...64), default: .integer(0), "slice threads; 0 lets libswscale choose")
        register(ProcessorSpec(
            name: "videoconvert", summary: "converts frames to another pixel format, and size if asked (libswscale; use 'buffers: upstream')",
            parameters: [ParameterSpec("format", .choice(formats), default: .text("rgba"), "the pixel format to make"),
                         ParameterSpec("width", .integer(0...8192), default: .integer(0), "output width; 0 keeps it"),
                         ParameterSpec("height", .integer(0...8192), default: .integer(0), "output height; 0 keeps it"), threads],
            outputs: 1...1, takes: .frames, makes: .frames, make: { p in
                VideoConverter(pixelFormat: PixelFormat(rawValue: p.text("format")), width: p.integer("width") == 0 ? nil : p.integer("width"),
                               height: p.integer("height") == 0 ? nil : p.integer("height"), threads: p.integer("threads"))
            }))
        register(ProcessorSpec(
            name: "videoscale", summary: "scales frames, keeping their pixel format (libswscale; use 'buffers: upstream')",
            parameters: [ParameterSpec("width", .integer(1...8192), default: nil, "output width"),
                         ParameterSpec("height", .integer(1...8192), default: nil, "output height"), threads],
            outputs: 1...1, takes: .frames, makes: .frames, make: { p in
                VideoConverter(pixelFormat: nil, width: p.integer("width"), height: p.integer("height"), threads: p.integer("threads"))
            }))
        register(ProcessorSpec(
            name: "audioresample", summary: "converts audio's sample format, rate and channels (libswresample; use 'buffers: upstream')",
            parameters: [ParameterSpec("format", .choice(["same"] + SampleFormat.allCases.map(\.rawValue)), default: .text("same"), "the sample format to make"),
                         ParameterSpec("rate", .integer(0...768_000), default: .integer(0), "samples per second; 0 keeps it"),
                         ParameterSpec("channels", .integer(0...64), default: .integer(0), "channels; 0 keeps them")],
            outputs: 1...1, takes: .audio, makes: .audio, make: { p in
                AudioResampler(AudioFormat(SampleFormat(rawValue: p.text("format")), rate: p.integer("rate") == 0 ? nil : p.integer("rate"),
                                           channels: p.integer("channels") == 0 ? nil : p.integer("channels")))
            }))
        register(ProcessorSpec(
            name: "mediasink", summary: "encodes and muxes video and audio into a file (mp4, mkv, webm, mov)",
            parameters: [
                ParameterSpec("path", .text, default: nil, "the file to write; its extension picks the container"),
                ParameterSpec("video-codec", .choice(["auto", "h264", "vp9"]), default: .text("auto"), "auto: VP9 in webm, else H.264"),
                ParameterSpec("audio-codec", .choice(["auto", "aac", "opus"]), default: .text("auto"), "auto: Opus in webm, else AAC"),
                ParameterSpec("crf", .integer(0...63), default: .integer(23), "constant quality, lower is better (when bitrate is 0)"),
                ParameterSpec("preset", .choice(["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]),
                              default: .text("medium"), "encoder speed against size"),
                ParameterSpec("bitrate", .integer(0...1_000_000), default: .integer(0), "video kbit/s; 0 encodes at constant quality"),
                ParameterSpec("gop", .integer(0...10_000), default: .integer(0), "frames between key frames; 0: the encoder's default"),
                ParameterSpec("audio-bitrate", .integer(8...1_000), default: .integer(128), "audio kbit/s"),
                ParameterSpec("threads", .integer(0...64), default: .integer(0), "encoder threads; 0 lets the encoder choose"),
            ],
            outputs: 0...0, takes: [.frames, .audio], make: { p in MediaSink(sinkOptions(p)) }))
        self["mediasink"]?.negotiate = { p, arriving throws(FormatRefusal) in
            try MediaSink.checkInLinks(sinkOptions(p), arriving)
            return []
        }
        register(ProcessorSpec(
            name: "tonesrc", summary: "makes a sine tone (16-bit interleaved audio), as fast as downstream takes it",
            parameters: [
                ParameterSpec("frequency", .number(1...100_000), default: .number(440), "hertz"),
                ParameterSpec("rate", .integer(8_000...192_000), default: .integer(48_000), "samples per second"),
                ParameterSpec("channels", .integer(1...8), default: .integer(2), "channels"),
                ParameterSpec("seconds", .number(0...1e9), default: .number(0), "how long; 0 until stopped"),
            ],
            outputs: 1...1, isSource: true, makes: .audio,
            payloadBytes: { AudioChunk.byteCount(format: .s16, channels: $0.integer("channels"), samples: 1024) },
            make: { p in
                ToneSource(frequency: p.number("frequency"), rate: p.integer("rate"), channels: p.integer("channels"), seconds: p.number("seconds"))
            }))
        // What they send follows from their parameters, so files are checked when read.
        for name in ["videoconvert", "videoscale", "audioresample", "tonesrc"] { self[name]?.negotiateByMaking() }
    }
}

/// A `mediasink`'s options from its parameters.
private func sinkOptions(_ p: Parameters) -> MediaSink.Options {
    var options = MediaSink.Options(path: p.text("path"))
    options.videoCodec = p.text("video-codec") == "auto" ? nil : p.text("video-codec")
    options.audioCodec = p.text("audio-codec") == "auto" ? nil : p.text("audio-codec")
    options.crf = p.integer("crf")
    options.preset = p.text("preset")
    options.bitrate = p.integer("bitrate")
    options.gop = p.integer("gop")
    options.audioBitrate = p.integer("audio-bitrate")
    options.threads = p.integer("threads")
    return options
}
