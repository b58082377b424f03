import CFFmpeg
import QueueGraphCore
import QueueGraphRender

/// Reads a media file (anything libavformat opens) and decodes its video
/// and audio into frames and audio chunks, one out pad per selected stream
/// (the graph files' `mediasrc`). Each buffer carries its pts, duration and
/// time base; the output timeline starts at 0 and runs on across loops.
///
/// - `pace: live` sends each buffer when its time comes on the graph's
///   clock (the first buffer sets the origin), with a deadline `latency`
///   later; `fast` sends as fast as downstream takes (no deadline).
/// - A file that does not open, or lacks a selected stream, or whose codec
///   this FFmpeg cannot decode, refuses the graph when it is created.
/// - Video in I420 or NV12 decodes straight into the buffers that go
///   downstream (`DecodeLoans`); other formats are converted to I420.
/// - A truncated file ends its streams at the last good frame. A packet the
///   decoder refuses, or a frame it marks damaged, is dropped and counted
///   as `corrupt`; the first decoder message is kept in `failureReason`.
///
/// Threading: `negotiate` on the thread that creates the graph; the rest on
/// its queue's scheduler thread.
public final class MediaSource: BufferSource, FormatAware, FailureReporting {
    /// Which streams it decodes; their out pads go in this order (video,
    /// then audio). A value; any thread.
    public enum Streams: String, Sendable, CaseIterable {
        case video, audio
        case videoAndAudio = "video+audio"

        var kinds: [AVMediaType] {
            switch self {
            case .video: [AVMEDIA_TYPE_VIDEO]
            case .audio: [AVMEDIA_TYPE_AUDIO]
            case .videoAndAudio: [AVMEDIA_TYPE_VIDEO, AVMEDIA_TYPE_AUDIO]
            }
        }
    }

    /// How fast it sends (a value; any thread).
    public enum Pace: String, Sendable, CaseIterable { case live, fast }

    /// What to read and how (a value; any thread).
    public struct Options: Sendable {
        public var path: String
        public var streams: Streams = .video
        public var pace: Pace = .fast
        /// Start again at `start` after the end, until `duration` (or a stop).
        public var loop = false
        /// Seconds into the file to begin at.
        public var start: Double = 0
        /// Seconds to send; 0 sends to the end.
        public var duration: Double = 0
        /// Decoder threads; 0 lets FFmpeg choose.
        public var threads = 0
        /// Seconds from a buffer's time to its deadline (`live`).
        public var latency: Double = 0.1

        public init(path: String) { self.path = path }
    }

    /// One decoded stream and its out pad.
    private final class Track {
        let kind: AVMediaType
        let index: Int32
        let pad: Int
        let decoder: Codec
        let timeBase: AVRational
        let rate: FrameRate
        let frame = DecodedFrame()
        /// `frame` holds a decoded frame not yet sent (no buffer was free).
        var frameReady = false
        var ended = false
        var sent: Int64 = 0
        /// Converts a decoded pixel format QueueGraph has no name for into I420.
        lazy var converter = Scaler(threads: 1)

        init(kind: AVMediaType, index: Int32, pad: Int, decoder: Codec, timeBase: AVRational, rate: FrameRate) {
            (self.kind, self.index, self.pad, self.decoder, self.timeBase, self.rate) = (kind, index, pad, decoder, timeBase, rate)
        }
    }

    /// Buffers a `mediasrc`'s own creator has beyond its `count`: the
    /// decoder's, for the frames it decodes into and keeps for reference.
    public static let loanBuffers = 8

    public let options: Options
    public private(set) var failureReason: String?
    /// Packets and frames dropped as damaged.
    public private(set) var corrupt = 0
    /// Video frames the decoder wrote straight into their buffers, and
    /// video frames copied (or converted) into theirs.
    public private(set) var decodedInPlace = 0, copied = 0
    private var file: InputFile?
    private var tracks: [Track] = []
    private let packet = Packet()
    private let lent = DecodedFrame()
    private let lender = Lender()
    /// Buffers the video decoder decodes into.
    private let loans = DecodeLoans()
    private var pending: (buffer: Buffer, pad: Int, due: UInt64)?
    /// Monotonic nanoseconds at media time 0 (`live`), set by the first buffer.
    private var origin: UInt64?
    /// The file's first instant, in nanoseconds, where media time 0 is.
    private var startNanoseconds: Int64 = 0
    /// Media time added on each loop, and the end of the furthest buffer this pass.
    private var loopOffset: Int64 = 0
    private var passEnd: Int64 = 0
    private var fileEnded = false

    public init(_ options: Options) { self.options = options }

    /// Opens the file and its decoders (once); the formats of its pads.
    public func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] {
        do throws(MediaError) { try open() } catch { throw FormatRefusal("\(error)") }
        return tracks.map { track in
            let c = track.decoder.context.pointee
            if track.kind == AVMEDIA_TYPE_VIDEO {
                let format = PixelFormat(ffmpeg: c.pix_fmt) ?? .i420
                return .video(VideoFormat(format, width: Int(c.width), height: Int(c.height), rate: track.rate))
            }
            return .audio(AudioFormat(SampleFormat(ffmpeg: c.sample_fmt), rate: Int(c.sample_rate), channels: Int(c.ch_layout.nb_channels)))
        }
    }

    private func open() throws(MediaError) {
        guard file == nil else { return }
        let file = try InputFile(path: options.path)
        var tracks: [Track] = []
        for (pad, kind) in options.streams.kinds.enumerated() {
            let what = kind == AVMEDIA_TYPE_VIDEO ? "video" : "audio"
            let index = try file.bestStream(kind, named: what)
            let stream = file.stream(index)
            let decoder = try Codec(decoding: stream, what: what, of: options.path, threads: options.threads,
                                    loans: kind == AVMEDIA_TYPE_VIDEO ? loans : nil)
            if kind == AVMEDIA_TYPE_AUDIO && SampleFormat(ffmpeg: decoder.context.pointee.sample_fmt) == nil {
                throw MediaError("the audio of '\(options.path)' decodes to \(String(cString: av_get_sample_fmt_name(decoder.context.pointee.sample_fmt))), which QueueGraph does not carry")
            }
            let guess = av_guess_frame_rate(file.context, stream, nil)
            let rate = guess.num > 0 && guess.den > 0 ? FrameRate(Int(guess.num), Int(guess.den)) : FrameRate(25)
            tracks.append(Track(kind: kind, index: index, pad: pad, decoder: decoder, timeBase: stream.pointee.time_base, rate: rate))
        }
        let fileStart = file.context!.pointee.start_time
        startNanoseconds = (fileStart == noTimestamp ? 0 : fileStart * 1_000) + Int64(options.start * 1e9)
        (self.file, self.tracks) = (file, tracks)
        if options.start > 0 { try seekToStart() }
    }

    /// Seeks to `start` seconds after the file's first instant.
    private func seekToStart() throws(MediaError) {
        try file!.seek(to: options.start + Double(max(file!.context!.pointee.start_time, 0)) / Double(AV_TIME_BASE))
    }

    public func produce(context: ProcessContext) -> ProduceResult {
        if file == nil {   // made without negotiation (a harness): open now
            do throws(MediaError) { try open() } catch {
                failureReason = failureReason ?? "\(error)"
                return .endOfStream
            }
        }
        if let pending {
            if pending.due > context.now { return .waitingUntil(pending.due) }
            if context.sendTo(pending.pad, pending.buffer) == .full { return .produced }
            self.pending = nil
            return .produced
        }
        while true {
            for track in tracks where track.pad < context.outPadCount && !track.ended {
                if !track.frameReady {
                    let code = avcodec_receive_frame(track.decoder.context, track.frame.pointer)
                    if code == eagain { continue }
                    if code == endOfFile {
                        track.ended = true
                        continue
                    }
                    if code < 0 {
                        countCorrupt(MediaError("cannot decode", code: code), context: context)
                        continue
                    }
                    if qg_frame_is_corrupt(track.frame.pointer) != 0 {
                        countCorrupt(MediaError("a damaged frame"), context: context)
                        av_frame_unref(track.frame.pointer)
                        continue
                    }
                    track.frameReady = true
                }
                if let result = emit(track, context: context) { return result }   // nil: skipped (before the start, or past the duration)
            }
            if tracks.allSatisfy({ $0.ended || $0.pad >= context.outPadCount }) {
                guard options.loop, !pastDuration(passEnd + loopOffset), passEnd > 0 else { return .endOfStream }
                restart()
                continue
            }
            if fileEnded {   // the decoders drain; a decoder that was already drained ends here
                for track in tracks where !track.ended && !track.frameReady && avcodec_send_packet(track.decoder.context, nil) == endOfFile {
                    track.ended = true
                }
                continue
            }
            if let video = tracks.first(where: { $0.kind == AVMEDIA_TYPE_VIDEO && $0.pad < context.outPadCount }) {
                loans.topUp(context: context, pad: video.pad)
            }
            readPacket(context: context)
        }
    }

    /// Reads one packet and gives it to its stream's decoder; at the end
    /// (or a read error: a truncated file) the decoders are told to drain.
    private func readPacket(context: ProcessContext) {
        let more: Bool
        do throws(MediaError) { more = try file!.read(into: packet) } catch {
            if failureReason == nil { failureReason = "\(error)" }
            more = false
        }
        guard more else {
            fileEnded = true
            for track in tracks { avcodec_send_packet(track.decoder.context, nil) }
            return
        }
        defer { av_packet_unref(packet.pointer) }
        guard let track = tracks.first(where: { $0.index == packet.pointer.pointee.stream_index }), !track.ended,
              track.pad < context.outPadCount else { return }
        let code = avcodec_send_packet(track.decoder.context, packet.pointer)
        if code < 0 && code != eagain && code != endOfFile { countCorrupt(MediaError("a packet the decoder refused", code: code), context: context) }
    }

    private func countCorrupt(_ error: MediaError, context: ProcessContext) {
        corrupt += 1
        context.countDrop(.corrupt)
        let message = takeFFmpegError().map { "\(error) (\($0))" } ?? "\(error)"
        if failureReason == nil { failureReason = "corrupt input in '\(options.path)': \(message)" }
    }

    private func pastDuration(_ mediaTime: Int64) -> Bool { options.duration > 0 && mediaTime >= Int64(options.duration * 1e9) }

    /// Seeks back to the start for another pass; the timeline runs on.
    private func restart() {
        loopOffset += passEnd
        passEnd = 0
        fileEnded = false
        do throws(MediaError) { try seekToStart() } catch {
            if failureReason == nil { failureReason = "\(error)" }
            return
        }
        for track in tracks {
            avcodec_flush_buffers(track.decoder.context)
            track.ended = false
        }
    }

    /// Puts the track's decoded frame into a buffer and sends it (or waits
    /// for its time); nil when the frame is skipped.
    private func emit(_ track: Track, context: ProcessContext) -> ProduceResult? {
        let decoded = track.frame.pointer
        let timestamp = decoded.pointee.best_effort_timestamp
        let ptsNanoseconds = timestamp == noTimestamp
            ? track.sent * track.rate.period : av_rescale_q(timestamp, track.timeBase, AVRational(num: 1, den: 1_000_000_000))
        let passTime = ptsNanoseconds - startNanoseconds
        let mediaTime = passTime + loopOffset
        let durationUnits = decoded.pointee.pkt_duration > 0 ? decoded.pointee.pkt_duration
            : av_rescale_q(track.rate.period, AVRational(num: 1, den: 1_000_000_000), track.timeBase)
        let durationNanoseconds = av_rescale_q(durationUnits, track.timeBase, AVRational(num: 1, den: 1_000_000_000))
        if passTime < 0 || pastDuration(mediaTime) {   // before the start (decoded from the key frame before it), or done
            if pastDuration(mediaTime) { track.ended = true }
            track.frameReady = false
            av_frame_unref(decoded)
            return nil
        }
        let isVideo = track.kind == AVMEDIA_TYPE_VIDEO
        let (width, height, samples) = (Int(decoded.pointee.width), Int(decoded.pointee.height), Int(decoded.pointee.nb_samples))
        let channels = Int(decoded.pointee.ch_layout.nb_channels)
        let decodedPixels = PixelFormat(ffmpeg: AVPixelFormat(decoded.pointee.format))   // nil: converted to I420
        let pixelFormat = decodedPixels ?? .i420
        let sampleFormat = SampleFormat(ffmpeg: AVSampleFormat(decoded.pointee.format)) ?? .fltp
        let loan = isVideo ? loans.borrowed(decoded) : nil
        let buffer: Buffer
        if let (lent, _) = loan {   // decoded into it: the decoder may keep it for reference, so it is shared
            buffer = lent
            context.share(buffer)
        } else if isVideo {   // a copy, in a block of the loans' size when they have one (one size of block)
            let size = Frame.byteCount(width: width, height: height, format: pixelFormat)
            guard let copy = context.acquireBuffer(size: max(size, loans.blockSize), pad: track.pad) ?? loans.takeSpare(size: size) else { return .waitingForBuffer }
            buffer = copy
        } else {
            guard let chunk = context.acquireBuffer(size: AudioChunk.byteCount(format: sampleFormat, channels: channels, samples: samples), pad: track.pad)
            else { return .waitingForBuffer }
            buffer = chunk
        }
        let now = context.now
        if options.pace == .live && origin == nil { origin = now &- UInt64(max(0, mediaTime)) }
        let due = options.pace == .live ? origin! &+ UInt64(max(0, mediaTime)) : 0
        let pts = av_rescale_q(mediaTime, AVRational(num: 1, den: 1_000_000_000), track.timeBase)
        if isVideo {
            let deadline = options.pace == .live ? due &+ UInt64(options.latency * 1e9) : UInt64.max
            let job = FrameJob(tick: track.sent, number: track.rate.frame(at: mediaTime), mediaTime: mediaTime, deadline: deadline, rate: track.rate)
            let frame = Frame.make(in: buffer, width: width, height: height, format: pixelFormat, job: job, layout: loan?.1)
            (frame.pts, frame.duration, frame.timeBase) = (pts, durationUnits, (track.timeBase.num, track.timeBase.den))
            if loan != nil {
                decodedInPlace += 1
            } else {
                copied += 1
                frame.lend(to: lent.pointer, lender: decodedPixels == nil ? lender : nil)   // a copy needs no ref; libswscale's frames do
                if decodedPixels != nil {
                    av_frame_copy(lent.pointer, decoded)
                } else {
                    do throws(MediaError) { try track.converter.scale(decoded, into: lent.pointer) } catch {
                        if failureReason == nil { failureReason = "\(error)" }
                    }
                }
                lender.takeBack(lent.pointer)
            }
        } else {
            let chunk = AudioChunk.make(in: buffer, format: sampleFormat, rate: Int(decoded.pointee.sample_rate), channels: channels,
                                        samples: samples, timeBase: (track.timeBase.num, track.timeBase.den), pts: pts, mediaTime: mediaTime)
            for plane in 0..<chunk.planeCount {
                chunk.plane(plane).update(from: decoded.pointee.extended_data[plane]!, count: chunk.bytesPerPlane)
            }
        }
        buffer.timestamp = options.pace == .live ? due : UInt64(max(0, mediaTime))
        buffer.sequence = UInt64(track.sent)
        track.sent += 1
        track.frameReady = false
        av_frame_unref(decoded)
        passEnd = max(passEnd, passTime + durationNanoseconds)
        if due > now {
            pending = (buffer, track.pad, due)
            return .waitingUntil(due)
        }
        if context.sendTo(track.pad, buffer) == .full { pending = (buffer, track.pad, 0) }
        return .produced
    }

    /// A buffer that was waiting for its time when the stream stopped goes
    /// back to its creator, and so do the decoders' loans as they are freed.
    public func endOfStream(context: ProcessContext) {
        if let pending { context.doneBuffer(pending.buffer) }
        pending = nil
        loans.close(context: context) { tracks = [] }
    }
}
