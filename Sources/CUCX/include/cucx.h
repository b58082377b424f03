// A thin shim over UCX's UCP API (libucx-dev) and OpenSSL's HMAC (libssl-dev)
// for QueueGraphRemote: one context and worker per node, Active Messages for
// everything that crosses, client-server endpoints by socket address, and
// the peer-failure error mode. Callbacks run on the thread that calls
// qgx_progress (the node's progress thread).
#ifndef CUCX_H
#define CUCX_H
#include <stddef.h>
#include <stdint.h>

typedef struct qgx_node qgx_node;
typedef struct qgx_ep qgx_ep;     // a ucp_ep_h
typedef struct qgx_mem qgx_mem;   // a ucp_mem_h

/// A message arrived: `data` holds `length` bytes when `rndv` is 0 (valid only
/// during the call); when `rndv` is 1, `data` is a descriptor for qgx_recv_data.
/// `ep` is the sender's endpoint here (NULL if it did not ask for replies).
typedef void (*qgx_message_cb)(void *arg, qgx_ep *ep, unsigned id, const void *header, size_t header_length,
                               void *data, size_t length, int rndv);
/// A send or a receive posted with a callback completed (status 0) or failed (a negative ucs_status_t).
typedef void (*qgx_done_cb)(void *arg, uint64_t tag, int status);
/// An endpoint failed (its peer died, the network went down, or connecting failed).
typedef void (*qgx_error_cb)(void *arg, qgx_ep *ep, int status);
/// A client asks to connect; `peer` is its address as "ADDR:PORT".
typedef void (*qgx_connect_cb)(void *arg, void *request, const char *peer);

/// A context and a multi-threaded worker with Active Messages and wakeup; NULL with `error` filled.
/// `net_devices` (UCX's NET_DEVICES, e.g. "eth1") may be NULL for UCX's own choice.
qgx_node *qgx_node_new(qgx_message_cb on_message, void *arg, const char *net_devices, char *error, size_t error_length);
/// The network interface the kernel sends to `address` by (its own, for one of this host's
/// addresses) into `name`; 0, or -1 when there is no route or no such interface.
int qgx_route_device(const char *address, char *name, size_t length);
void qgx_node_free(qgx_node *node);
/// Sets the argument the message callback gets.
void qgx_node_set_arg(qgx_node *node, void *arg);
/// The fd that becomes readable when qgx_progress has work (after qgx_arm returned 1).
int qgx_node_fd(qgx_node *node);
unsigned qgx_progress(qgx_node *node);
/// 1: armed (sleep on the fd); 0: events are pending (progress again); <0: error.
int qgx_arm(qgx_node *node);
/// Registers the message ids `first`…`last` with the node's message callback.
int qgx_handle(qgx_node *node, unsigned first, unsigned last);

/// Listens on ADDR:PORT (IPv4 or IPv6 literal) only; 0 or a negative status with `error` filled.
int qgx_listen(qgx_node *node, const char *address, uint16_t port, qgx_connect_cb on_connect, void *arg,
               char *error, size_t error_length);
qgx_ep *qgx_accept(qgx_node *node, void *request, qgx_error_cb on_error, void *arg, int *status);
qgx_ep *qgx_connect(qgx_node *node, const char *address, uint16_t port, qgx_error_cb on_error, void *arg, int *status);
/// Starts closing `ep` (forcibly: pending operations fail); returns a handle to poll with qgx_closed, or NULL when done.
void *qgx_close(qgx_ep *ep, int force);
/// 1 when the close finished (the handle is freed), 0 while it goes on.
int qgx_closed(void *close);

/// Sends message `id`: the header is copied; `data` must stay valid until `done` (when
/// copy_data is 0; copied data goes eagerly). `rndv` forces rendezvous (zero-copy from `memh`,
/// which may be NULL).
/// Returns 0 when done at once (`done` not called), 1 when `done(arg, tag, status)`
/// will be called from progress, or a negative status.
int qgx_send(qgx_ep *ep, unsigned id, const void *header, size_t header_length, const void *data, size_t length,
             qgx_mem *memh, int rndv, int copy_data, qgx_done_cb done, void *arg, uint64_t tag);
/// Receives a rendezvous message's data into `buffer`; returns as qgx_send.
int qgx_recv_data(qgx_node *node, void *descriptor, void *buffer, size_t length, qgx_mem *memh,
                  qgx_done_cb done, void *arg, uint64_t tag);

/// Registers memory for zero-copy; NULL on failure.
qgx_mem *qgx_mem_map(qgx_node *node, void *address, size_t length);
void qgx_mem_unmap(qgx_node *node, qgx_mem *memh);

const char *qgx_status_string(int status);
/// A non-blocking eventfd (a progress thread's wake-up), or -1.
int qgx_wake_fd(void);

/// HMAC-SHA-256 of `message` under `key` into out[32].
void qgx_hmac_sha256(const void *key, size_t key_length, const void *message, size_t message_length, uint8_t out[32]);
/// Fills `buffer` from the system's random source; 0 on success.
int qgx_random(void *buffer, size_t length);
/// 1 when the `length` bytes are equal, in time independent of their content.
int qgx_equal(const void *a, const void *b, size_t length);
#endif
