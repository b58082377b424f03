#include "cucx.h"
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <ucp/api/ucp.h>

struct qgx_node {
    ucp_context_h context;
    ucp_worker_h worker;
    ucp_listener_h listener;
    qgx_message_cb on_message;
    void *arg;
    qgx_connect_cb on_connect;
    void *connect_arg;
    int fd;
};

/// What a pending operation carries to its completion: the caller's
/// callback and a copy of the header (and the data, when asked).
typedef struct {
    qgx_done_cb done;
    void *arg;
    uint64_t tag;
    size_t header_length;
    unsigned char bytes[];   // header, then the copied data
} pending_op;

typedef struct {
    qgx_node *node;
    unsigned id;
} handler_arg;


static void say(char *error, size_t length, const char *what, ucs_status_t status) {
    if (error && length) snprintf(error, length, "%s: %s", what, ucs_status_string(status));
}

qgx_node *qgx_node_new(qgx_message_cb on_message, void *arg, const char *net_devices, char *error, size_t error_length) {
    qgx_node *node = calloc(1, sizeof *node);
    node->on_message = on_message;
    node->arg = arg;
    // A worker restarted on its port must bind while the last one's connections linger in
    // TIME_WAIT (a transport's setting: UCX reads it from the environment; the user's wins).
    setenv("UCX_TCP_CM_REUSEADDR", "y", 0);
    ucp_config_t *config;
    ucs_status_t status = ucp_config_read(NULL, NULL, &config);
    if (status != UCS_OK) { say(error, error_length, "reading UCX's configuration", status); free(node); return NULL; }
    if (net_devices && (status = ucp_config_modify(config, "NET_DEVICES", net_devices)) != UCS_OK) {
        say(error, error_length, "setting UCX's NET_DEVICES", status);
        ucp_config_release(config);
        free(node);
        return NULL;
    }
    ucp_params_t params = {
        .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
        .features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP,
        .mt_workers_shared = 1,   // memory is registered from other threads than the progress thread
    };
    status = ucp_init(&params, config, &node->context);
    ucp_config_release(config);
    if (status != UCS_OK) { say(error, error_length, "ucp_init", status); free(node); return NULL; }
    ucp_worker_params_t worker_params = {
        .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
        .thread_mode = UCS_THREAD_MODE_MULTI,
    };
    status = ucp_worker_create(node->context, &worker_params, &node->worker);
    if (status == UCS_OK) status = ucp_worker_get_efd(node->worker, &node->fd);
    if (status != UCS_OK) {
        say(error, error_length, "ucp_worker_create", status);
        if (node->worker) ucp_worker_destroy(node->worker);
        ucp_cleanup(node->context);
        free(node);
        return NULL;
    }
    return node;
}

void qgx_node_free(qgx_node *node) {
    if (node->listener) ucp_listener_destroy(node->listener);
    ucp_worker_destroy(node->worker);
    ucp_cleanup(node->context);
    free(node);
}

void qgx_node_set_arg(qgx_node *node, void *arg) { node->arg = arg; }
int qgx_node_fd(qgx_node *node) { return node->fd; }
unsigned qgx_progress(qgx_node *node) { return ucp_worker_progress(node->worker); }

int qgx_arm(qgx_node *node) {
    ucs_status_t status = ucp_worker_arm(node->worker);
    return status == UCS_OK ? 1 : status == UCS_ERR_BUSY ? 0 : status;
}

static ucs_status_t message_arrived(void *arg, const void *header, size_t header_length, void *data, size_t length,
                                    const ucp_am_recv_param_t *param) {
    handler_arg *h = arg;
    int rndv = (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0;
    qgx_ep *ep = (param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP) ? (qgx_ep *)param->reply_ep : NULL;
    h->node->on_message(h->node->arg, ep, h->id, header, header_length, data, length, rndv);
    return UCS_OK;   // eager data is copied by then; a rendezvous descriptor is taken by qgx_recv_data or released by UCX
}

int qgx_handle(qgx_node *node, unsigned first, unsigned last) {
    for (unsigned id = first; id <= last; id++) {
        handler_arg *h = malloc(sizeof *h);
        h->node = node;
        h->id = id;
        ucp_am_handler_param_t param = {
            .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG |
                          UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
            .id = id, .cb = message_arrived, .arg = h, .flags = UCP_AM_FLAG_WHOLE_MSG,
        };
        ucs_status_t status = ucp_worker_set_am_recv_handler(node->worker, &param);
        if (status != UCS_OK) { free(h); return status; }
    }
    return 0;
}

static int socket_address(const char *address, uint16_t port, struct sockaddr_storage *out, socklen_t *length) {
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *length = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *length = sizeof *v6;
        return 0;
    }
    return -1;
}

int qgx_route_device(const char *address, char *name, size_t length) {
    struct sockaddr_storage peer, local;
    socklen_t peer_length, local_length = sizeof local;
    if (socket_address(address, 9, &peer, &peer_length) != 0) return -1;
    int fd = socket(peer.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);   // a UDP connect sends nothing: it only routes
    if (fd < 0) return -1;
    int found = -1;
    if (connect(fd, (struct sockaddr *)&peer, peer_length) == 0 && getsockname(fd, (struct sockaddr *)&local, &local_length) == 0) {
        struct ifaddrs *list;
        if (getifaddrs(&list) == 0) {
            for (struct ifaddrs *i = list; i && found != 0; i = i->ifa_next) {
                if (!i->ifa_addr || i->ifa_addr->sa_family != local.ss_family) continue;
                int same = local.ss_family == AF_INET
                    ? ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == ((struct sockaddr_in *)&local)->sin_addr.s_addr
                    : memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, &((struct sockaddr_in6 *)&local)->sin6_addr, 16) == 0;
                if (same) { snprintf(name, length, "%s", i->ifa_name); found = 0; }
            }
            freeifaddrs(list);
        }
    }
    close(fd);
    return found;
}

static void connect_request(ucp_conn_request_h request, void *arg) {
    qgx_node *node = arg;
    char peer[128] = "unknown";
    ucp_conn_request_attr_t attr = {.field_mask = UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR};
    if (ucp_conn_request_query(request, &attr) == UCS_OK) {
        char host[INET6_ADDRSTRLEN] = "";
        uint16_t port = 0;
        if (attr.client_address.ss_family == AF_INET) {
            struct sockaddr_in *v4 = (struct sockaddr_in *)&attr.client_address;
            inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
            port = ntohs(v4->sin_port);
        } else if (attr.client_address.ss_family == AF_INET6) {
            struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&attr.client_address;
            inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
            port = ntohs(v6->sin6_port);
        }
        snprintf(peer, sizeof peer, "%s:%u", host, port);
    }
    node->on_connect(node->connect_arg, request, peer);
}

int qgx_listen(qgx_node *node, const char *address, uint16_t port, qgx_connect_cb on_connect, void *arg,
               char *error, size_t error_length) {
    struct sockaddr_storage socket;
    socklen_t length;
    if (socket_address(address, port, &socket, &length) != 0) {
        if (error) snprintf(error, error_length, "'%s' is not an IPv4 or IPv6 address", address);
        return UCS_ERR_INVALID_PARAM;
    }
    node->on_connect = on_connect;
    node->connect_arg = arg;
    ucp_listener_params_t params = {
        .field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
        .sockaddr = {.addr = (struct sockaddr *)&socket, .addrlen = length},
        .conn_handler = {.cb = connect_request, .arg = node},
    };
    ucs_status_t status = ucp_listener_create(node->worker, &params, &node->listener);
    if (status != UCS_OK) { say(error, error_length, "ucp_listener_create", status); return status; }
    return 0;
}

static qgx_ep *create_ep(qgx_node *node, ucp_ep_params_t *params, qgx_error_cb on_error, void *arg, int *status) {
    params->field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLER | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
    params->err_mode = UCP_ERR_HANDLING_MODE_PEER;
    params->err_handler.cb = (ucp_err_handler_cb_t)(void (*)(void))on_error;   // same ABI: ep and status as pointer and int
    params->err_handler.arg = arg;
    ucp_ep_h ep = NULL;
    *status = ucp_ep_create(node->worker, params, &ep);
    return *status == UCS_OK ? (qgx_ep *)ep : NULL;
}

qgx_ep *qgx_accept(qgx_node *node, void *request, qgx_error_cb on_error, void *arg, int *status) {
    ucp_ep_params_t params = {.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST, .conn_request = request};
    return create_ep(node, &params, on_error, arg, status);
}

qgx_ep *qgx_connect(qgx_node *node, const char *address, uint16_t port, qgx_error_cb on_error, void *arg, int *status) {
    struct sockaddr_storage socket;
    socklen_t length;
    if (socket_address(address, port, &socket, &length) != 0) { *status = UCS_ERR_INVALID_PARAM; return NULL; }
    ucp_ep_params_t params = {
        .field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR,
        .flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER,
        .sockaddr = {.addr = (struct sockaddr *)&socket, .addrlen = length},
    };
    return create_ep(node, &params, on_error, arg, status);
}

void *qgx_close(qgx_ep *ep, int force) {
    ucp_request_param_t param = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS, .flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0};
    ucs_status_ptr_t request = ucp_ep_close_nbx((ucp_ep_h)ep, &param);
    return UCS_PTR_IS_PTR(request) ? request : NULL;
}

int qgx_closed(void *close) {
    if (ucp_request_check_status(close) == UCS_INPROGRESS) return 0;
    ucp_request_free(close);
    return 1;
}

static void finished(void *request, ucs_status_t status, void *user_data) {
    pending_op *op = user_data;
    if (op->done) op->done(op->arg, op->tag, status);
    free(op);
    ucp_request_free(request);
}

static void received(void *request, ucs_status_t status, size_t length, void *user_data) {
    (void)length;
    finished(request, status, user_data);
}

static int outcome(ucs_status_ptr_t request, pending_op *op) {
    if (request == NULL) { free(op); return 0; }
    if (UCS_PTR_IS_ERR(request)) { free(op); return UCS_PTR_STATUS(request); }
    return 1;
}

int qgx_send(qgx_ep *ep, unsigned id, const void *header, size_t header_length, const void *data, size_t length,
             qgx_mem *memh, int rndv, int copy_data, qgx_done_cb done, void *arg, uint64_t tag) {
    pending_op *op = malloc(sizeof *op + header_length + (copy_data ? length : 0));
    *op = (pending_op){.done = done, .arg = arg, .tag = tag, .header_length = header_length};
    if (header_length) memcpy(op->bytes, header, header_length);
    if (copy_data && length) {
        memcpy(op->bytes + header_length, data, length);
        data = op->bytes + header_length;
    }
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_FLAGS |
                        (memh ? UCP_OP_ATTR_FIELD_MEMH : 0),
        // Copied messages (control, statistics) go eagerly whatever their size: the receiver takes them whole.
        .flags = UCP_AM_SEND_FLAG_REPLY | (rndv ? UCP_AM_SEND_FLAG_RNDV : copy_data ? UCP_AM_SEND_FLAG_EAGER : 0),
        .cb = {.send = (ucp_send_nbx_callback_t)finished},
        .user_data = op,
        .memh = (ucp_mem_h)memh,
    };
    return outcome(ucp_am_send_nbx((ucp_ep_h)ep, id, op->bytes, header_length, data, length, &param), op);
}

int qgx_recv_data(qgx_node *node, void *descriptor, void *buffer, size_t length, qgx_mem *memh,
                  qgx_done_cb done, void *arg, uint64_t tag) {
    pending_op *op = malloc(sizeof *op);
    *op = (pending_op){.done = done, .arg = arg, .tag = tag};
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | (memh ? UCP_OP_ATTR_FIELD_MEMH : 0),
        .cb = {.recv_am = received},
        .user_data = op,
        .memh = (ucp_mem_h)memh,
    };
    return outcome(ucp_am_recv_data_nbx(node->worker, descriptor, buffer, length, &param), op);
}

qgx_mem *qgx_mem_map(qgx_node *node, void *address, size_t length) {
    ucp_mem_map_params_t params = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH,
        .address = address, .length = length,
    };
    ucp_mem_h memh = NULL;
    return ucp_mem_map(node->context, &params, &memh) == UCS_OK ? (qgx_mem *)memh : NULL;
}

void qgx_mem_unmap(qgx_node *node, qgx_mem *memh) { ucp_mem_unmap(node->context, (ucp_mem_h)memh); }

int qgx_wake_fd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

const char *qgx_status_string(int status) { return ucs_status_string((ucs_status_t)status); }

void qgx_hmac_sha256(const void *key, size_t key_length, const void *message, size_t message_length, uint8_t out[32]) {
    unsigned int length = 32;
    HMAC(EVP_sha256(), key, (int)key_length, message, message_length, out, &length);
}

int qgx_random(void *buffer, size_t length) {
    return getrandom(buffer, length, 0) == (ssize_t)length ? 0 : -1;
}

int qgx_equal(const void *a, const void *b, size_t length) { return CRYPTO_memcmp(a, b, length) == 0; }
