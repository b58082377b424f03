#include "cffmpeg.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char last_error[512];
static int print_level = AV_LOG_FATAL;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void hook(void *avcl, int level, const char *format, va_list arguments) {
    if (level <= AV_LOG_ERROR) {
        char message[400];
        va_list copy;
        va_copy(copy, arguments);
        vsnprintf(message, sizeof message, format, copy);
        va_end(copy);
        size_t length = strlen(message);
        while (length > 0 && (message[length - 1] == '\n' || message[length - 1] == '\r')) message[--length] = 0;
        const AVClass *class = avcl ? *(const AVClass **)avcl : NULL;
        pthread_mutex_lock(&lock);
        snprintf(last_error, sizeof last_error, "%s%s%s", class ? class->item_name(avcl) : "", class ? ": " : "", message);
        pthread_mutex_unlock(&lock);
    }
    if (level <= print_level) av_log_default_callback(avcl, level, format, arguments);
}

static void install(void) { av_log_set_callback(hook); }

void qg_av_log_install(int level) {
    print_level = level;
    pthread_once(&once, install);
}

int qg_av_take_error(char *out, size_t size) {
    pthread_mutex_lock(&lock);
    int found = last_error[0] != 0;
    snprintf(out, size, "%s", last_error);
    last_error[0] = 0;
    pthread_mutex_unlock(&lock);
    return found;
}

static void keep(void *opaque, uint8_t *data) { (void)opaque; (void)data; }

AVBufferRef *qg_av_lend(uint8_t *data, size_t size) { return av_buffer_create(data, size, keep, NULL, 0); }

void qg_codec_allow_threaded_callbacks(AVCodecContext *context) {
#if LIBAVCODEC_VERSION_MAJOR < 60
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    context->thread_safe_callbacks = 1;
#pragma GCC diagnostic pop
#else
    (void)context;   // always so from FFmpeg 6
#endif
}
