import CFFmpeg
import QueueGraphCore
import QueueGraphRender
#if canImport(Glibc)
import Glibc
#endif

// Thin owners of FFmpeg's C objects: each class frees its object in
// `deinit`, so an AVPacket, AVFrame or context cannot leak or be freed
// twice from Swift. Threading: each object is used by one thread at a time
// (the processor's).

/// An FFmpeg call that failed, with FFmpeg's own message (a value; any thread).
public struct MediaError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }

    /// `what` followed by FFmpeg's text for `code`.
    init(_ what: String, code: Int32) {
        var text = [CChar](repeating: 0, count: 256)
        av_strerror(code, &text, text.count)
        self.init("\(what): \(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
    }
}

@discardableResult
func check(_ code: Int32, _ what: @autoclosure () -> String) throws(MediaError) -> Int32 {
    if code < 0 { throw MediaError(what(), code: code) }
    return code
}

let eagain = qg_averror_eagain()
let endOfFile = qg_averror_eof()
let noTimestamp = qg_nopts()

/// Installs the log hook that keeps FFmpeg's last error (once, any thread).
/// `QG_AV_LOG` sets what FFmpeg prints: quiet, fatal (the default), error, warning, info, debug.
let ffmpegLog: Void = {
    let levels: [String: Int32] = ["quiet": AV_LOG_QUIET, "fatal": AV_LOG_FATAL, "error": AV_LOG_ERROR,
                                   "warning": AV_LOG_WARNING, "info": AV_LOG_INFO, "debug": AV_LOG_DEBUG]
    let level = getenv("QG_AV_LOG").flatMap { levels[String(cString: $0)] } ?? AV_LOG_FATAL
    qg_av_log_install(level)
}()

/// FFmpeg's last error message since the previous call ("h264: …"), or nil.
func takeFFmpegError() -> String? {
    var text = [CChar](repeating: 0, count: 512)
    guard qg_av_take_error(&text, text.count) != 0 else { return nil }
    return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A codec tag as its four characters (unprintable ones as '.').
func fourCC(_ tag: UInt32) -> String {
    String((0..<4).map { i in
        let byte = UInt8(truncatingIfNeeded: tag >> (8 * UInt32(i)))
        return (32..<127).contains(byte) ? Character(Unicode.Scalar(byte)) : "."
    })
}

/// Owns an AVPacket.
final class Packet {
    let pointer: UnsafeMutablePointer<AVPacket>
    init() { pointer = av_packet_alloc()! }
    deinit { var p: UnsafeMutablePointer<AVPacket>? = pointer; av_packet_free(&p) }
}

/// Owns an AVFrame.
final class DecodedFrame {
    let pointer: UnsafeMutablePointer<AVFrame>
    init() { pointer = av_frame_alloc()! }
    deinit { var p: UnsafeMutablePointer<AVFrame>? = pointer; av_frame_free(&p) }
}

/// Owns an opened input (AVFormatContext), its streams read.
final class InputFile {
    private(set) var context: UnsafeMutablePointer<AVFormatContext>?
    let path: String

    init(path: String) throws(MediaError) {
        _ = ffmpegLog
        self.path = path
        var opened: UnsafeMutablePointer<AVFormatContext>?
        try check(avformat_open_input(&opened, path, nil, nil), "cannot open '\(path)'")
        context = opened
        try check(avformat_find_stream_info(opened, nil), "cannot read the streams of '\(path)'")
    }

    deinit { avformat_close_input(&context) }

    func stream(_ index: Int32) -> UnsafeMutablePointer<AVStream> { context!.pointee.streams[Int(index)]! }

    /// The best stream of `type`, or why there is none (an unsupported codec is named).
    func bestStream(_ type: AVMediaType, named: String) throws(MediaError) -> Int32 {
        let index = av_find_best_stream(context, type, -1, -1, nil, 0)
        if index >= 0 { return index }
        let found = (0..<Int32(context!.pointee.nb_streams)).map { i in
            let parameters = stream(i).pointee.codecpar!.pointee
            let type = av_get_media_type_string(parameters.codec_type).map { String(cString: $0) } ?? "data"
            return "\(type) \(String(cString: avcodec_get_name(parameters.codec_id)))"
        }
        throw MediaError("'\(path)' has no \(named) stream (it has: \(found.isEmpty ? "none" : found.joined(separator: ", ")))")
    }

    /// Reads the next packet; false at the end of the file.
    func read(into packet: Packet) throws(MediaError) -> Bool {
        let code = av_read_frame(context, packet.pointer)
        if code == endOfFile { return false }
        try check(code, "cannot read '\(path)'")
        return true
    }

    /// Seeks every stream to the key frame at or before `seconds`.
    func seek(to seconds: Double) throws(MediaError) {
        let target = Int64(seconds * Double(AV_TIME_BASE))
        try check(avformat_seek_file(context, -1, Int64.min, target, target, 0), "cannot seek in '\(path)'")
    }
}

/// Owns an opened codec context (a decoder or an encoder).
final class Codec {
    let context: UnsafeMutablePointer<AVCodecContext>

    /// A decoder for `stream` (the `what` of `path`, for messages), with
    /// `threads` threads (0: as many as FFmpeg likes), decoding into `loans`
    /// where its codec allows.
    init(decoding stream: UnsafeMutablePointer<AVStream>, what: String, of path: String, threads: Int, loans: DecodeLoans? = nil) throws(MediaError) {
        let parameters = stream.pointee.codecpar!
        let name = String(cString: avcodec_get_name(parameters.pointee.codec_id))
        guard let codec = avcodec_find_decoder(parameters.pointee.codec_id) else {
            let codec = parameters.pointee.codec_id == AV_CODEC_ID_NONE ? "a codec FFmpeg does not know" : "the codec '\(name)'"
            throw MediaError("the \(what) of '\(path)' is in \(codec) (tag '\(fourCC(parameters.pointee.codec_tag))'), which this FFmpeg cannot decode")
        }
        context = avcodec_alloc_context3(codec)!
        try check(avcodec_parameters_to_context(context, parameters), "cannot set up the '\(name)' decoder")
        context.pointee.pkt_timebase = stream.pointee.time_base
        context.pointee.thread_count = Int32(threads)
        loans?.attach(to: context, codec: codec)
        try check(avcodec_open2(context, codec, nil), "cannot open the '\(name)' decoder")
        loans?.prepare(for: context)
    }

    /// An encoder by FFmpeg name ("libx264"); `configure` sets its fields and
    /// options before it opens.
    init(encoder name: String, configure: (UnsafeMutablePointer<AVCodecContext>) throws(MediaError) -> Void) throws(MediaError) {
        _ = ffmpegLog
        guard let codec = avcodec_find_encoder_by_name(name) else { throw MediaError("this FFmpeg has no '\(name)' encoder") }
        context = avcodec_alloc_context3(codec)!
        try configure(context)
        try check(avcodec_open2(context, codec, nil), "cannot open the '\(name)' encoder")
    }

    deinit { var p: UnsafeMutablePointer<AVCodecContext>? = context; avcodec_free_context(&p) }
}

/// Sets a codec's private option ("crf", "preset") before it opens; an unknown one is an error.
func setOption(_ context: UnsafeMutablePointer<AVCodecContext>, _ option: String, _ value: String) throws(MediaError) {
    try check(av_opt_set(context.pointee.priv_data, option, value, 0), "cannot set \(option) = \(value)")
}

/// Owns a libswscale context for one conversion, made again when the sizes or formats change.
final class Scaler {
    private var context: OpaquePointer?
    /// Source and target width, height and format the context was made for.
    private var key: (Int32, Int32, Int32, Int32, Int32, Int32)?
    let threads: Int

    init(threads: Int) { self.threads = threads }
    deinit { sws_freeContext(context) }

    /// Converts `source` into `target` (both AVFrames with sizes and formats set).
    func scale(_ source: UnsafePointer<AVFrame>, into target: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        let s = source.pointee, t = target.pointee
        let wanted = (s.width, s.height, s.format, t.width, t.height, t.format)
        if key.map({ $0 != wanted }) ?? true {
            sws_freeContext(context)
            context = sws_alloc_context()
            for (name, value) in [("srcw", s.width), ("srch", s.height), ("src_format", s.format),
                                  ("dstw", t.width), ("dsth", t.height), ("dst_format", t.format), ("threads", Int32(threads))] {
                av_opt_set_int(UnsafeMutableRawPointer(context), name, Int64(value), 0)
            }
            av_opt_set_int(UnsafeMutableRawPointer(context), "sws_flags", Int64(SWS_BICUBIC), 0)
            try check(sws_init_context(context, nil, nil), "cannot convert \(s.width)×\(s.height) to \(t.width)×\(t.height)")
            key = wanted
        }
        try check(sws_scale_frame(context, target, source), "cannot convert the frame")
    }
}

extension PixelFormat {
    /// FFmpeg's pixel format.
    var ffmpeg: AVPixelFormat {
        switch self {
        case .rgba: AV_PIX_FMT_RGBA
        case .bgra: AV_PIX_FMT_BGRA
        case .i420: AV_PIX_FMT_YUV420P
        case .nv12: AV_PIX_FMT_NV12
        }
    }

    init?(ffmpeg: AVPixelFormat) {
        switch ffmpeg {
        case AV_PIX_FMT_RGBA: self = .rgba
        case AV_PIX_FMT_BGRA: self = .bgra
        case AV_PIX_FMT_YUV420P: self = .i420
        case AV_PIX_FMT_NV12: self = .nv12
        default: return nil
        }
    }
}

extension SampleFormat {
    /// FFmpeg's sample format.
    var ffmpeg: AVSampleFormat {
        switch self {
        case .u8: AV_SAMPLE_FMT_U8
        case .s16: AV_SAMPLE_FMT_S16
        case .s32: AV_SAMPLE_FMT_S32
        case .flt: AV_SAMPLE_FMT_FLT
        case .dbl: AV_SAMPLE_FMT_DBL
        case .u8p: AV_SAMPLE_FMT_U8P
        case .s16p: AV_SAMPLE_FMT_S16P
        case .s32p: AV_SAMPLE_FMT_S32P
        case .fltp: AV_SAMPLE_FMT_FLTP
        case .dblp: AV_SAMPLE_FMT_DBLP
        }
    }

    init?(ffmpeg: AVSampleFormat) {
        guard let format = AudioChunk.formats.first(where: { $0.ffmpeg == ffmpeg }) else { return nil }
        self = format
    }
}

/// AVBufferRefs over QueueGraph buffer memory, one per block, made on a
/// block's first loan and reused after: lending a frame to FFmpeg then
/// allocates nothing here. The refs do not own the memory (freeing them
/// frees nothing but the ref).
///
/// Threading: the processor's thread.
final class Lender {
    private var refs: [UnsafeMutableRawPointer: UnsafeMutablePointer<AVBufferRef>] = [:]

    deinit { for var ref in refs.values.map(Optional.some) { av_buffer_unref(&ref) } }

    /// The ref over `bytes` bytes at `base`.
    func ref(_ base: UnsafeMutableRawPointer, bytes: Int) -> UnsafeMutablePointer<AVBufferRef> {
        if let ref = refs[base], ref.pointee.size >= bytes { return ref }
        if var old = refs[base].map(Optional.some) { av_buffer_unref(&old) }
        let ref = qg_av_lend(base.assumingMemoryBound(to: UInt8.self), bytes)!
        refs[base] = ref
        return ref
    }

    /// Ends a loan made by `Frame.lend`: the frame lets go of the ref without freeing it.
    func takeBack(_ avFrame: UnsafeMutablePointer<AVFrame>) {
        avFrame.pointee.buf.0 = nil
        av_frame_unref(avFrame)
    }
}

extension Frame {
    /// Points `avFrame` at this frame's planes, for one FFmpeg call that
    /// must not keep them. With a `lender`, `buf` holds the lender's ref over
    /// the buffer (calls that want reference-counted frames, such as
    /// `sws_scale_frame`, would otherwise copy or allocate); end the loan
    /// with `lender.takeBack`, else with `av_frame_unref`.
    func lend(to avFrame: UnsafeMutablePointer<AVFrame>, lender: Lender?) {
        av_frame_unref(avFrame)
        avFrame.pointee.width = Int32(width)
        avFrame.pointee.height = Int32(height)
        avFrame.pointee.format = pixelFormat.ffmpeg.rawValue
        withUnsafeMutableBytes(of: &avFrame.pointee.data) { data in
            withUnsafeMutableBytes(of: &avFrame.pointee.linesize) { linesize in
                for i in 0..<planeCount {
                    let (bytes, stride) = plane(i)
                    data.storeBytes(of: bytes, toByteOffset: i * MemoryLayout<UnsafeMutablePointer<UInt8>>.stride, as: UnsafeMutablePointer<UInt8>.self)
                    linesize.storeBytes(of: Int32(stride), toByteOffset: i * 4, as: Int32.self)
                }
            }
        }
        if let lender { avFrame.pointee.buf.0 = lender.ref(buffer.payload.baseAddress!, bytes: buffer.payload.capacity) }
    }
}
