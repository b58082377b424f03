import CFFmpeg
import QueueGraphCore
import QueueGraphRender

/// Encodes frames and audio chunks and muxes them into a file (the graph
/// files' `mediasink`): the container comes from the extension (mp4, mkv,
/// webm, mov); video is H.264 (libx264) or VP9 (libvpx), audio AAC or Opus.
/// One in-link may carry video and one audio; each buffer's pts and time
/// base are kept, so audio and video stay in sync.
///
/// Each stream's encoder opens at its first buffer (with that buffer's size
/// and format); packets wait in memory until every in-link's stream is
/// open, then the header is written. The trailer is written when the
/// stream ends, or when the thread ends after a stop, so the file plays
/// however the graph stopped.
///
/// Threading: `negotiate` on the thread that creates the graph; the rest on
/// its queue's scheduler thread.
public final class MediaSink: ThreadLifecycle, FormatAware, FailureReporting {
    /// Encoder settings (a value; any thread).
    public struct Options: Sendable {
        public var path: String
        /// "h264", "vp9", or nil for the container's usual codec.
        public var videoCodec: String?
        /// "aac", "opus", or nil for the container's usual codec.
        public var audioCodec: String?
        /// Constant quality (lower is better); used when `bitrate` is 0.
        public var crf = 23
        /// x264's preset names; VP9 maps them onto its speed.
        public var preset = "medium"
        /// Video kbit/s; 0 encodes at constant quality (`crf`).
        public var bitrate = 0
        /// Frames between key frames; 0 leaves the encoder's default.
        public var gop = 0
        public var audioBitrate = 128
        /// Encoder threads; 0 lets the encoder choose.
        public var threads = 0

        public init(path: String) { self.path = path }

        /// The file name's extension, lowercased.
        var container: String { String(path.split(separator: ".").last ?? "").lowercased() }
        /// FFmpeg's name of the video and audio encoders.
        var videoEncoder: String { (videoCodec ?? (container == "webm" ? "vp9" : "h264")) == "vp9" ? "libvpx-vp9" : "libx264" }
        var audioEncoder: String { (audioCodec ?? (container == "webm" ? "opus" : "aac")) == "opus" ? "libopus" : "aac" }
    }

    public let options: Options
    public private(set) var failureReason: String?
    public private(set) var framesWritten = 0
    public private(set) var samplesWritten = 0
    private let slot: OutputSlot?
    private var output: UnsafeMutablePointer<AVFormatContext>?
    private var expectedStreams = 1
    private var video: VideoEncoder?
    private var audio: AudioEncoder?
    /// Packets made before the header could be written (in their encoder's time base), with their encoder and stream.
    private var held: [(packet: Packet, codec: Codec, stream: UnsafeMutablePointer<AVStream>)] = []
    private var headerWritten = false
    private var finished = false
    private let packet = Packet()

    public init(_ options: Options) {
        self.options = options
        slot = OutputSlot.claim(options.path)
    }

    deinit { finish() }

    public func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] {
        try Self.checkInLinks(options, arriving)
        expectedStreams = max(1, arriving.count)
        return []
    }

    /// Refuses in-links it cannot take: bytes, a second video or audio, a
    /// container it cannot tell or one that cannot hold the codec.
    static func checkInLinks(_ options: Options, _ arriving: [LinkFormat]) throws(FormatRefusal) {
        try FormatRefusal.check(arriving, "video or audio") { $0.kinds != .bytes }
        let kinds = arriving.map(\.kinds)
        for (kind, name) in [(BufferKinds.frames, "video"), (.audio, "audio")] where kinds.filter({ $0 == kind }).count > 1 {
            throw FormatRefusal(link: kinds.lastIndex(of: kind), "found a second \(name) in-link, expected at most one video and one audio")
        }
        guard let format = av_guess_format(nil, options.path, nil) else {
            throw FormatRefusal("cannot tell the container from '\(options.path)', expected a name ending in .mp4, .mkv, .webm or .mov")
        }
        for (kinds, name) in [(BufferKinds.frames, options.videoEncoder), (.audio, options.audioEncoder)] where arriving.contains(where: { $0.kinds == kinds }) {
            guard let codec = avcodec_find_encoder_by_name(name) else { throw FormatRefusal("this FFmpeg has no '\(name)' encoder") }
            if avformat_query_codec(format, codec.pointee.id, FF_COMPLIANCE_NORMAL) != 1 {
                throw FormatRefusal("a .\(options.container) file cannot hold \(String(cString: avcodec_get_name(codec.pointee.id)))")
            }
        }
    }

    /// Opens the file (a file that cannot be written refuses the start).
    public func threadDidStart(wake: WakeEvent) throws {
        guard slot != nil else { throw MediaError("'\(options.path)' is already another sink's output") }
        _ = ffmpegLog
        try check(avformat_alloc_output_context2(&output, nil, nil, options.path), "cannot tell the container from '\(options.path)'")
        try check(avio_open(&output!.pointee.pb, options.path, AVIO_FLAG_WRITE), "cannot open '\(options.path)'")
    }

    public func threadWillEnd() { finish() }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard output != nil, !finished else { return .failed }
        do throws(MediaError) {
            if let frame = Frame(buffer) {
                if video == nil { video = try VideoEncoder(codec: options.videoEncoder, first: frame, options: options, output: output!) }
                try video!.send(frame)
                framesWritten += 1
                try drain(video!.codec, stream: video!.stream)
            } else if let chunk = AudioChunk(buffer) {
                if audio == nil { audio = try AudioEncoder(codec: options.audioEncoder, first: chunk, options: options, output: output!) }
                let audio = audio!
                try audio.send(chunk) { () throws(MediaError) in try drain(audio.codec, stream: audio.stream) }
                samplesWritten += chunk.samples
            } else {
                throw MediaError("a buffer that is neither a frame nor an audio chunk")
            }
        } catch {
            if failureReason == nil { failureReason = "\(error)" }
            return .failed
        }
        context.doneBuffer(buffer)
        return .ok
    }

    public func endOfStream(context: ProcessContext) { finish() }

    /// Writes what every encoder still holds, and the trailer (once).
    private func finish() {
        guard let output, !finished else { return }
        finished = true
        do throws(MediaError) {
            if let video {
                try video.flush()
                try drain(video.codec, stream: video.stream)
            }
            if let audio {
                try audio.flush { () throws(MediaError) in try drain(audio.codec, stream: audio.stream) }
                try drain(audio.codec, stream: audio.stream)
            }
            if video != nil || audio != nil {
                try writeHeaderIfNeeded(force: true)
                try check(av_write_trailer(output), "cannot finish '\(options.path)'")
            }
        } catch {
            if failureReason == nil { failureReason = "\(error)" }
        }
        avio_closep(&output.pointee.pb)
        avformat_free_context(output)
        self.output = nil
        slot?.release()
    }

    /// Moves the encoder's finished packets into the file (or holds them until the header).
    private func drain(_ codec: Codec, stream: UnsafeMutablePointer<AVStream>) throws(MediaError) {
        while true {
            let code = avcodec_receive_packet(codec.context, packet.pointer)
            if code == eagain || code == endOfFile { break }
            try check(code, "cannot encode")
            packet.pointer.pointee.stream_index = stream.pointee.index
            try writeHeaderIfNeeded(force: false)
            if headerWritten {
                try write(packet, codec: codec, stream: stream)
            } else {
                let kept = Packet()
                av_packet_move_ref(kept.pointer, packet.pointer)
                held.append((kept, codec, stream))
            }
        }
    }

    /// Writes a packet in its encoder's time base into the file, interleaved.
    private func write(_ packet: Packet, codec: Codec, stream: UnsafeMutablePointer<AVStream>) throws(MediaError) {
        av_packet_rescale_ts(packet.pointer, codec.context.pointee.time_base, stream.pointee.time_base)   // the header may have changed the stream's
        try check(av_interleaved_write_frame(output, packet.pointer), "cannot write '\(options.path)'")
    }

    /// Writes the header once every expected stream has its encoder (or, with `force`, whatever came).
    private func writeHeaderIfNeeded(force: Bool) throws(MediaError) {
        guard !headerWritten, force || (video == nil ? 0 : 1) + (audio == nil ? 0 : 1) >= expectedStreams else { return }
        try check(avformat_write_header(output, nil), "cannot write the header of '\(options.path)'")
        headerWritten = true
        for kept in held { try write(kept.packet, codec: kept.codec, stream: kept.stream) }
        held.removeAll()
    }
}

/// A video stream of a `MediaSink`: its encoder, its stream in the file and
/// the conversion to the encoder's pixel format.
private final class VideoEncoder {
    let codec: Codec
    let stream: UnsafeMutablePointer<AVStream>
    private let scaler = Scaler(threads: 0)
    private let lent = DecodedFrame()
    private let lender = Lender()
    private let converted = DecodedFrame()
    private var lastPts = Int64.min

    init(codec name: String, first: Frame, options: MediaSink.Options, output: UnsafeMutablePointer<AVFormatContext>) throws(MediaError) {
        let rate = first.job.rate
        codec = try Codec(encoder: name) { (c) throws(MediaError) in
            c.pointee.width = Int32(first.width)
            c.pointee.height = Int32(first.height)
            c.pointee.pix_fmt = AV_PIX_FMT_YUV420P
            c.pointee.time_base = AVRational(num: Int32(rate.denominator), den: Int32(rate.numerator))
            c.pointee.framerate = AVRational(num: Int32(rate.numerator), den: Int32(rate.denominator))
            c.pointee.thread_count = Int32(options.threads)
            if options.gop > 0 { c.pointee.gop_size = Int32(options.gop) }
            if output.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER != 0 { c.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER }
            if options.bitrate > 0 { c.pointee.bit_rate = Int64(options.bitrate) * 1000 }
            if name == "libx264" {
                try setOption(c, "preset", options.preset)
                if options.bitrate == 0 { try setOption(c, "crf", "\(options.crf)") }
            } else {
                let speeds = ["ultrafast": 8, "superfast": 7, "veryfast": 6, "faster": 5, "fast": 4, "medium": 3, "slow": 2, "slower": 1, "veryslow": 0]
                let speed = speeds[options.preset] ?? 3
                try setOption(c, "deadline", speed >= 6 ? "realtime" : "good")
                try setOption(c, "cpu-used", "\(speed)")
                if options.bitrate == 0 { try setOption(c, "crf", "\(min(63, options.crf))") }
                try setOption(c, "row-mt", "1")
            }
        }
        stream = avformat_new_stream(output, nil)
        try check(avcodec_parameters_from_context(stream.pointee.codecpar, codec.context), "cannot describe the video stream")
        stream.pointee.time_base = codec.context.pointee.time_base
        stream.pointee.avg_frame_rate = codec.context.pointee.framerate
        (converted.pointer.pointee.width, converted.pointer.pointee.height) = (Int32(first.width), Int32(first.height))
        converted.pointer.pointee.format = AV_PIX_FMT_YUV420P.rawValue
        try check(av_frame_get_buffer(converted.pointer, 0), "cannot convert to I420")
    }

    func send(_ frame: Frame) throws(MediaError) {
        let c = codec.context.pointee
        guard frame.width == Int(c.width) && frame.height == Int(c.height) else {
            throw MediaError("the frame size changed from \(c.width)×\(c.height) to \(frame.width)×\(frame.height); put a videoscale before the sink")
        }
        let input: UnsafeMutablePointer<AVFrame>
        frame.lend(to: lent.pointer, lender: lender)
        defer { lender.takeBack(lent.pointer) }
        if frame.pixelFormat == .i420 {
            input = lent.pointer
        } else {
            try check(av_frame_make_writable(converted.pointer), "cannot convert the frame")
            try scaler.scale(lent.pointer, into: converted.pointer)
            input = converted.pointer
        }
        var pts = av_rescale_q(frame.pts, AVRational(num: frame.timeBase.numerator, den: frame.timeBase.denominator), c.time_base)
        if pts <= lastPts { pts = lastPts + 1 }
        lastPts = pts
        input.pointee.pts = pts
        try check(avcodec_send_frame(codec.context, input), "cannot encode the frame")
    }

    func flush() throws(MediaError) {
        let code = avcodec_send_frame(codec.context, nil)
        if code != endOfFile { try check(code, "cannot finish the video") }
    }
}

/// An audio stream of a `MediaSink`: its encoder, its stream in the file,
/// the resampler to the encoder's format and the FIFO that cuts the
/// encoder's frame size.
private final class AudioEncoder {
    let codec: Codec
    let stream: UnsafeMutablePointer<AVStream>
    private var resampler: OpaquePointer?
    private let fifo: OpaquePointer
    private let frame = DecodedFrame()
    private var scratch: [UnsafeMutablePointer<UInt8>?] = []
    private var scratchSamples = 0
    private var nextPts: Int64
    private let frameSize: Int32

    init(codec name: String, first: AudioChunk, options: MediaSink.Options, output: UnsafeMutablePointer<AVFormatContext>) throws(MediaError) {
        guard let encoder = avcodec_find_encoder_by_name(name) else { throw MediaError("this FFmpeg has no '\(name)' encoder") }
        let sampleFormat = encoder.pointee.sample_fmts?.pointee ?? AV_SAMPLE_FMT_FLTP
        var rate = Int32(first.rate)
        if let rates = encoder.pointee.supported_samplerates {
            var supported: [Int32] = []
            var i = 0
            while rates[i] != 0 { supported.append(rates[i]); i += 1 }
            if !supported.contains(rate) { rate = supported.contains(48_000) ? 48_000 : supported[0] }
        }
        let channels = Int32(min(first.channels, 2))
        codec = try Codec(encoder: name) { c in
            c.pointee.sample_fmt = sampleFormat
            c.pointee.sample_rate = rate
            av_channel_layout_default(&c.pointee.ch_layout, channels)
            c.pointee.time_base = AVRational(num: 1, den: rate)
            c.pointee.bit_rate = Int64(options.audioBitrate) * 1000
            if output.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER != 0 { c.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER }
        }
        stream = avformat_new_stream(output, nil)
        try check(avcodec_parameters_from_context(stream.pointee.codecpar, codec.context), "cannot describe the audio stream")
        stream.pointee.time_base = codec.context.pointee.time_base
        var inLayout = AVChannelLayout()
        av_channel_layout_default(&inLayout, Int32(first.channels))
        defer { av_channel_layout_uninit(&inLayout) }
        try check(swr_alloc_set_opts2(&resampler, &codec.context.pointee.ch_layout, sampleFormat, rate,
                                      &inLayout, first.sampleFormat.ffmpeg, Int32(first.rate), 0, nil), "cannot set up the resampler")
        try check(swr_init(resampler), "cannot set up the resampler")
        fifo = av_audio_fifo_alloc(sampleFormat, channels, 4096)
        frameSize = codec.context.pointee.frame_size > 0 ? codec.context.pointee.frame_size : 1024
        nextPts = av_rescale_q(first.pts, AVRational(num: first.timeBase.numerator, den: first.timeBase.denominator), codec.context.pointee.time_base)
        frame.pointer.pointee.nb_samples = frameSize
        frame.pointer.pointee.format = sampleFormat.rawValue
        frame.pointer.pointee.sample_rate = rate
        av_channel_layout_copy(&frame.pointer.pointee.ch_layout, &codec.context.pointee.ch_layout)
        try check(av_frame_get_buffer(frame.pointer, 0), "cannot set up the audio frames")
    }

    deinit {
        swr_free(&resampler)
        av_audio_fifo_free(fifo)
        if !scratch.isEmpty { av_freep(&scratch[0]) }
    }

    /// Encodes a chunk; `drain` takes the encoder's packets after each frame sent.
    func send(_ chunk: AudioChunk, drain: () throws(MediaError) -> Void) throws(MediaError) {
        try chunk.withPlanes { planes in Result { () throws(MediaError) in try resample(planes, samples: Int32(chunk.samples)) } }.get()
        try encode(whole: true, drain: drain)
    }

    /// Converts input samples (nil: flush the resampler) into the FIFO.
    private func resample(_ inputs: UnsafePointer<UnsafePointer<UInt8>?>?, samples: Int32) throws(MediaError) {
        let c = codec.context.pointee
        let room = swr_get_out_samples(resampler, samples)
        if room > scratchSamples {
            if !scratch.isEmpty { av_freep(&scratch[0]) }
            scratch = Array(repeating: nil, count: Int(c.ch_layout.nb_channels))
            try check(av_samples_alloc(&scratch, nil, c.ch_layout.nb_channels, room, c.sample_fmt, 0), "cannot resample")
            scratchSamples = Int(room)
        }
        let made = swr_convert(resampler, &scratch, room, UnsafeMutablePointer(mutating: inputs), samples)
        try check(made, "cannot resample")
        scratch.withUnsafeMutableBufferPointer { planes in
            _ = planes.baseAddress!.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: planes.count) {
                av_audio_fifo_write(fifo, $0, made)
            }
        }
    }

    /// Sends the FIFO's samples in encoder-sized frames (`whole`: only full
    /// ones), through one frame whose buffers are copied only while the
    /// encoder still holds them.
    private func encode(whole: Bool, drain: () throws(MediaError) -> Void) throws(MediaError) {
        while av_audio_fifo_size(fifo) >= (whole ? frameSize : 1) {
            let count = min(frameSize, av_audio_fifo_size(fifo))
            try check(av_frame_make_writable(frame.pointer), "cannot encode the audio")
            frame.pointer.pointee.nb_samples = count
            _ = withUnsafeMutableBytes(of: &frame.pointer.pointee.data) { data in
                av_audio_fifo_read(fifo, data.baseAddress!.assumingMemoryBound(to: UnsafeMutableRawPointer?.self), count)
            }
            frame.pointer.pointee.pts = nextPts
            nextPts += Int64(count)
            try check(avcodec_send_frame(codec.context, frame.pointer), "cannot encode the audio")
            try drain()
        }
    }

    func flush(drain: () throws(MediaError) -> Void) throws(MediaError) {
        try resample(nil, samples: 0)
        try encode(whole: false, drain: drain)
        let code = avcodec_send_frame(codec.context, nil)
        if code != endOfFile { try check(code, "cannot finish the audio") }
    }
}
