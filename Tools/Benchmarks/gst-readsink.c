/* The receiving side of `qgbench process --vs-gstreamer`: a GStreamer
 * application that reads every byte of each buffer, as the QueueGraph child's
 * read-all sink does. `shmsrc ! appsink`; each pulled buffer is mapped and
 * summed 8 bytes at a time.
 *
 *   gst-readsink SOCKET COUNT     prints the sum and exits 0 after COUNT buffers
 *
 * Built by qgbench with `cc gst-readsink.c $(pkg-config --cflags --libs gstreamer-app-1.0)`.
 */
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: gst-readsink SOCKET COUNT\n");
        return 2;
    }
    gst_init(&argc, &argv);
    long count = atol(argv[2]);
    gchar *description = g_strdup_printf("shmsrc socket-path=%s ! appsink name=sink sync=false max-buffers=64", argv[1]);
    GError *error = NULL;
    GstElement *pipeline = gst_parse_launch(description, &error);
    g_free(description);
    if (pipeline == NULL) {
        fprintf(stderr, "gst-readsink: %s\n", error->message);
        return 1;
    }
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    uint64_t sum = 0;
    long received = 0;
    while (received < count) {
        GstSample *sample = gst_app_sink_pull_sample(GST_APP_SINK(sink));
        if (sample == NULL) break;   /* end of stream or error */
        GstBuffer *buffer = gst_sample_get_buffer(sample);
        GstMapInfo map;
        if (gst_buffer_map(buffer, &map, GST_MAP_READ)) {
            const uint64_t *words = (const uint64_t *)map.data;
            for (gsize i = 0; i < map.size / 8; i++) sum += words[i];
            gst_buffer_unmap(buffer, &map);
        }
        gst_sample_unref(sample);
        received++;
    }
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipeline);
    printf("%llu\n", (unsigned long long)sum);
    return received == count ? 0 : 1;
}
