// FFmpeg's libraries (Debian 12: 5.1) for QueueGraphMedia, with the few
// macros Swift cannot import as inline functions, and a log hook that keeps
// the last error message for the processors' reports.
#pragma once
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

static inline int qg_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int qg_averror_eof(void) { return AVERROR_EOF; }
static inline int64_t qg_nopts(void) { return AV_NOPTS_VALUE; }
static inline int qg_frame_is_corrupt(const AVFrame *frame) {
    return (frame->flags & AV_FRAME_FLAG_CORRUPT) != 0 || frame->decode_error_flags != 0;
}

/// Installs the log hook once: messages at `AV_LOG_ERROR` or worse are kept
/// (see `qg_av_take_error`); messages at `print_level` or worse are printed
/// as FFmpeg prints them. Any thread.
void qg_av_log_install(int print_level);
/// Copies the last kept error message ("codec: message") into `out` and
/// forgets it; returns 0 when there was none. Any thread.
int qg_av_take_error(char *out, size_t size);
/// An AVBufferRef over memory FFmpeg must not free (a QueueGraph buffer's
/// pixels, lent for one call); NULL when out of memory.
AVBufferRef *qg_av_lend(uint8_t *data, size_t size);
/// Tells a decoder (before it opens) that its `get_buffer2` may be called
/// from its frame threads at once; FFmpeg 5 otherwise has the thread that
/// sends packets make every buffer, waiting on each frame's setup.
void qg_codec_allow_threaded_callbacks(AVCodecContext *context);
