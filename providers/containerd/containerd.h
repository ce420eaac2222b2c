/* The containerd provider's internals, shared by its files:
 *   containerd.c  the ops table, configuration (endpoint, namespaces)
 *   grpc.c        gRPC over HTTP/2 on the loop: framing, status, calls
 *   track.c       Containers.List + Tasks.List per namespace, the event
 *                 stream, resync, reconnect
 *   ops.c         the operations of the core's recycle runner (prepare,
 *                 stop, reset, start, restart, remove, drain, probe)
 *   image.c       an image's layer chain id (what a fresh rootfs is
 *                 prepared from), OCI spec details
 *   recover.c     finishing what a crash of reaper left half done
 *
 * A workload is a container with a running task: id "NAMESPACE/ID", name
 * ID, labels the container's labels, started at its task's process start. */
#ifndef RP_CONTAINERD_H
#define RP_CONTAINERD_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "buf.h"
#include "containerd.pb-c.h"
#include "error.h"
#include "http_client.h"
#include "provider.h"

#define RP_CTRD_DEFAULT_ENDPOINT "unix:///run/containerd/containerd.sock"
/* The kubelet's namespace: its pods are the kubelet's to recycle. */
#define RP_CTRD_K8S_NAMESPACE "k8s.io"
/* containerd's own limit on a gRPC message. */
#define RP_CTRD_MAX_MESSAGE ((size_t)16 << 20)

struct rp_ctrd_track; /* track.c's state */
struct rp_ctrd_plan;  /* ops.c's: what prepare found for one recycle */

struct rp_ctrd {
  struct rp_provider *p;       /* borrowed: the instance this ctx belongs to */
  struct rp_http_endpoint ep;  /* owned */
  char **namespaces;           /* owned, NULL-terminated */
  struct rp_ctrd_track *track; /* owned by track.c */
  struct rp_ctrd_plan *plans;  /* borrowed: the recycles prepared (ops.c) */
  int recycles_in_flight;
  bool stopping;
  void (*stop_cb)(void *arg); /* the provider's stop is done */
  void *stop_arg;
};

/* containerd.c: runs the stop callback once nothing is in flight. */
void rp_ctrd_check_stopped(struct rp_ctrd *c);

/* Parses the endpoint: "unix:///path" or an absolute path; NULL or "" is
 * RP_CTRD_DEFAULT_ENDPOINT.  Sets ep (HTTP/2 with prior knowledge over the
 * socket).  Anything else fails with RP_ECONFIG. */
int rp_ctrd_endpoint_parse(const char *endpoint, struct rp_http_endpoint *ep,
                           struct rp_error **err);

/* The namespaces to watch: cfg (NULL-terminated, may be NULL: "default"),
 * checked.  k8s.io is refused unless allow_kubernetes; names must be
 * containerd's identifiers ([A-Za-z0-9] then [A-Za-z0-9_.-], at most 76);
 * duplicates are refused.  *out is owned, NULL-terminated. */
int rp_ctrd_namespaces(char *const *cfg, bool allow_kubernetes, char ***out,
                       struct rp_error **err);

/* Workload ids: "NAMESPACE/ID".  Splits into ns (at most ns_len bytes with
 * the NUL) and a pointer into id; -1 when id has no '/' or the namespace
 * does not fit. */
int rp_ctrd_split_id(const char *id, char *ns, size_t ns_len,
                     const char **container_id);

/* --- grpc.c -------------------------------------------------------------- */

/* gRPC status codes (grpc's doc/statuscodes.md). */
enum {
  RP_GRPC_OK = 0,
  RP_GRPC_CANCELLED = 1,
  RP_GRPC_UNKNOWN = 2,
  RP_GRPC_INVALID_ARGUMENT = 3,
  RP_GRPC_DEADLINE_EXCEEDED = 4,
  RP_GRPC_NOT_FOUND = 5,
  RP_GRPC_ALREADY_EXISTS = 6,
  RP_GRPC_PERMISSION_DENIED = 7,
  RP_GRPC_RESOURCE_EXHAUSTED = 8,
  RP_GRPC_FAILED_PRECONDITION = 9,
  RP_GRPC_ABORTED = 10,
  RP_GRPC_OUT_OF_RANGE = 11,
  RP_GRPC_UNIMPLEMENTED = 12,
  RP_GRPC_INTERNAL = 13,
  RP_GRPC_UNAVAILABLE = 14,
  RP_GRPC_DATA_LOSS = 15,
  RP_GRPC_UNAUTHENTICATED = 16,
};

/* The code's name as gRPC writes it ("NotFound"); NULL when unknown. */
const char *rp_grpc_code_name(int code);
/* The rp_error code a gRPC status becomes: NotFound -> RP_ENOTFOUND,
 * AlreadyExists -> RP_ECONFLICT, DeadlineExceeded -> RP_ETIMEOUT,
 * Cancelled -> RP_ECANCELED, the rest RP_EENGINE. */
int rp_grpc_code_error(int code);

/* Decodes a grpc-message value (percent-encoded: "%XX" is a byte, anything
 * else is itself; a malformed escape is kept as it is).  Owned result. */
char *rp_grpc_percent_decode(const char *s, size_t n);

/* "Tasks.Kill" for "/containerd.services.tasks.v1.Tasks/Kill" (the service's
 * last name and the method), into buf; returns buf. */
const char *rp_grpc_short_method(const char *path, char *buf, size_t len);

/* Length-prefixed messages: 1 byte flag (0: not compressed), 4 bytes
 * big-endian length, the message.  A reader is fed the body as it comes
 * (split anywhere) and hands out whole messages. */
struct rp_grpc_frames {
  size_t max_msg;    /* a longer message is an error */
  struct rp_buf msg; /* a message not complete yet, its header first */
};
/* max_msg 0 means RP_CTRD_MAX_MESSAGE. */
void rp_grpc_frames_init(struct rp_grpc_frames *f, size_t max_msg);
/* msg_cb gets each message that the n bytes complete (borrowed for the
 * call).  Returns 0; 1 as soon as msg_cb returns non-zero (the rest is
 * dropped); -1 with err set for a compressed message (reaper never asks for
 * compression) or one over max_msg.  Do not feed again after 1 or -1. */
int rp_grpc_frames_feed(struct rp_grpc_frames *f, const void *data, size_t n,
                        int (*msg_cb)(void *arg, const uint8_t *msg,
                                      size_t len),
                        void *arg, struct rp_error **err);
/* Whether a message is half read (the stream must not end here). */
bool rp_grpc_frames_partial(const struct rp_grpc_frames *f);
void rp_grpc_frames_clear(struct rp_grpc_frames *f);

/* Packs m into a frame (owned result; *len_out its length). */
uint8_t *rp_grpc_frame_pack(const ProtobufCMessage *m, size_t *len_out);

/* The status of one response, from its header lines (":status" line of the
 * first block, grpc-status and grpc-message from the trailers or from a
 * trailers-only first block). */
struct rp_grpc_status {
  long http; /* 0 until the status line */
  int grpc;  /* meaningful when has_grpc */
  bool has_grpc;
  char *message; /* owned, decoded, or NULL */
};
void rp_grpc_status_header(struct rp_grpc_status *s, const char *line,
                           size_t len);
/* 0 when the call succeeded (HTTP 200 and grpc-status 0); otherwise -1 and
 * *err says "containerd: SHORT: CodeName: message" (HTTP errors and a
 * missing grpc-status as RP_EPROTO).  method is the full path. */
int rp_grpc_status_check(const struct rp_grpc_status *s, const char *method,
                         struct rp_error **err);
void rp_grpc_status_clear(struct rp_grpc_status *s);

/* One unary call: POST method (the full path,
 * "/containerd.services.tasks.v1.Tasks/Kill") with the namespace as the
 * containerd-namespace header (ns may be NULL: none).  cb runs exactly once:
 * with the reply's bytes (borrowed for the call; unpack with the generated
 * rpctrd__*__unpack) and err NULL, or with err (transport failures and gRPC
 * statuses, both "containerd: SHORT: ...").  timeout_ms 0 means 30 s.
 * Returns -1 (cb never runs) when it cannot start. */
typedef void (*rp_ctrd_call_cb)(void *arg, const uint8_t *msg, size_t len,
                                const struct rp_error *err);
int rp_ctrd_call(struct rp_ctrd *c, const char *ns, const char *method,
                 const ProtobufCMessage *req, int64_t timeout_ms,
                 rp_ctrd_call_cb cb, void *arg, struct rp_error **err);

/* A server stream (Events/Subscribe, Content/Read): on_msg gets each
 * message as it arrives (a non-zero return ends the stream); done_cb runs
 * exactly once, err NULL when the server ended it with grpc-status 0.
 * timeout_ms 0 means none.  *xfer (may be NULL) cancels it with
 * rp_http_cancel until done_cb has run.  Returns -1 (done_cb never runs)
 * when it cannot start. */
int rp_ctrd_stream(struct rp_ctrd *c, const char *ns, const char *method,
                   const ProtobufCMessage *req, int64_t timeout_ms,
                   int (*on_msg)(void *arg, const uint8_t *msg, size_t len),
                   void (*done_cb)(void *arg, const struct rp_error *err),
                   void *arg, struct rp_http_xfer **xfer,
                   struct rp_error **err);

/* Method paths. */
#define RP_CTRD_VERSION "/containerd.services.version.v1.Version/Version"
#define RP_CTRD_CONTAINERS "/containerd.services.containers.v1.Containers/"
#define RP_CTRD_TASKS "/containerd.services.tasks.v1.Tasks/"
#define RP_CTRD_SNAPSHOTS "/containerd.services.snapshots.v1.Snapshots/"
#define RP_CTRD_IMAGES "/containerd.services.images.v1.Images/"
#define RP_CTRD_CONTENT "/containerd.services.content.v1.Content/"
#define RP_CTRD_EVENTS "/containerd.services.events.v1.Events/"

/* protoc-c's structures hold char * even for strings they only read. */
static inline char *
rp_ctrd_str(const char *s)
{
  return (char *)(uintptr_t)s;
}

/* --- track.c ------------------------------------------------------------- */

int rp_ctrd_track_start(struct rp_ctrd *c, struct rp_error **err);
void rp_ctrd_track_resync(struct rp_ctrd *c);
void rp_ctrd_track_stop(struct rp_ctrd *c);
/* Whether tracking has nothing in flight (after rp_ctrd_track_stop). */
bool rp_ctrd_track_idle(const struct rp_ctrd *c);
void rp_ctrd_track_free(struct rp_ctrd *c);

/* One event of the Events/Subscribe stream, as the tracker reads it. */
enum rp_ctrd_event_kind {
  RP_CTRD_EVENT_OTHER,   /* nothing the tracker acts on */
  RP_CTRD_EVENT_START,   /* /tasks/start: look at the container again */
  RP_CTRD_EVENT_GONE,    /* the task's own process exited, its task or the
                            container was deleted */
  RP_CTRD_EVENT_CHANGED, /* /containers/update: labels may have changed */
};
struct rp_ctrd_event {
  enum rp_ctrd_event_kind kind;
  int64_t ts_ms; /* the envelope's time, 0 when absent */
  uint32_t pid;  /* start, exit, delete */
  char ns[80];
  char topic[64];
  char container_id[256];
};
/* Decodes an Envelope (type URLs "containerd.events.TaskStart"...).  -1
 * when it does not decode; otherwise 0, kind OTHER for anything else
 * (another topic, an exec'd process exiting). */
int rp_ctrd_event_decode(const uint8_t *msg, size_t len,
                         struct rp_ctrd_event *out);

/* The start time (ms since the Epoch) of process pid, from field 22 of
 * PROC/PID/stat (ticks after boot) and btime in PROC/stat; proc is "/proc"
 * in the agent.  -1 when unreadable (another PID namespace, gone). */
int64_t rp_ctrd_process_start_ms(const char *proc, uint32_t pid);
/* Field 22 (starttime) of a /proc/PID/stat line; -1 when malformed.  The
 * command name (field 2) may hold spaces and parentheses: the fields after
 * it are counted from its last ')'. */
long long rp_ctrd_stat_starttime(const char *stat, size_t len);

/* --- image.c ------------------------------------------------------------- */

/* The chain id of a list of layer diff ids ("sha256:..."), as the OCI image
 * spec defines it: ChainID(L0) = DiffID(L0), ChainID(L0..n) =
 * sha256(ChainID(L0..n-1) + " " + DiffID(Ln)).  Owned "sha256:<hex>"; NULL
 * for an empty list. */
char *rp_ctrd_chain_id(const char *const *diff_ids, size_t n);

/* From an OCI or Docker image index or manifest list (JSON), the digest of
 * the manifest for os/architecture (linux/amd64...; variant ignored), or
 * NULL.  Borrowed from index. */
const char *rp_ctrd_index_pick(json_t *index, const char *os, const char *arch);

/* The stop signal for a container: the label (or, failing that, the OCI
 * spec's annotation) io.containerd.image.config.stop-signal, which ctr and
 * nerdctl set from the image's StopSignal ("SIGQUIT", "QUIT", "3"); SIGTERM
 * when neither says or the value is not a signal. */
int rp_ctrd_stop_signal(json_t *labels, json_t *spec);
/* A signal's number from "SIGTERM", "TERM" or "15"; -1 when unknown. */
int rp_ctrd_signal_parse(const char *s);

/* Fetches an image's layer chain id: Images.Get (namespace ns), the
 * manifest (through an index for this machine's platform) and the config
 * from the content store, then rp_ctrd_chain_id of its rootfs.diff_ids.
 * cb runs once, with the chain id (borrowed for the call) or err.  Returns
 * -1 (cb never runs) when it cannot start. */
int rp_ctrd_image_chain(struct rp_ctrd *c, const char *ns, const char *image,
                        void (*cb)(void *arg, const char *chain_id,
                                   const struct rp_error *err),
                        void *arg, struct rp_error **err);

/* --- ops.c: the operations of the recycle runner (provider.h) ------------
 * prepare reads the container and its task (and, for a recreate, the base
 * of its fresh snapshot); the plan it gives stays listed in c->plans until
 * release, so that the operations given only an id act on what it found.
 * Every call they make counts in recycles_in_flight, and so does each
 * prepared recycle until its release. */

int rp_ctrd_op_prepare(struct rp_provider *p, const struct rp_workload *w,
                       const struct rp_recycle_spec *spec, rp_prepared_cb cb,
                       void *arg, struct rp_error **err);
void rp_ctrd_op_release(struct rp_provider *p, void *plan);
/* Kill (stop signal), Wait up to grace_ms, SIGKILL, Wait; Delete the task.
 * No task, or a stopped one, is only deleted. */
int rp_ctrd_op_stop(struct rp_provider *p, const char *id, int64_t grace_ms,
                    rp_op_cb cb, void *arg, struct rp_error **err);
/* Mounts, a task created on them (the old task's log URI), started. */
int rp_ctrd_op_start(struct rp_provider *p, const char *id, rp_op_cb cb,
                     void *arg, struct rp_error **err);
int rp_ctrd_op_restart(struct rp_provider *p, const char *id, int64_t grace_ms,
                       rp_op_cb cb, void *arg, struct rp_error **err);
/* Stopped (again) if need be, the container deleted, then its snapshot. */
int rp_ctrd_op_remove(struct rp_provider *p, const char *id, int64_t grace_ms,
                      rp_op_cb cb, void *arg, struct rp_error **err);
/* With no task left: the snapshot removed and prepared again on the base
 * that prepare found (a recreate's plan). */
int rp_ctrd_op_reset(struct rp_provider *p, const char *id, void *plan,
                     rp_op_cb cb, void *arg, struct rp_error **err);
int rp_ctrd_op_drain(struct rp_provider *p, const char *id,
                     const char *const *argv, int64_t timeout_ms,
                     rp_drained_cb cb, void *arg, struct rp_error **err);
int rp_ctrd_op_probe(struct rp_provider *p, const char *id, rp_probe_cb cb,
                     void *arg, struct rp_error **err);

/* --- recover.c ------------------------------------------------------------ */

/* Crash recovery: each unfinished recycle prepared again and finished from
 * where the container is, through the operations above (a running task
 * means nothing is left to do). */
int rp_ctrd_recover(struct rp_ctrd *c, const struct rp_unfinished *items,
                    size_t n, rp_recover_item_cb item_cb,
                    void (*done_cb)(void *arg, const struct rp_error *err),
                    void *arg, struct rp_error **err);

#endif
