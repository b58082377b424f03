import CFFmpeg
import QueueGraphCore

/// Converts audio to another sample format, rate and channel count with
/// libswresample (the graph files' `audioresample`). Each chunk goes into a
/// new buffer from the queue's creator (use `buffers: upstream`); the
/// output's timestamps count its samples from the first chunk's pts, and
/// the samples the resampler still holds go out at the end of the stream.
///
/// Threading: as `BufferProcessor`; `negotiate` on the thread that creates the graph.
public final class AudioResampler: BufferProcessor, FormatAware, FailureReporting {
    /// What to make; a nil field keeps the input's.
    public let target: AudioFormat
    public private(set) var failureReason: String?
    private var context: OpaquePointer?
    private var input: AudioFormat?
    /// The output rate and format in use, and the next output pts (in 1/rate).
    private var output = AudioFormat()
    private var nextPts: Int64 = 0

    public init(_ target: AudioFormat) { self.target = target }
    deinit { swr_free(&context) }

    public func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] {
        try FormatRefusal.check(arriving, "audio") { if case .audio = $0 { true } else { false } }
        guard case .audio(let audio)? = arriving.first else { return [.audio(target)] }
        return [.audio(AudioFormat(target.sampleFormat ?? audio.sampleFormat, rate: target.rate ?? audio.rate, channels: target.channels ?? audio.channels))]
    }

    public func process(_ buffer: Buffer, context processContext: ProcessContext) -> ProcessResult {
        guard let chunk = AudioChunk(buffer) else { return .failed }
        do throws(MediaError) {
            if input != chunk.format || context == nil { try setUp(for: chunk) }
            try convert(chunk, context: processContext)
        } catch {
            if failureReason == nil { failureReason = "\(error)" }
            return .failed
        }
        processContext.doneBuffer(buffer)
        return .ok
    }

    /// Sends what the resampler still holds.
    public func endOfStream(context processContext: ProcessContext) {
        guard context != nil else { return }
        do throws(MediaError) { try convert(nil, context: processContext) } catch {
            if failureReason == nil { failureReason = "\(error)" }
        }
    }

    private func setUp(for chunk: AudioChunk) throws(MediaError) {
        swr_free(&context)
        output = AudioFormat(target.sampleFormat ?? chunk.sampleFormat, rate: target.rate ?? chunk.rate, channels: target.channels ?? chunk.channels)
        var inLayout = AVChannelLayout(), outLayout = AVChannelLayout()
        av_channel_layout_default(&inLayout, Int32(chunk.channels))
        av_channel_layout_default(&outLayout, Int32(output.channels!))
        defer {
            av_channel_layout_uninit(&inLayout)
            av_channel_layout_uninit(&outLayout)
        }
        try check(swr_alloc_set_opts2(&context, &outLayout, output.sampleFormat!.ffmpeg, Int32(output.rate!),
                                      &inLayout, chunk.sampleFormat.ffmpeg, Int32(chunk.rate), 0, nil), "cannot set up the resampler")
        try check(swr_init(context), "cannot resample \(chunk.format) to \(output)")
        if input == nil {
            nextPts = av_rescale_q(chunk.pts, AVRational(num: chunk.timeBase.numerator, den: chunk.timeBase.denominator),
                                   AVRational(num: 1, den: Int32(output.rate!)))
        }
        input = chunk.format
    }

    /// Resamples `chunk` into a new chunk and sends it (nil: flush what the resampler holds).
    private func convert(_ chunk: AudioChunk?, context processContext: ProcessContext) throws(MediaError) {
        let (format, rate, channels) = (output.sampleFormat!, output.rate!, output.channels!)
        let samples = Int32(chunk?.samples ?? 0)
        let room = Int(swr_get_out_samples(context, samples))
        guard room > 0 else { return }
        guard let out = processContext.acquireBuffer(size: AudioChunk.byteCount(format: format, channels: channels, samples: room)) else {
            throw MediaError("no output buffer (its creator has none free; use 'buffers: upstream')")
        }
        // Resampled into planes laid out for `room` samples; the header is written again below with the count made.
        let roomy = AudioChunk.make(in: out, format: format, rate: rate, channels: channels, samples: room, timeBase: (1, Int32(rate)),
                                    pts: nextPts, mediaTime: nextPts * 1_000_000_000 / Int64(rate))
        let made = Int(roomy.withPlanes { planes in
            let targets = UnsafeMutableRawPointer(planes).assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self)
            return if let chunk {
                chunk.withPlanes { swr_convert(context, targets, Int32(room), $0, samples) }
            } else {
                swr_convert(context, targets, Int32(room), nil, 0)
            }
        })
        guard made > 0 else {
            processContext.doneBuffer(out)
            try check(Int32(made), "cannot resample")
            return
        }
        // Moves the planes from where `room` samples put them to where `made` samples do (memmove: they overlap).
        let resampled = AudioChunk.make(in: out, format: format, rate: rate, channels: channels, samples: made, timeBase: (1, Int32(rate)),
                                        pts: nextPts, mediaTime: nextPts * 1_000_000_000 / Int64(rate))
        let base = out.payload.baseAddress!
        for plane in 1..<resampled.planeCount {
            let from = AudioChunk.planeOffset(plane, format: format, channels: channels, samples: room)
            UnsafeMutableRawPointer(resampled.plane(plane)).copyMemory(from: base + from, byteCount: resampled.bytesPerPlane)
        }
        out.sequence = UInt64(nextPts)
        nextPts += Int64(made)
        passOn(out, context: processContext)
    }
}
