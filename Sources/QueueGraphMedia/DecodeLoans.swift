import CFFmpeg
import QueueGraphCore
import QueueGraphRender

/// Lends QueueGraph buffers to a video decoder, so that it decodes each
/// frame straight into the buffer that goes downstream (FFmpeg's
/// `get_buffer2`) instead of into its own pool and then a copy.
///
/// - The source keeps a few spare buffers here (`topUp`); the decoder takes
///   one for each frame it starts, on whichever of its threads starts it. A
///   frame in a format QueueGraph does not carry as it is (it is converted),
///   or that finds no spare, decodes into FFmpeg's memory and is copied.
/// - Each loan is an AVBufferRef that holds the buffer. The decoder keeps the
///   frames it predicts from, often after they were sent on: such a buffer
///   is shared (read-only downstream; a `reuse` queue works on a copy) until
///   the decoder lets go, and its hold is given up on whichever thread that
///   happens.
/// - Spares and loans together stay within `MediaSource.loanBuffers` (which
///   a `mediasrc`'s creator has beyond its count) and half the creator's
///   buffers, so that the copies and the queues downstream keep the rest.
/// - `close` takes back the spares and, as the decoder is freed, every loan.
///
/// Threading: `lend` and the loans' release on FFmpeg's threads; the rest on
/// the source's thread.
final class DecodeLoans: @unchecked Sendable {
    private struct State {
        var spares: [Buffer] = []
        /// Buffers the decoder holds.
        var lent: [Buffer] = []
        /// Bytes a frame of the decoder's size and format takes (0: not known yet).
        var blockSize = 0
        /// Set by `close`: loans that come back go to `returned`.
        var closing = false
        var returned: [Buffer] = []

        /// A spare of at least `bytes`, taken out of the spares.
        mutating func takeSpare(atLeast bytes: Int) -> Buffer? {
            spares.firstIndex { $0.payload.capacity >= bytes }.map { spares.remove(at: $0) }
        }
    }
    private let state = Locked(State())
    /// Spares the source keeps: one per frame the decoder can start at once
    /// (0: the decoder takes no loans).
    private var spareCount = 0
    private var attached = false
    /// The most buffers spare or lent at once (known from the first buffer).
    private var budget: Int?

    /// Hands `decoder` (before it opens) to the loans, if its codec lets
    /// frames be allocated outside it (`AV_CODEC_CAP_DR1`).
    func attach(to decoder: UnsafeMutablePointer<AVCodecContext>, codec: UnsafePointer<AVCodec>) {
        guard codec.pointee.capabilities & AV_CODEC_CAP_DR1 != 0 else { return }
        decoder.pointee.opaque = Unmanaged.passUnretained(self).toOpaque()
        decoder.pointee.get_buffer2 = decodeIntoLoan
        qg_codec_allow_threaded_callbacks(decoder)
        attached = true
    }

    /// Sizes the spares for an opened decoder.
    func prepare(for decoder: UnsafeMutablePointer<AVCodecContext>) {
        guard attached else { return }
        spareCount = Int(max(1, decoder.pointee.thread_count)) + 1
        let c = decoder.pointee
        if let format = PixelFormat(ffmpeg: c.pix_fmt), let (_, bytes) = DecodeLoans.layout(decoder, width: c.coded_width, height: c.coded_height, format: format) {
            state.withLock { $0.blockSize = bytes }
        }
    }

    /// The decoder's padded layout for a frame (what `avcodec_default_get_buffer2`
    /// would allocate: rows and their count aligned as the codec needs, and
    /// slack after each plane), and the bytes it takes; nil for formats other
    /// than I420 and NV12 (the render nodes read RGBA frames packed).
    static func layout(_ decoder: UnsafeMutablePointer<AVCodecContext>, width: Int32, height: Int32, format: PixelFormat) -> (Frame.Layout, bytes: Int)? {
        guard format.isYUV, width > 0, height > 0 else { return nil }
        var (w, h) = (width, height)
        var strideAlign: (Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32) = (0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &strideAlign) { avcodec_align_dimensions2(decoder, &w, &h, $0.baseAddress!.assumingMemoryBound(to: Int32.self)) }
        let align = max(16, Int(strideAlign.0))
        // As FFmpeg's own pool: the narrowest rows whose every plane's stride is aligned.
        let rowAlign = format == .i420 ? 2 * align : align
        let luma = (Int(w) + rowAlign - 1) / rowAlign * rowAlign
        let chroma = format == .i420 ? luma / 2 : luma
        let (rows, chromaRows) = (Int(h), (Int(h) + 1) / 2)
        func after(_ end: Int) -> Int { (end + 16 + align + 63) & ~63 }   // FFmpeg's slack, then a cache line
        let o1 = after(Frame.headerSize + luma * rows)
        let o2 = format == .i420 ? after(o1 + chroma * chromaRows) : 0
        let end = after((format == .i420 ? o2 : o1) + chroma * chromaRows)
        return (Frame.Layout(offsets: (Frame.headerSize, o1, o2), strides: (luma, chroma, format == .i420 ? chroma : 0)), end)
    }

    /// Points `frame` (in `get_buffer2`) into a spare; false when it cannot
    /// (then FFmpeg allocates). Any thread.
    fileprivate func lend(into frame: UnsafeMutablePointer<AVFrame>, for decoder: UnsafeMutablePointer<AVCodecContext>) -> Bool {
        guard frame.pointee.hw_frames_ctx == nil, let format = PixelFormat(ffmpeg: AVPixelFormat(frame.pointee.format)),
              let (layout, bytes) = DecodeLoans.layout(decoder, width: frame.pointee.width, height: frame.pointee.height, format: format)
        else { return false }
        let spare: Buffer? = state.withLock { state in
            state.blockSize = bytes
            guard !state.closing, let buffer = state.takeSpare(atLeast: bytes) else { return nil }
            state.lent.append(buffer)
            return buffer
        }
        guard let spare, let base = spare.payload.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return false }
        let owner = Unmanaged.passRetained(self)   // the loans outlive their last loan
        guard let ref = av_buffer_create(base, spare.payload.capacity, releaseLoan, owner.toOpaque(), 0) else {
            owner.release()
            state.withLock { state in
                state.lent.removeAll { $0 == spare }
                state.spares.append(spare)
            }
            return false
        }
        frame.pointee.buf.0 = ref
        frame.pointee.data.0 = base + layout.offsets.0
        frame.pointee.data.1 = base + layout.offsets.1
        frame.pointee.data.2 = format == .i420 ? base + layout.offsets.2 : nil
        frame.pointee.linesize.0 = Int32(layout.strides.0)
        frame.pointee.linesize.1 = Int32(layout.strides.1)
        frame.pointee.linesize.2 = Int32(layout.strides.2)
        frame.pointee.extended_data = (UnsafeMutableRawPointer(frame) + MemoryLayout<AVFrame>.offset(of: \.data)!)
            .assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self)
        return true
    }

    /// A loan's last reference went: its hold is given up. Any thread.
    fileprivate func giveBack(_ base: UnsafeMutableRawPointer) {
        let buffer: Buffer? = state.withLock { state in
            guard let i = state.lent.firstIndex(where: { $0.payload.baseAddress == base }) else { preconditionFailure("a loan that was not made") }
            let buffer = state.lent.remove(at: i)
            guard !state.closing else {
                state.returned.append(buffer)
                return nil
            }
            return buffer
        }
        buffer?.releaseHold()
    }

    /// The buffer `frame` was decoded into, with its layout, when it is a loan.
    func borrowed(_ frame: UnsafeMutablePointer<AVFrame>) -> (Buffer, Frame.Layout)? {
        guard let ref = frame.pointee.buf.0, av_buffer_get_opaque(ref) == Unmanaged.passUnretained(self).toOpaque(),
              let base = ref.pointee.data, let buffer = state.withLock({ $0.lent.first { $0.payload.baseAddress == UnsafeMutableRawPointer(base) } })
        else { return nil }
        let data = frame.pointee.data, linesize = frame.pointee.linesize
        func offset(_ plane: UnsafeMutablePointer<UInt8>?) -> Int { plane.map { $0 - base } ?? 0 }
        return (buffer, Frame.Layout(offsets: (offset(data.0), offset(data.1), offset(data.2)),
                                     strides: (Int(linesize.0), Int(linesize.1), data.2 == nil ? 0 : Int(linesize.2))))
    }

    /// Bytes the decoder's frames take (0: not known, or not lent).
    var blockSize: Int { state.withLock { $0.blockSize } }

    /// Keeps the spares topped up from the source's creator for `pad`, within
    /// the budget; spares too small for the decoder's frames go back.
    func topUp(context: ProcessContext, pad: Int) {
        guard spareCount > 0 else { return }
        while true {
            let (blockSize, spares, lent, stale) = state.withLock { state -> (Int, Int, Int, Buffer?) in
                let stale = state.spares.firstIndex { $0.payload.capacity < state.blockSize }.map { state.spares.remove(at: $0) }
                return (state.blockSize, state.spares.count, state.lent.count, stale)
            }
            if let stale {
                context.doneBuffer(stale)
                continue
            }
            guard blockSize > 0, spares < spareCount, spares + lent < budget ?? .max,
                  let buffer = context.acquireBuffer(size: blockSize, pad: pad) else { return }
            if budget == nil {
                let budget = min(MediaSource.loanBuffers, buffer.creator.statistics().capacity / 2)
                self.budget = budget
                state.withLock { state in   // no allocation while lending
                    state.spares.reserveCapacity(budget)
                    state.lent.reserveCapacity(budget)
                    state.returned.reserveCapacity(budget)
                }
                if budget == 0 {
                    context.doneBuffer(buffer)
                    return
                }
            }
            state.withLock { $0.spares.append(buffer) }
        }
    }

    /// A spare of at least `size` bytes, for a frame that must be copied
    /// when the creator has nothing free.
    func takeSpare(size: Int) -> Buffer? {
        state.withLock { $0.takeSpare(atLeast: size) }
    }

    /// Takes every buffer back through `context`: the spares, and the loans,
    /// which come back as `freeDecoder` frees the decoder (and its frames).
    func close(context: ProcessContext, freeDecoder: () -> Void) {
        state.withLock { $0.closing = true }
        freeDecoder()
        let buffers = state.withLock { state in
            assert(state.lent.isEmpty, "the decoder was freed with loans out")
            defer { (state.spares, state.returned) = ([], []) }
            return state.spares + state.returned
        }
        for buffer in buffers { context.doneBuffer(buffer) }
    }
}

/// `get_buffer2` for decoders with loans: a spare, else FFmpeg's own memory.
private let decodeIntoLoan: @convention(c) (UnsafeMutablePointer<AVCodecContext>?, UnsafeMutablePointer<AVFrame>?, Int32) -> Int32 = { decoder, frame, flags in
    let loans = Unmanaged<DecodeLoans>.fromOpaque(decoder!.pointee.opaque).takeUnretainedValue()
    return loans.lend(into: frame!, for: decoder!) ? 0 : avcodec_default_get_buffer2(decoder, frame, flags)
}

/// The free function of a loan's AVBufferRef.
private let releaseLoan: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt8>?) -> Void = { owner, base in
    Unmanaged<DecodeLoans>.fromOpaque(owner!).takeRetainedValue().giveBack(UnsafeMutableRawPointer(base!))
}
