/*
 * loadgen.c: a single-threaded epoll load generator for libwschat and its peers.
 *
 * It carries its own minimal WebSocket client (RFC 6455: handshake with a fixed
 * key, masked client frames, unmasked server frames with 7/16/64-bit lengths,
 * fragment reassembly, pong replies, close handling) and shares no code with
 * the library, so it checks the server rather than agreeing with it.
 *
 * Modes (one run, one JSON line on stdout; progress goes to stderr):
 *   broadcast  N receivers + 1 sender in one room; the sender keeps K messages
 *              in flight (sent, not yet seen back by the sender, who is a room
 *              member too).
 *   rate       N receivers + 1 sender; the sender offers a fixed messages/s.
 *   echo       C connections to an echo server, K in flight each.
 *   idle       N connections in rooms of --room-size; once all are up and quiet,
 *              reads the server's VmRSS, prints the result, then holds the
 *              connections until --hold seconds pass or SIGUSR1/SIGTERM/SIGINT.
 *   form       N members (the last one is the sender) connect in batches into
 *              ONE room; the sender then sends a barrier line, and the room is
 *              formed when every member has seen it: every join notice sent
 *              before it has been delivered, whether the server announces
 *              every join, some or none. Reports that time (form_s) and the
 *              server CPU spent on it.
 *   rooms      N members in rooms of --room-size (the last room may be smaller),
 *              every member sending: --rate messages/s in all, in turn
 *              (member k % N sends the k-th message, at its intended time), so
 *              each member sends every N/rate seconds. Every member checks the
 *              sequence of each sender of its room.
 *
 * --deflate offers permessage-deflate (RFC 7692, as a browser does:
 * "permessage-deflate; client_max_window_bits") and fails if the server does
 * not accept it; messages the server sends compressed (RSV1) are inflated with
 * zlib (a fresh raw stream per message: the server must have agreed
 * server_no_context_takeover, which is checked) and counted ("compressed");
 * a frame identical to one of the last ones inflated is not inflated again
 * (see zcache: the receivers of a broadcast all get the same bytes).
 * Messages we send stay uncompressed (allowed). --prose pads each chat
 * message with English sentences instead of 'x', so that compression sees
 * realistic chat text (about 3:1), not a run of one byte.
 *
 * --json speaks the JSON subprotocol wschat.v1.json instead of plain text (any
 * chat mode): the handshake offers it (and fails if the server does not echo
 * it), messages go out as {"type":"message","text":"..."}, and a delivery is a
 * {"type":"message",...} object whose "text" member holds the marker below.
 * Other objects (welcome, history, join, leave, ...) count as notices.
 *
 * Each chat message is a printable 128-byte text: "M<seq:16 hex> <ts:16 hex> xxx..."
 * where ts is CLOCK_MONOTONIC ns (in rate mode: the intended send time, so a
 * stalled sender cannot hide latency). The server delivers it as
 * "[ROOM] NAME: TEXT"; every receiver checks the sequence (gaps = lost) and
 * records send-to-receive latency in a log-linear histogram (about 1.5 %
 * resolution, preallocated). In rooms mode the top 16 bits of seq are the
 * sender's slot in its room, the low 48 its own count. Lines a server with
 * history replays to a joiner ("[history] ...") are counted, not delivered.
 *
 * Cluster runs (bench/cluster): --port2 P sends every second receiver (odd
 * index) to a second node on port P, the sender staying on --port; each
 * --also-pid PID adds that process's CPU (the other node, redis-server) to
 * the server CPU, so deliveries per CPU-second count all of them.
 *
 * With --server-pid the generator reads utime+stime from /proc/PID/stat at the
 * start and end of the measured window and VmRSS from /proc/PID/status, so CPU
 * and deliveries are measured over exactly the same interval.
 *
 * --tls speaks TLS (wss://) with OpenSSL on the same non-blocking sockets:
 * every connection does its own handshake (no resumption, no verification:
 * the server's certificate is not the point here), then sends and reads
 * through SSL_write/SSL_read.
 *
 * Build: cc -O2 -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE bench/loadgen.c -o loadgen -lssl -lcrypto -lz
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* RFC 6455 section 1.3 */
#define JSON_PROTOCOL "wschat.v1.json"          /* docs/PROTOCOL.md section 2 */
#define MAX_EVENTS 1024
#define HIST_SUB 64 /* sub-buckets per power of two */
#define HIST_EXP 40 /* up to 2^40 ns, about 18 minutes */

/* ------------------------------------------------------------------ utils */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q)
		die("out of memory");
	return q;
}

static int verbose;
static void note(const char *fmt, ...)
{
	va_list ap;
	if (!verbose)
		return;
	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ------------------------------------------------------------- histogram */

struct hist {
	uint64_t b[HIST_EXP * HIST_SUB];
	uint64_t n, max, sum;
};

static unsigned hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= 6 */
	unsigned sub = (unsigned)(v >> (e - 6)) & (HIST_SUB - 1);
	unsigned idx = (e - 5) * HIST_SUB + sub;
	return idx < HIST_EXP * HIST_SUB ? idx : HIST_EXP * HIST_SUB - 1;
}

static uint64_t hist_value(unsigned idx) /* upper edge of a bucket */
{
	if (idx < HIST_SUB)
		return idx;
	unsigned e = idx / HIST_SUB + 5, sub = idx % HIST_SUB;
	return ((uint64_t)(HIST_SUB + sub + 1) << (e - 6)) - 1;
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

static uint64_t hist_pct(const struct hist *h, double p)
{
	if (!h->n)
		return 0;
	uint64_t want = (uint64_t)((double)h->n * p / 100.0 + 0.5);
	if (want < 1)
		want = 1;
	uint64_t acc = 0;
	for (unsigned i = 0; i < HIST_EXP * HIST_SUB; i++) {
		acc += h->b[i];
		if (acc >= want) {
			uint64_t v = hist_value(i);
			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}

/* ----------------------------------------------------------- /proc reads */

static long clk_tck;

/* utime+stime of a process in ns, or -1. */
static int64_t proc_cpu_ns(int pid)
{
	char path[64], buf[2048];
	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p += 2; /* field 3: state */
	unsigned long long ut = 0, st = 0;
	/* fields 3..15: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (int64_t)((ut + st) * (1000000000ull / (unsigned long long)clk_tck));
}

static int64_t proc_rss_kb(int pid)
{
	char path[64], line[256];
	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long long kb = -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6)) {
			kb = atoll(line + 6);
			break;
		}
	fclose(f);
	return kb;
}

static int64_t self_cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* Busy time of one CPU from /proc/stat, in ticks: all of it (user..softirq,
 * steal excluded) and the softirq part. utime+stime of a process leave out the
 * softirq time the kernel spends on its behalf (loopback TCP receive runs in
 * softirq on the sending CPU) when IRQ time accounting is on, so the pinned
 * core's busy time is the all-in figure beside it. */
struct corestat {
	long long busy, softirq, steal;
};

static int core_read(int cpu, struct corestat *cs)
{
	char want[16], line[512];
	if (cpu < 0)
		return -1;
	snprintf(want, sizeof want, "cpu%d ", cpu);
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return -1;
	int found = -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, want, strlen(want))) {
			long long v[8] = {0};
			sscanf(line + strlen(want), "%lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3],
			       &v[4], &v[5], &v[6], &v[7]);
			cs->busy = v[0] + v[1] + v[2] + v[5] + v[6];
			cs->softirq = v[6];
			cs->steal = v[7];
			found = 0;
			break;
		}
	fclose(f);
	return found;
}

/* ------------------------------------------------------------ options */

enum mode { M_BROADCAST, M_RATE, M_ECHO, M_IDLE, M_FORM, M_ROOMS };

static struct {
	enum mode mode;
	const char *host;
	int port;
	int n;         /* receivers / connections */
	int inflight;  /* K */
	double rate;   /* messages/s (rate mode) */
	double duration, warmup, drain, hold, connect_timeout, settle, hs_timeout;
	int batch;     /* concurrent connection attempts */
	int retries;
	int msg_size;
	int room_size; /* idle mode */
	int server_pid, server_cpu;
	int port2;        /* a second node for odd receivers (0: none) */
	int also_pid[8];  /* more processes whose CPU counts as the server's */
	int nalso;
	int src_addrs; /* source addresses 127.0.0.2, .3, ... (0: 16 on loopback, else 1) */
	int json;      /* speak wschat.v1.json */
	int tls;       /* speak TLS (wss://) */
	int deflate;   /* offer permessage-deflate */
	int prose;     /* pad messages with English text */
	const char *room, *tag;
	int room_given;
} opt = {
	.host = "127.0.0.1", .port = 0, .n = 100, .inflight = 16, .rate = 100,
	.duration = 10, .warmup = 1, .drain = 10, .hold = 0, .connect_timeout = 120,
	.settle = 1.0, .hs_timeout = 30, .batch = 256, .retries = 5, .msg_size = 128, .room_size = 100,
	.server_pid = 0, .server_cpu = -1, .room = "bench", .tag = "",
};

/* The server's CPU: --server-pid's and every --also-pid's. */
static int64_t servers_cpu_ns(void)
{
	int64_t sum = proc_cpu_ns(opt.server_pid);
	for (int i = 0; i < opt.nalso && sum >= 0; i++) {
		int64_t v = proc_cpu_ns(opt.also_pid[i]);
		sum = v < 0 ? -1 : sum + v;
	}
	return sum;
}

/* ----------------------------------------------------------- connections */

enum cstate { CS_NEW, CS_CONNECTING, CS_TLS, CS_HS, CS_OPEN, CS_CLOSED };
enum role { R_RECV, R_SEND, R_ECHO, R_IDLE, R_MEMBER };

struct buf {
	uint8_t *p;
	size_t len, off, cap;
};

struct conn {
	int fd, idx;
	SSL *ssl;        /* --tls: owned, freed at close */
	uint8_t state, role, tries, in_epoll_out;
	uint8_t port2; /* connects to --port2 */
	uint64_t t_connect;
	struct buf in;   /* unparsed bytes (partial frame or handshake) */
	struct buf frag; /* fragmented message being reassembled */
	uint8_t frag_op;
	uint8_t frag_z; /* the message being reassembled is compressed */
	uint8_t z;      /* permessage-deflate was agreed */
	struct buf out;  /* bytes not yet written */
	uint64_t next_seq;   /* next expected sequence number */
	uint64_t *slot_seq;  /* rooms: next expected sequence number of each sender in the room */
	uint64_t sent;       /* echo, rooms: messages sent */
	uint64_t got;        /* data messages received */
	uint64_t barrier;    /* last barrier id seen */
};

static int ep;
static SSL_CTX *tls_ctx; /* --tls */
static struct conn *conns;
static int nconns;
static struct conn *sender;
static uint8_t *rbuf;
static size_t rcap;

static struct {
	uint64_t deliveries_window, deliveries_total, lost, reordered, proto_err,
		server_closed, conn_failed, notices, replayed, other, pings, bytes_in, compressed;
	int open, handshakes_done;
	int last_close_code;
	char last_close_reason[124];
	char first_error[200];
} st;

static struct hist lat;
static struct corestat core_srv0, core_srv1, core_lg0, core_lg1;
static int lg_cpu = -1, core_ok;
static uint64_t barrier_ns;
static uint64_t t_window_start, t_window_end; /* 0 until set */
static uint64_t seq_measure_from = UINT64_MAX;
static uint64_t seq_next;   /* next seq the sender will send (rooms: the next message of all) */
static uint64_t rooms_sent_window; /* rooms: messages sent with an intended time in the window */
static uint64_t last_rx_ns; /* last time any data byte arrived */
static volatile sig_atomic_t stop_flag;

static void set_err(const char *fmt, ...)
{
	if (st.first_error[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st.first_error, sizeof st.first_error, fmt, ap);
	va_end(ap);
	note("%s", st.first_error);
}

static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return;
	if (b->off) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + extra <= b->cap)
			return;
	}
	size_t nc = b->cap ? b->cap : 256;
	while (nc < b->len + extra)
		nc *= 2;
	b->p = xrealloc(b->p, nc);
	b->cap = nc;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

static void ep_mod(struct conn *c, int want_out)
{
	struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl mod: %s", strerror(errno));
	c->in_epoll_out = (uint8_t)want_out;
}

static void conn_close(struct conn *c, int failed)
{
	if (c->fd >= 0) {
		/* RST instead of FIN: no TIME_WAIT, so back-to-back runs with 19,000
		 * connections do not run out of ephemeral ports. */
		struct linger lg = {1, 0};
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->state == CS_OPEN)
		st.open--;
	if (failed && c->state != CS_OPEN && c->tries < opt.retries) {
		c->state = CS_NEW; /* retried by the ramp */
		c->tries++;
	} else {
		if (failed)
			st.conn_failed++;
		c->state = CS_CLOSED;
	}
	buf_free(&c->in);
	buf_free(&c->frag);
	buf_free(&c->out);
}

/* Write what is queued; returns -1 if the connection died. */
static int conn_flush(struct conn *c)
{
	while (c->out.off < c->out.len) {
		if (c->ssl) {
			int w = SSL_write(c->ssl, c->out.p + c->out.off, (int)(c->out.len - c->out.off));
			if (w > 0) {
				c->out.off += (size_t)w;
				continue;
			}
			int e = SSL_get_error(c->ssl, w);
			if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
				if (!c->in_epoll_out)
					ep_mod(c, 1);
				return 0;
			}
			set_err("SSL_write on conn %d: error %d", c->idx, e);
			conn_close(c, 1);
			return -1;
		}
		ssize_t w = send(c->fd, c->out.p + c->out.off, c->out.len - c->out.off, MSG_NOSIGNAL);
		if (w > 0) {
			c->out.off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->in_epoll_out)
				ep_mod(c, 1);
			return 0;
		}
		set_err("send on conn %d: %s", c->idx, strerror(errno));
		conn_close(c, 1);
		return -1;
	}
	c->out.off = c->out.len = 0;
	if (c->in_epoll_out)
		ep_mod(c, 0);
	return 0;
}

static uint32_t mask_state = 0x9e3779b9u;

/* Queue one masked client frame. */
static void queue_frame(struct conn *c, int opcode, const uint8_t *data, size_t len)
{
	buf_reserve(&c->out, len + 14);
	uint8_t *p = c->out.p + c->out.len;
	*p++ = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		*p++ = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		*p++ = 0x80 | 126;
		*p++ = (uint8_t)(len >> 8);
		*p++ = (uint8_t)len;
	} else {
		*p++ = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			*p++ = (uint8_t)((uint64_t)len >> (8 * i));
	}
	mask_state = mask_state * 1664525u + 1013904223u;
	uint8_t m[4] = {(uint8_t)(mask_state >> 24), (uint8_t)(mask_state >> 16),
			(uint8_t)(mask_state >> 8), (uint8_t)mask_state};
	memcpy(p, m, 4);
	p += 4;
	for (size_t i = 0; i < len; i++)
		p[i] = data[i] ^ m[i & 3];
	p += len;
	c->out.len = (size_t)(p - c->out.p);
}

static const char hexd[] = "0123456789abcdef";

static void put_hex16(uint8_t *p, uint64_t v)
{
	for (int i = 15; i >= 0; i--, v >>= 4)
		p[i] = (uint8_t)hexd[v & 15];
}

static int get_hex16(const uint8_t *p, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		uint8_t ch = p[i];
		unsigned d;
		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10u;
		else
			return -1;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

#define JSON_MSG_HEAD "{\"type\":\"message\",\"text\":\""
#define JSON_MSG_TAIL "\"}"

/* Queue one chat line: as it is, or with --json inside a message request. The
 * text m[0..len) has JSON_MSG_HEAD bytes of room before it, so wrapping costs
 * no copy; it is printable ASCII without '"' or '\\', so it needs no escapes. */
static void queue_text(struct conn *c, uint8_t *m, size_t len)
{
	if (!opt.json) {
		queue_frame(c, 1, m, len);
		return;
	}
	size_t hl = sizeof JSON_MSG_HEAD - 1, tl = sizeof JSON_MSG_TAIL - 1;
	memcpy(m - hl, JSON_MSG_HEAD, hl);
	memcpy(m + len, JSON_MSG_TAIL, tl);
	queue_frame(c, 1, m - hl, hl + len + tl);
}

/* "M<seq> <ts> xxxx" padded to msg_size bytes, printable ASCII only. */
static void queue_msg(struct conn *c, uint64_t seq, uint64_t ts)
{
	uint8_t buf[64 + 4096], *m = buf + 32;
	size_t len = (size_t)opt.msg_size;
	m[0] = 'M';
	put_hex16(m + 1, seq);
	m[17] = ' ';
	put_hex16(m + 18, ts);
	if (opt.prose) {
		static const char text[] =
			"The meeting moved to Thursday because half the team is travelling. "
			"Could someone send me the slides from yesterday's review, please? "
			"I think the build is broken again; the tests fail on the new branch. "
			"Lunch is at noon in the usual place, and everyone is welcome to join. "
			"Thanks for the quick fix, it works on my machine now as expected. ";
		size_t tl = sizeof text - 1, at = (size_t)(seq * 37 % tl);
		for (size_t i = 34; i < len; i++, at = at + 1 < tl ? at + 1 : 0)
			m[i] = (uint8_t)text[at];
	} else {
		memset(m + 34, 'x', len - 34);
	}
	queue_text(c, m, len);
}

static void queue_barrier(struct conn *c, uint64_t id)
{
	uint8_t buf[64], *m = buf + 32;
	m[0] = 'B';
	put_hex16(m + 1, id);
	queue_text(c, m, 17);
}

/* ------------------------------------------------------ JSON (--json) */

/* Just enough JSON to read the server's objects: walk the top-level members of
 * an object, skip values (strings with their escapes, nesting by depth), and
 * unescape one string. It does not validate; the server's output is compact,
 * but spaces are allowed where JSON allows them. */

static const uint8_t *json_ws(const uint8_t *p, const uint8_t *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p at an opening quote; returns the byte after the closing one, or NULL. */
static const uint8_t *json_skip_str(const uint8_t *p, const uint8_t *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* p at a value; returns the byte after it, or NULL. */
static const uint8_t *json_skip_value(const uint8_t *p, const uint8_t *end)
{
	int depth = 0;
	while (p < end) {
		if (*p == '"') {
			if (!(p = json_skip_str(p, end)))
				return NULL;
			if (!depth)
				return p;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']') {
			if (!depth)
				return p; /* end of the enclosing object: a scalar ended here */
			if (!--depth)
				return p + 1;
		} else if (*p == ',' && !depth)
			return p;
		p++;
	}
	return depth ? NULL : p;
}

static size_t utf8_put(uint8_t *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xc0 | cp >> 6);
		o[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xe0 | cp >> 12);
		o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (uint8_t)(0xf0 | cp >> 18);
	o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

static int hex4(const uint8_t *p, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		uint8_t ch = p[i];
		unsigned d = ch >= '0' && ch <= '9' ? ch - '0' + 0u
			   : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10u
			   : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10u : 16u;
		if (d > 15)
			return -1;
		*v = *v << 4 | d;
	}
	return 0;
}

/* The string at p (its opening quote), unescaped. Without escapes *s points
 * into p (no copy); otherwise into out (cap bytes). Returns the byte after the
 * closing quote, or NULL if it is malformed, unterminated or does not fit. */
static const uint8_t *json_string(const uint8_t *p, const uint8_t *end, uint8_t *out, size_t cap,
				  const uint8_t **s, size_t *sl)
{
	p++;
	const uint8_t *q = memchr(p, '"', (size_t)(end - p));
	if (!q)
		return NULL;
	if (!memchr(p, '\\', (size_t)(q - p))) { /* the usual case: nothing to unescape */
		*s = p;
		*sl = (size_t)(q - p);
		return q + 1;
	}
	q = memchr(p, '\\', (size_t)(q - p));
	size_t n = (size_t)(q - p);
	if (n > cap)
		return NULL;
	memcpy(out, p, n);
	for (p = q; p < end && *p != '"'; p++) {
		if (cap - n < 4)
			return NULL;
		if (*p != '\\') {
			out[n++] = *p;
			continue;
		}
		if (++p >= end)
			return NULL;
		uint32_t cp;
		switch (*p) {
		case '"': case '\\': case '/': out[n++] = *p; break;
		case 'b': out[n++] = '\b'; break;
		case 'f': out[n++] = '\f'; break;
		case 'n': out[n++] = '\n'; break;
		case 'r': out[n++] = '\r'; break;
		case 't': out[n++] = '\t'; break;
		case 'u':
			if (end - p < 5 || hex4(p + 1, &cp))
				return NULL;
			p += 4;
			if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair */
				uint32_t lo;
				if (end - p < 7 || p[1] != '\\' || p[2] != 'u' || hex4(p + 3, &lo) || lo < 0xdc00 || lo > 0xdfff)
					return NULL;
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			n += utf8_put(out + n, cp);
			break;
		default:
			return NULL;
		}
	}
	if (p >= end)
		return NULL;
	*s = out;
	*sl = n;
	return p + 1;
}

/* A server object: its "type" (into type, at most 15 bytes) and, for a message,
 * its "text" (*t, *tl; see json_string for out). Returns 0, or -1 if it is not
 * an object we can read. */
static int json_object(const uint8_t *p, size_t len, char type[16], uint8_t *out, size_t cap, const uint8_t **t,
		       size_t *tl)
{
	const uint8_t *end = p + len;
	type[0] = 0;
	*t = NULL;
	*tl = 0;
	p = json_ws(p, end);
	if (p >= end || *p++ != '{')
		return -1;
	for (;;) {
		p = json_ws(p, end);
		if (p < end && *p == '}')
			return type[0] ? 0 : -1;
		if (p >= end || *p != '"')
			return -1;
		const uint8_t *k = p + 1, *ke = json_skip_str(p, end);
		if (!ke)
			return -1;
		size_t kl = (size_t)(ke - 1 - k);
		p = json_ws(ke, end);
		if (p >= end || *p++ != ':')
			return -1;
		p = json_ws(p, end);
		if (p >= end)
			return -1;
		if (*p == '"' && kl == 4 && !memcmp(k, "type", 4)) {
			const uint8_t *v, *ve = json_skip_str(p, end);
			if (!ve || (size_t)(ve - p - 2) >= 16)
				return -1;
			v = p + 1;
			memcpy(type, v, (size_t)(ve - 1 - v));
			type[ve - 1 - v] = 0;
			p = ve;
		} else if (*p == '"' && kl == 4 && !memcmp(k, "text", 4)) {
			if (!(p = json_string(p, end, out, cap, t, tl)))
				return -1;
		} else if (!(p = json_skip_value(p, end)))
			return -1;
		p = json_ws(p, end);
		if (p < end && *p == ',')
			p++;
		else if (p >= end || *p != '}')
			return -1;
	}
}

/* ------------------------------------------------------ message handling */

static void on_data_msg(struct conn *c, const uint8_t *p, size_t len, uint64_t now)
{
	uint8_t unesc[4096];
	/* Chat servers deliver "[ROOM] NAME: TEXT" (--json: a message object);
	 * echo servers return TEXT. */
	if (opt.json) {
		char type[16];
		const uint8_t *t;
		size_t tl;
		if (json_object(p, len, type, unesc, sizeof unesc, &t, &tl)) {
			st.other++;
			set_err("conn %d: unreadable JSON from the server: %.*s", c->idx, (int)(len > 100 ? 100 : len),
				(const char *)p);
			return;
		}
		if (!strcmp(type, "error")) {
			st.notices++;
			set_err("server error object on conn %d: %.*s", c->idx, (int)(len > 100 ? 100 : len), (const char *)p);
			return;
		}
		if (strcmp(type, "message") || !t) {
			st.notices++; /* welcome, history, join, leave, typing, ... */
			return;
		}
		p = t;
		len = tl;
	} else if (opt.mode != M_ECHO) {
		if (len >= 10 && !memcmp(p, "[history] ", 10)) {
			st.replayed++;
			return;
		}
		if (len >= 2 && p[0] == '*' && p[1] == ' ') {
			st.notices++;
			return;
		}
		if (len >= 2 && p[0] == '!' && p[1] == ' ') {
			st.notices++;
			set_err("server error notice on conn %d: %.*s", c->idx, (int)(len > 100 ? 100 : len), (const char *)p);
			return;
		}
		const uint8_t *q = memchr(p, ':', len);
		if (!q || p[0] != '[' || (size_t)(q - p) + 2 > len || q[1] != ' ') {
			st.other++;
			return;
		}
		len -= (size_t)(q + 2 - p);
		p = q + 2;
	}
	if (len == 17 && p[0] == 'B') {
		uint64_t id;
		if (!get_hex16(p + 1, &id))
			c->barrier = id;
		return;
	}
	uint64_t seq, ts;
	if (len != (size_t)opt.msg_size || p[0] != 'M' || get_hex16(p + 1, &seq) || get_hex16(p + 18, &ts)) {
		st.other++;
		return;
	}
	c->got++;
	st.deliveries_total++;
	if (t_window_start && now >= t_window_start)
		st.deliveries_window++;
	uint64_t *next = &c->next_seq;
	if (opt.mode == M_ROOMS) { /* one sequence per sender of the room */
		uint64_t slot = seq >> 48;
		if (!c->slot_seq || slot >= (uint64_t)opt.room_size) {
			st.other++;
			return;
		}
		next = &c->slot_seq[slot];
		seq &= (1ull << 48) - 1;
	}
	if (seq == *next) {
		(*next)++;
	} else if (seq > *next) {
		st.lost += seq - *next;
		*next = seq + 1;
	} else {
		st.reordered++;
	}
	if (opt.mode == M_ROOMS ? t_window_start && ts >= t_window_start && now >= ts
				: seq >= seq_measure_from && now >= ts)
		hist_add(&lat, now - ts);
	if (opt.mode == M_ECHO) {
		/* keep K in flight per connection */
		if (!stop_flag && !t_window_end) {
			queue_msg(c, c->sent++, now_ns());
		}
	} else if (opt.mode == M_BROADCAST && c == sender) {
		/* in flight = sent - seen back by the sender */
		uint64_t inflight = seq_next - c->next_seq;
		while (t_window_start && !t_window_end && inflight < (uint64_t)opt.inflight) {
			if (seq_measure_from == UINT64_MAX && now_ns() >= t_window_start)
				seq_measure_from = seq_next;
			queue_msg(c, seq_next++, now_ns());
			inflight++;
		}
	}
}

/* Recently inflated messages: a broadcast sends every receiver the same
 * compressed bytes (the server's shared compressor), and a frame identical
 * byte for byte to one inflated already inflates to the same message, so
 * the generator inflates each once, not once per receiver, and stays out of
 * the way of the server it measures. Keyed by an FNV-1a hash of the ends,
 * confirmed by comparing all the bytes. */
#define ZCACHE 256
static struct zentry {
	uint64_t hash;
	uint8_t *z, *plain; /* owned copies */
	size_t zlen, plen;
} zcache[ZCACHE];

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static const uint8_t *inflate_fresh(struct conn *c, const uint8_t *p, size_t len, size_t *out_len);

static const uint8_t *inflate_msg(struct conn *c, const uint8_t *p, size_t len, size_t *out_len)
{
	/* the ends and the length pick the slot; memcmp confirms the rest */
	uint64_t h = len <= 64 ? fnv1a(p, len) : fnv1a(p, 32) ^ (fnv1a(p + len - 32, 32) * 31) ^ len;
	struct zentry *e = &zcache[h % ZCACHE];
	if (e->z && e->hash == h && e->zlen == len && !memcmp(e->z, p, len)) {
		st.compressed++;
		*out_len = e->plen;
		return e->plain;
	}
	const uint8_t *out = inflate_fresh(c, p, len, out_len);
	if (out) {
		e->hash = h;
		e->z = xrealloc(e->z, len ? len : 1);
		e->plain = xrealloc(e->plain, *out_len ? *out_len : 1);
		memcpy(e->z, p, len);
		memcpy(e->plain, out, *out_len);
		e->zlen = len;
		e->plen = *out_len;
	}
	return out;
}

/* One compressed message (RFC 7692 7.2.2): raw inflate with a fresh
 * context (server_no_context_takeover), into a buffer of our own. */
static const uint8_t *inflate_fresh(struct conn *c, const uint8_t *p, size_t len, size_t *out_len)
{
	static z_stream zs;
	static int zs_ok;
	static uint8_t *out;
	static size_t cap;
	static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
	if (!zs_ok) {
		if (inflateInit2(&zs, -15) != Z_OK)
			die("inflateInit2 failed");
		zs_ok = 1;
	} else if (inflateReset(&zs) != Z_OK) {
		die("inflateReset failed");
	}
	size_t n = 0;
	int stage = 0;
	zs.next_in = (Bytef *)(uintptr_t)p;
	zs.avail_in = (uInt)len;
	for (;;) {
		if (cap - n < 4096) {
			cap = cap ? cap * 2 : 65536;
			out = xrealloc(out, cap);
		}
		zs.next_out = out + n;
		zs.avail_out = (uInt)(cap - n);
		int r = inflate(&zs, Z_SYNC_FLUSH);
		n = cap - zs.avail_out;
		if (r != Z_OK && r != Z_BUF_ERROR && r != Z_STREAM_END) {
			set_err("conn %d: bad compressed message (zlib %d)", c->idx, r);
			st.proto_err++;
			return NULL;
		}
		if (zs.avail_in == 0 && stage == 0) {
			zs.next_in = (Bytef *)(uintptr_t)tail;
			zs.avail_in = 4;
			stage = 1;
			continue;
		}
		if ((zs.avail_in == 0 && zs.avail_out > 0) || r == Z_STREAM_END)
			break;
		if (n > (1u << 26)) {
			set_err("conn %d: inflated message too big", c->idx);
			st.proto_err++;
			return NULL;
		}
	}
	st.compressed++;
	*out_len = n;
	return out;
}

/* A complete data message (compressed or not). */
static void on_message(struct conn *c, int op, int z, const uint8_t *p, size_t len, uint64_t now)
{
	if (z && !(p = inflate_msg(c, p, len, &len)))
		return;
	if (op == 1)
		on_data_msg(c, p, len, now);
}

/* Parse as many complete server frames as p[0..len) holds; returns bytes used or -1. */
static ssize_t parse_frames(struct conn *c, const uint8_t *p, size_t len, uint64_t now)
{
	size_t used = 0;
	while (len - used >= 2) {
		const uint8_t *f = p + used;
		size_t avail = len - used;
		int fin = f[0] & 0x80, op = f[0] & 0x0f;
		int rsv1 = (f[0] & 0x40) != 0;
		if ((f[0] & 0x30) || (rsv1 && (!c->z || op == 0 || op >= 8))) {
			set_err("conn %d: RSV bits set without extension (0x%02x)", c->idx, f[0]);
			st.proto_err++;
			return -1;
		}
		if (f[1] & 0x80) {
			set_err("conn %d: server frame is masked", c->idx);
			st.proto_err++;
			return -1;
		}
		uint64_t plen = f[1] & 0x7f;
		size_t hl = 2;
		if (plen == 126) {
			if (avail < 4)
				break;
			plen = (uint64_t)f[2] << 8 | f[3];
			hl = 4;
			if (plen < 126) {
				set_err("conn %d: non-minimal 16-bit length %" PRIu64, c->idx, plen);
				st.proto_err++;
			}
		} else if (plen == 127) {
			if (avail < 10)
				break;
			plen = 0;
			for (int i = 0; i < 8; i++)
				plen = plen << 8 | f[2 + i];
			hl = 10;
			if (plen >> 63) {
				set_err("conn %d: 64-bit length with top bit set", c->idx);
				st.proto_err++;
				return -1;
			}
			if (plen < 65536) {
				set_err("conn %d: non-minimal 64-bit length %" PRIu64, c->idx, plen);
				st.proto_err++;
			}
		}
		if (plen > (1u << 26)) {
			set_err("conn %d: frame of %" PRIu64 " bytes", c->idx, plen);
			st.proto_err++;
			return -1;
		}
		if (avail < hl + plen)
			break;
		const uint8_t *pl = f + hl;
		used += hl + (size_t)plen;
		if (op >= 8) {
			if (!fin || plen > 125) {
				set_err("conn %d: bad control frame", c->idx);
				st.proto_err++;
				return -1;
			}
			if (op == 9) {
				st.pings++;
				queue_frame(c, 10, pl, (size_t)plen);
			} else if (op == 8) {
				st.server_closed++;
				st.last_close_code = plen >= 2 ? (pl[0] << 8 | pl[1]) : 1005;
				size_t rl = plen > 2 ? (size_t)plen - 2 : 0;
				if (rl > sizeof st.last_close_reason - 1)
					rl = sizeof st.last_close_reason - 1;
				memcpy(st.last_close_reason, pl + 2, rl);
				st.last_close_reason[rl] = 0;
				set_err("conn %d closed by server: %d %s", c->idx, st.last_close_code, st.last_close_reason);
				uint8_t code[2] = {pl[0], pl[1]};
				queue_frame(c, 8, code, plen >= 2 ? 2 : 0);
				conn_flush(c);
				return -1;
			} else if (op != 10) {
				set_err("conn %d: unknown control opcode %d", c->idx, op);
				st.proto_err++;
				return -1;
			}
			continue;
		}
		if (op == 0) {
			if (!c->frag_op) {
				set_err("conn %d: continuation without start", c->idx);
				st.proto_err++;
				return -1;
			}
			buf_reserve(&c->frag, (size_t)plen);
			memcpy(c->frag.p + c->frag.len, pl, (size_t)plen);
			c->frag.len += (size_t)plen;
			if (fin) {
				on_message(c, c->frag_op, c->frag_z, c->frag.p, c->frag.len, now);
				c->frag_op = 0;
				c->frag.len = 0;
			}
		} else if (op == 1 || op == 2) {
			if (c->frag_op) {
				set_err("conn %d: new message inside a fragmented one", c->idx);
				st.proto_err++;
				return -1;
			}
			if (fin) {
				on_message(c, op, rsv1, pl, (size_t)plen, now);
			} else {
				c->frag_op = (uint8_t)op;
				c->frag_z = (uint8_t)rsv1;
				buf_reserve(&c->frag, (size_t)plen);
				memcpy(c->frag.p, pl, (size_t)plen);
				c->frag.len = (size_t)plen;
			}
		} else {
			set_err("conn %d: reserved opcode %d", c->idx, op);
			st.proto_err++;
			return -1;
		}
	}
	return (ssize_t)used;
}

static void on_open(struct conn *c)
{
	c->state = CS_OPEN;
	st.open++;
	st.handshakes_done++;
}

/* Handshake response: 101 + the accept value for our fixed key. Returns header length, 0 if incomplete, -1 if bad. */
static ssize_t parse_handshake(struct conn *c, const uint8_t *p, size_t len)
{
	const uint8_t *end = memmem(p, len, "\r\n\r\n", 4);
	if (!end) {
		if (len > 8192) {
			set_err("conn %d: handshake response too long", c->idx);
			return -1;
		}
		return 0;
	}
	size_t hl = (size_t)(end - p) + 4;
	if (len < 12 || memcmp(p, "HTTP/1.1 101", 12)) {
		const uint8_t *eol = memchr(p, '\r', hl);
		set_err("conn %d: handshake refused: %.*s", c->idx, (int)(eol ? eol - p : 40), (const char *)p);
		return -1;
	}
	int ok_accept = 0, ok_upgrade = 0, ok_proto = !opt.json, ok_ext = !opt.deflate;
	const char *line = (const char *)p;
	const char *hend = (const char *)end;
	while (line < hend) {
		const char *eol = memmem(line, (size_t)(hend - line) + 2, "\r\n", 2);
		size_t ll = (size_t)(eol - line);
		if (ll > 21 && !strncasecmp(line, "sec-websocket-accept:", 21)) {
			const char *v = line + 21;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vl = (size_t)(eol - v);
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			ok_accept = vl == strlen(WS_ACCEPT) && !memcmp(v, WS_ACCEPT, vl);
		} else if (ll > 8 && !strncasecmp(line, "upgrade:", 8)) {
			const char *v = line + 8;
			while (*v == ' ')
				v++;
			ok_upgrade = !strncasecmp(v, "websocket", 9);
		} else if (ll > 23 && !strncasecmp(line, "sec-websocket-protocol:", 23)) {
			const char *v = line + 23;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vl = (size_t)(eol - v);
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			ok_proto = vl == strlen(JSON_PROTOCOL) && !memcmp(v, JSON_PROTOCOL, vl);
		} else if (ll > 25 && !strncasecmp(line, "sec-websocket-extensions:", 25)) {
			/* our offer allows only what the server may add: it must keep
			 * no context between its messages for inflate_msg() */
			const char *v = line + 25;
			size_t vl = (size_t)(eol - v);
			c->z = memmem(v, vl, "permessage-deflate", 18) != NULL;
			ok_ext = c->z && memmem(v, vl, "server_no_context_takeover", 26) != NULL;
		}
		line = eol + 2;
	}
	if (!ok_accept || !ok_upgrade) {
		set_err("conn %d: bad 101 (accept ok %d, upgrade ok %d)", c->idx, ok_accept, ok_upgrade);
		st.proto_err++;
		return -1;
	}
	if (!ok_ext) {
		set_err("conn %d: the server did not agree permessage-deflate with "
			"server_no_context_takeover", c->idx);
		st.proto_err++;
		return -1;
	}
	if (!ok_proto) {
		set_err("conn %d: the server did not accept the subprotocol " JSON_PROTOCOL
			" (a server without it answers in plain text)", c->idx);
		st.proto_err++;
		return -1;
	}
	return (ssize_t)hl;
}

static void conn_writable(struct conn *c);

static void conn_readable(struct conn *c, uint64_t now)
{
	if (c->state == CS_TLS) { /* the handshake moves on */
		conn_writable(c);
		return;
	}
	for (int rounds = 0; rounds < 4 && c->fd >= 0; rounds++) {
		size_t pend = c->in.len - c->in.off;
		if (rcap < pend + 65536) {
			rcap = pend + 65536;
			rbuf = xrealloc(rbuf, rcap);
		}
		if (pend)
			memcpy(rbuf, c->in.p + c->in.off, pend);
		ssize_t r;
		if (c->ssl) {
			/* TLS: one record at most per call; read until OpenSSL wants
			 * the socket again (bytes it holds do not wake epoll). */
			int k = SSL_read(c->ssl, rbuf + pend, (int)(rcap - pend));
			int e = k > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, k);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				rounds = 0;
				if (c->out.len > c->out.off)
					conn_flush(c);
				break;
			}
			if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)
				k = 0;
			else if (e != SSL_ERROR_NONE) {
				errno = EPROTO;
				k = -1;
			}
			r = k;
			if (r > 0)
				rounds = -1; /* not a sign of a drained socket: go on */
		} else {
			r = recv(c->fd, rbuf + pend, rcap - pend, 0);
		}
		if (r == 0) {
			if (c->state == CS_OPEN)
				set_err("conn %d: server closed the TCP connection", c->idx);
			conn_close(c, 1);
			return;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (c->state == CS_OPEN)
				set_err("conn %d: recv: %s", c->idx, strerror(errno));
			conn_close(c, 1);
			return;
		}
		st.bytes_in += (uint64_t)r;
		last_rx_ns = now;
		size_t len = pend + (size_t)r, used = 0;
		if (c->state == CS_HS) {
			ssize_t h = parse_handshake(c, rbuf, len);
			if (h < 0) {
				conn_close(c, 1);
				return;
			}
			if (h > 0) {
				used = (size_t)h;
				on_open(c);
			}
		}
		if (c->state == CS_OPEN) {
			ssize_t u = parse_frames(c, rbuf + used, len - used, now);
			if (u < 0) {
				conn_close(c, 1);
				return;
			}
			used += (size_t)u;
		}
		c->in.off = c->in.len = 0;
		if (used < len) {
			buf_reserve(&c->in, len - used);
			memcpy(c->in.p, rbuf + used, len - used);
			c->in.len = len - used;
		}
		if (c->out.len > c->out.off && conn_flush(c) < 0)
			return;
		if (c->ssl)
			continue;
		if ((size_t)r < rcap - pend)
			break; /* short read: socket drained */
	}
}

static void request_text(struct conn *c, char *out, size_t cap)
{
	char name[48], room[80];
	switch (c->role) {
	case R_SEND:
		snprintf(name, sizeof name, "s%s%d", opt.tag, (int)getpid());
		snprintf(room, sizeof room, "%s", opt.room);
		break;
	case R_IDLE:
		snprintf(name, sizeof name, "i%s%d", opt.tag, c->idx);
		snprintf(room, sizeof room, "%s%d", opt.room, c->idx / (opt.room_size > 0 ? opt.room_size : 1));
		break;
	case R_MEMBER: /* rooms: r0000, r0001, ... (--room: that prefix) */
		snprintf(name, sizeof name, "m%s%d", opt.tag, c->idx);
		snprintf(room, sizeof room, "%s%04d", opt.room_given ? opt.room : "r", c->idx / opt.room_size);
		break;
	default:
		snprintf(name, sizeof name, "%c%s%d", c->role == R_ECHO ? 'e' : 'r', opt.tag, c->idx);
		snprintf(room, sizeof room, "%s", opt.room);
	}
	snprintf(out, cap,
		 "GET /?name=%s&room=%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\nSec-WebSocket-Version: 13\r\n%s%s\r\n",
		 name, room, opt.host, c->port2 ? opt.port2 : opt.port, opt.json ? "Sec-WebSocket-Protocol: " JSON_PROTOCOL "\r\n" : "",
		 opt.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : "");
}

static struct sockaddr_in srv_addr, srv_addr2;

static void conn_start(struct conn *c, uint64_t now)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s (raise the open-file limit?)", strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (opt.src_addrs > 1) {
		/* Spread the connections over several source addresses. From one
		 * address, connect() searches the ephemeral ports already used to the
		 * server's port one by one: past ~14,000 connections that search took
		 * half of the load generator's CPU and set the pace of the ramp.
		 * IP_BIND_ADDRESS_NO_PORT leaves the port to connect(). */
		struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
		src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1u + (uint32_t)(c->idx % opt.src_addrs));
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0)
			die("bind to a source address: %s (--src-addrs 1 turns this off)", strerror(errno));
	}
	c->fd = fd;
	c->t_connect = now;
	c->state = CS_CONNECTING;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl add: %s", strerror(errno));
	c->in_epoll_out = 1;
	const struct sockaddr_in *to = c->port2 ? &srv_addr2 : &srv_addr;
	if (connect(fd, (const struct sockaddr *)to, sizeof *to) < 0 && errno != EINPROGRESS) {
		set_err("connect: %s", strerror(errno));
		conn_close(c, 1);
	}
}

static void conn_writable(struct conn *c)
{
	if (c->state == CS_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			set_err("connect: %s", strerror(err));
			conn_close(c, 1);
			return;
		}
		if (tls_ctx) {
			c->ssl = SSL_new(tls_ctx);
			if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
				die("SSL_new: out of memory");
			SSL_set_connect_state(c->ssl);
			c->state = CS_TLS;
		}
	}
	if (c->state == CS_TLS) {
		int r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				if ((e == SSL_ERROR_WANT_WRITE) != c->in_epoll_out)
					ep_mod(c, e == SSL_ERROR_WANT_WRITE);
				return;
			}
			unsigned long x = ERR_get_error();
			set_err("conn %d: TLS handshake: %s", c->idx, x ? ERR_reason_error_string(x) : "failed");
			conn_close(c, 1);
			return;
		}
		char req[512];
		request_text(c, req, sizeof req);
		size_t l = strlen(req);
		buf_reserve(&c->out, l);
		memcpy(c->out.p, req, l);
		c->out.len = l;
		c->state = CS_HS;
	}
	if (c->state == CS_CONNECTING) {
		char req[512];
		request_text(c, req, sizeof req);
		size_t l = strlen(req);
		buf_reserve(&c->out, l);
		memcpy(c->out.p, req, l);
		c->out.len = l;
		c->state = CS_HS;
	}
	conn_flush(c);
}

/* One turn of the loop; timeout in microseconds (rooms mode paces its sends
 * 100 us apart; epoll_wait's milliseconds would bunch them). */
static void loop_once_us(int64_t timeout_us)
{
	static struct epoll_event evs[MAX_EVENTS];
	static int no_pwait2;
	int n = -1;
	if (!no_pwait2) {
		struct timespec ts = {.tv_sec = timeout_us / 1000000, .tv_nsec = timeout_us % 1000000 * 1000};
		n = epoll_pwait2(ep, evs, MAX_EVENTS, &ts, NULL);
		if (n < 0 && errno == ENOSYS)
			no_pwait2 = 1; /* kernel before 5.11: whole milliseconds, rounded up */
	}
	if (no_pwait2)
		n = epoll_wait(ep, evs, MAX_EVENTS, (int)((timeout_us + 999) / 1000));
	if (n < 0) {
		if (errno == EINTR)
			return;
		die("epoll_wait: %s", strerror(errno));
	}
	uint64_t now = now_ns();
	for (int i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;
		if (c->fd < 0)
			continue;
		if (evs[i].events & EPOLLOUT)
			conn_writable(c);
		if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			conn_readable(c, now);
	}
}

static void loop_once(int timeout_ms)
{
	loop_once_us((int64_t)timeout_ms * 1000);
}

/* Open every connection in batches; true when all are open. */
static int ramp(double timeout_s)
{
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(timeout_s * 1e9);
	uint64_t hs_timeout = (uint64_t)(opt.hs_timeout * 1e9); /* per attempt */
	int next_report = 1000;
	for (;;) {
		uint64_t now = now_ns();
		int pending = 0, done = 0, failed = 0;
		for (int i = 0; i < nconns; i++) {
			struct conn *c = &conns[i];
			if (c->state == CS_OPEN)
				done++;
			else if (c->state == CS_CLOSED)
				failed++;
			else if (c->state == CS_CONNECTING || c->state == CS_TLS || c->state == CS_HS) {
				if (now - c->t_connect > hs_timeout) {
					set_err("conn %d: handshake timed out", c->idx);
					conn_close(c, 1);
				} else
					pending++;
			}
		}
		if (done == nconns)
			return 1;
		if (done + failed == nconns || now > deadline || stop_flag) {
			set_err("ramp: %d of %d connections open, %d failed after %.1f s", done, nconns, failed,
				(double)(now - t0) / 1e9);
			return 0;
		}
		if (done >= next_report) {
			note("ramp: %d/%d open (%.1f s)", done, nconns, (double)(now - t0) / 1e9);
			next_report += 1000;
		}
		for (int i = 0; i < nconns && pending < opt.batch; i++)
			if (conns[i].state == CS_NEW) {
				if (conns[i].tries) /* bounded back-off before a retry */
					usleep(1000u * conns[i].tries);
				conn_start(&conns[i], now);
				pending++;
			}
		loop_once(10);
	}
}

/* The sender (rooms: one open member of each room) sends barrier id; wait
 * until every open member has seen it. */
static int barrier(uint64_t id, double timeout_s)
{
	uint64_t deadline = now_ns() + (uint64_t)(timeout_s * 1e9);
	if (opt.mode == M_ROOMS) {
		for (int r = 0; r < nconns; r += opt.room_size)
			for (int i = r; i < nconns && i < r + opt.room_size; i++)
				if (conns[i].state == CS_OPEN) {
					queue_barrier(&conns[i], id);
					conn_flush(&conns[i]);
					break;
				}
	} else {
		queue_barrier(sender, id);
		if (conn_flush(sender) < 0)
			return 0;
	}
	for (;;) {
		int ok = 1;
		for (int i = 0; i < nconns; i++)
			if (conns[i].state == CS_OPEN && conns[i].barrier != id) {
				ok = 0;
				break;
			}
		if (ok)
			return 1;
		if (now_ns() > deadline || (sender && sender->state != CS_OPEN) || stop_flag) {
			set_err("barrier %" PRIu64 " not seen by everyone within %.0f s", id, timeout_s);
			return 0;
		}
		loop_once(10);
	}
}

/* rooms: how many of the messages its room's members sent c has not seen;
 * adds how many it should see to *expected if given. */
static uint64_t rooms_missing(const struct conn *c, uint64_t *expected)
{
	int r0 = c->idx / opt.room_size * opt.room_size;
	uint64_t miss = 0;
	for (int i = r0; i < nconns && i < r0 + opt.room_size; i++) {
		uint64_t want = conns[i].sent, have = c->slot_seq[i - r0];
		if (expected)
			*expected += want;
		if (have < want)
			miss += want - have;
	}
	return miss;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* ------------------------------------------------------------ reporting */

static const char *mode_name(void)
{
	static const char *names[] = {"broadcast", "rate", "echo", "idle", "form", "rooms"};
	return names[opt.mode];
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void report(int ok, uint64_t ramp_ns, int64_t cpu0, int64_t cpu1, int64_t rss0, int64_t rss1,
		   int64_t self0, int64_t self1, uint64_t sent, uint64_t expected)
{
	double win = t_window_end > t_window_start ? (double)(t_window_end - t_window_start) / 1e9 : 0;
	double cpu = (cpu0 >= 0 && cpu1 >= 0) ? (double)(cpu1 - cpu0) / 1e9 : -1;
	printf("{\"mode\":\"%s\",\"ok\":%s,\"n\":%d,\"inflight\":%d,\"rate\":%.0f,\"msg_size\":%d,\"json\":%s,", mode_name(),
	       ok ? "true" : "false", opt.n, opt.inflight, opt.rate, opt.msg_size, opt.json ? "true" : "false");
	printf("\"deflate\":%s,\"prose\":%s,\"compressed\":%" PRIu64 ",", opt.deflate ? "true" : "false",
	       opt.prose ? "true" : "false", st.compressed);
	if (opt.mode == M_ROOMS) {
		/* messages, each counted once: sent with an intended time inside the
		 * sending window, and delivered (deliveries / members per room) */
		double sw = (double)opt.duration;
		printf("\"room_size\":%d,\"rooms\":%d,\"msgs_sent_window\":%" PRIu64 ",\"msgs_sent_per_s\":%.0f,"
		       "\"msgs_per_s\":%.0f,",
		       opt.room_size, (opt.n + opt.room_size - 1) / opt.room_size, rooms_sent_window,
		       (double)rooms_sent_window / sw, win > 0 ? (double)st.deliveries_window / opt.room_size / win : 0);
	}
	printf("\"open\":%d,\"conn_failed\":%" PRIu64 ",\"ramp_s\":%.3f,\"barrier_s\":%.3f,", st.open, st.conn_failed,
	       (double)ramp_ns / 1e9, (double)barrier_ns / 1e9);
	printf("\"sent\":%" PRIu64 ",\"expected\":%" PRIu64 ",\"deliveries\":%" PRIu64 ",\"deliveries_total\":%" PRIu64 ",",
	       sent, expected, st.deliveries_window, st.deliveries_total);
	printf("\"window_s\":%.3f,\"deliveries_per_s\":%.0f,", win, win > 0 ? (double)st.deliveries_window / win : 0);
	printf("\"server_cpu_s\":%.3f,\"deliveries_per_cpu_s\":%.0f,\"cpu_us_per_delivery\":%.4f,", cpu,
	       cpu > 0 ? (double)st.deliveries_window / cpu : -1,
	       cpu >= 0 && st.deliveries_window ? cpu * 1e6 / (double)st.deliveries_window : -1);
	printf("\"server_cpu_pct\":%.1f,\"loadgen_cpu_pct\":%.1f,", win > 0 && cpu >= 0 ? 100 * cpu / win : -1,
	       win > 0 ? 100 * (double)(self1 - self0) / 1e9 / win : -1);
	if (core_ok && win > 0) {
		double tk = (double)clk_tck;
		double sb = (double)(core_srv1.busy - core_srv0.busy) / tk;
		printf("\"server_core_busy_pct\":%.1f,\"server_core_softirq_pct\":%.1f,\"server_core_steal_pct\":%.1f,"
		       "\"deliveries_per_core_busy_s\":%.0f,\"loadgen_core_busy_pct\":%.1f,",
		       100 * sb / win, 100 * (double)(core_srv1.softirq - core_srv0.softirq) / tk / win,
		       100 * (double)(core_srv1.steal - core_srv0.steal) / tk / win,
		       sb > 0 ? (double)st.deliveries_window / sb : -1,
		       100 * (double)(core_lg1.busy - core_lg0.busy) / tk / win);
	}
	printf("\"lat_n\":%" PRIu64 ",\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,",
	       lat.n, hist_pct(&lat, 50) / 1e3, hist_pct(&lat, 99) / 1e3, hist_pct(&lat, 99.9) / 1e3, lat.max / 1e3,
	       lat.n ? (double)lat.sum / (double)lat.n / 1e3 : 0);
	printf("\"lost\":%" PRIu64 ",\"reordered\":%" PRIu64 ",\"proto_errors\":%" PRIu64 ",\"server_closed\":%" PRIu64 ",",
	       st.lost, st.reordered, st.proto_err, st.server_closed);
	printf("\"last_close_code\":%d,\"notices\":%" PRIu64 ",\"replayed\":%" PRIu64 ",\"other_msgs\":%" PRIu64
	       ",\"pings\":%" PRIu64 ",",
	       st.last_close_code, st.notices, st.replayed, st.other, st.pings);
	printf("\"rss_before_kb\":%" PRId64 ",\"rss_kb\":%" PRId64 ",", rss0, rss1);
	if (opt.mode == M_FORM)
		printf("\"form_s\":%.3f,", win);
	int held = opt.mode == M_IDLE ? st.open : nconns;
	printf("\"rss_per_conn_bytes\":%.0f,", rss0 >= 0 && rss1 >= 0 && held ? (double)(rss1 - rss0) * 1024 / held : -1);
	printf("\"error\":");
	json_str(st.first_error);
	printf("}\n");
	fflush(stdout);
}

/* ----------------------------------------------------------------- main */

static void usage(void)
{
	fputs("usage: loadgen MODE --port P [options]\n"
	      "  MODE: broadcast | rate | echo | idle | form | rooms\n"
	      "  --host H           server address (127.0.0.1)\n"
	      "  --port P           server port\n"
	      "  -n, --conns N      receivers (broadcast/rate), connections (echo/idle/rooms),\n"
	      "                     members of the one room, the sender included (form)\n"
	      "  -k, --inflight K   messages in flight (broadcast: sender; echo: per conn) [16]\n"
	      "  --rate R           rate: messages/s offered by the sender; rooms: by all members [100]\n"
	      "  -d, --duration S   measured seconds [10]\n"
	      "  --warmup S         unmeasured seconds before the window [1]\n"
	      "  --drain S          max seconds to wait for stragglers after sending stops [10]\n"
	      "  --connect-timeout S  overall bound on ramp-up [120]\n"
	      "  --batch N          concurrent connection attempts [256]\n"
	      "  --hs-timeout S     bound on one connect + handshake attempt [30]\n"
	      "  --msg-size B       text payload bytes, >= 40 [128]\n"
	      "  --room NAME        room (idle, rooms: prefix) [bench; rooms: r, as in r0042]\n"
	      "  --room-size N      idle, rooms: connections per room [100]\n"
	      "  --json             speak the JSON subprotocol " JSON_PROTOCOL " (not in echo)\n"
	      "  --tls              speak TLS (wss://; the certificate is not verified)\n"
	      "  --deflate          offer permessage-deflate and inflate what comes compressed\n"
	      "  --prose            pad chat messages with English sentences, not 'x'\n"
	      "  --hold S           idle: hold after reporting (SIGUSR1/SIGTERM ends it) [0]\n"
	      "  --settle S         idle: quiet time before reading RSS [1]\n"
	      "  --server-pid PID   read CPU and RSS of this process from /proc\n"
	      "  --server-cpu N     the CPU the server is pinned to: also report that core's busy time\n"
	      "  --port2 P          a second node: every odd receiver connects there (cluster)\n"
	      "  --also-pid PID     add this process's CPU to the server's (repeatable, at most 8)\n"
	      "  --tag STR          name prefix, to keep names unique across runs\n"
	      "  --src-addrs N      connect from 127.0.0.2 ... 127.0.0.(N+1) [16 when HOST is 127.x, else 1]\n"
	      "  -v                 progress on stderr\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"host", 1, 0, 'H'}, {"port", 1, 0, 'p'}, {"conns", 1, 0, 'n'}, {"inflight", 1, 0, 'k'},
		{"rate", 1, 0, 'r'}, {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'w'}, {"drain", 1, 0, 'D'},
		{"connect-timeout", 1, 0, 'T'}, {"batch", 1, 0, 'b'}, {"msg-size", 1, 0, 's'},
		{"room", 1, 0, 'R'}, {"room-size", 1, 0, 'g'}, {"hold", 1, 0, 'h'}, {"settle", 1, 0, 'S'},
		{"hs-timeout", 1, 0, 'W'}, {"server-pid", 1, 0, 'P'}, {"server-cpu", 1, 0, 'C'}, {"port2", 1, 0, '2'}, {"also-pid", 1, 0, 'a'}, {"tag", 1, 0, 't'}, {"src-addrs", 1, 0, 'A'},
		{"json", 0, 0, 'J'}, {"tls", 0, 0, 'L'}, {"deflate", 0, 0, 'Z'}, {"prose", 0, 0, 'X'},
		{"verbose", 0, 0, 'v'}, {0, 0, 0, 0},
	};
	if (argc < 2)
		usage();
	const char *m = argv[1];
	if (!strcmp(m, "broadcast"))
		opt.mode = M_BROADCAST;
	else if (!strcmp(m, "rate"))
		opt.mode = M_RATE;
	else if (!strcmp(m, "echo"))
		opt.mode = M_ECHO;
	else if (!strcmp(m, "idle"))
		opt.mode = M_IDLE;
	else if (!strcmp(m, "form"))
		opt.mode = M_FORM;
	else if (!strcmp(m, "rooms"))
		opt.mode = M_ROOMS;
	else
		usage();
	optind = 2;
	int ch;
	while ((ch = getopt_long(argc, argv, "n:k:d:v", lo, NULL)) != -1) {
		switch (ch) {
		case 'H': opt.host = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 'n': opt.n = atoi(optarg); break;
		case 'k': opt.inflight = atoi(optarg); break;
		case 'r': opt.rate = atof(optarg); break;
		case 'd': opt.duration = atof(optarg); break;
		case 'w': opt.warmup = atof(optarg); break;
		case 'D': opt.drain = atof(optarg); break;
		case 'T': opt.connect_timeout = atof(optarg); break;
		case 'b': opt.batch = atoi(optarg); break;
		case 's': opt.msg_size = atoi(optarg); break;
		case 'R': opt.room = optarg; opt.room_given = 1; break;
		case 'g': opt.room_size = atoi(optarg); break;
		case 'h': opt.hold = atof(optarg); break;
		case 'S': opt.settle = atof(optarg); break;
		case 'W': opt.hs_timeout = atof(optarg); break;
		case 'P': opt.server_pid = atoi(optarg); break;
		case 'C': opt.server_cpu = atoi(optarg); break;
		case '2': opt.port2 = atoi(optarg); break;
		case 'a':
			if (opt.nalso == (int)(sizeof opt.also_pid / sizeof opt.also_pid[0]))
				die("at most 8 --also-pid");
			opt.also_pid[opt.nalso++] = atoi(optarg);
			break;
		case 't': opt.tag = optarg; break;
		case 'A': opt.src_addrs = atoi(optarg); break;
		case 'J': opt.json = 1; break;
		case 'L': opt.tls = 1; break;
		case 'Z': opt.deflate = 1; break;
		case 'X': opt.prose = 1; break;
		case 'v': verbose = 1; break;
		default: usage();
		}
	}
	if (opt.port <= 0 || opt.n <= 0 || opt.inflight <= 0 || opt.msg_size < 40 || opt.msg_size > 4000 ||
	    opt.batch <= 0 || opt.rate <= 0 || opt.duration <= 0)
		usage();
	if (opt.json && opt.mode == M_ECHO)
		die("--json: echo servers speak no subprotocol");
	if (opt.mode == M_ROOMS && (opt.room_size <= 0 || opt.room_size > 65535))
		die("rooms: --room-size must be 1..65535 (the slot is 16 bits of the sequence)");
	clk_tck = sysconf(_SC_CLK_TCK);
	cpu_set_t set;
	CPU_ZERO(&set);
	if (!sched_getaffinity(0, sizeof set, &set) && CPU_COUNT(&set) == 1)
		lg_cpu = sched_getcpu(); /* pinned: that core's busy time is ours */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)opt.n + 16 > rl.rlim_cur)
			die("%d connections need more than the open-file limit %llu", opt.n,
			    (unsigned long long)rl.rlim_cur);
	}
	memset(&srv_addr, 0, sizeof srv_addr);
	srv_addr.sin_family = AF_INET;
	srv_addr.sin_port = htons((uint16_t)opt.port);
	if (inet_pton(AF_INET, opt.host, &srv_addr.sin_addr) != 1)
		die("bad host %s (an IPv4 address)", opt.host);
	srv_addr2 = srv_addr;
	srv_addr2.sin_port = htons((uint16_t)opt.port2);
	if (opt.src_addrs <= 0)
		opt.src_addrs = (ntohl(srv_addr.sin_addr.s_addr) >> 24) == 127 ? 16 : 1;

	if (opt.tls) {
		tls_ctx = SSL_CTX_new(TLS_client_method());
		if (!tls_ctx)
			die("SSL_CTX_new failed");
		SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
		/* c->out may grow (move) between a partial write and its retry. */
		SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	/* broadcast and rate: N receivers + a sender; form: N members, the last the sender */
	int has_sender = opt.mode == M_BROADCAST || opt.mode == M_RATE || opt.mode == M_FORM;
	nconns = opt.mode == M_FORM ? opt.n : opt.n + has_sender;
	conns = calloc((size_t)nconns, sizeof *conns);
	if (!conns)
		die("out of memory");
	for (int i = 0; i < nconns; i++) {
		conns[i].fd = -1;
		conns[i].idx = i;
		conns[i].role = opt.mode == M_ECHO ? R_ECHO : opt.mode == M_IDLE ? R_IDLE : opt.mode == M_ROOMS ? R_MEMBER : R_RECV;
		conns[i].port2 = opt.port2 > 0 && conns[i].role == R_RECV && (i & 1);
		if (opt.mode == M_ROOMS && !(conns[i].slot_seq = calloc((size_t)opt.room_size, sizeof(uint64_t))))
			die("out of memory");
	}
	if (has_sender) {
		sender = &conns[nconns - 1];
		sender->role = R_SEND;
	}
	int64_t rss0 = proc_rss_kb(opt.server_pid);
	int64_t cpu0 = -1, cpu1 = -1, rss1 = -1, self0 = 0, self1 = 0;
	if (opt.mode == M_FORM) { /* the window is the forming itself */
		cpu0 = servers_cpu_ns();
		self0 = self_cpu_ns();
		core_ok = !core_read(opt.server_cpu, &core_srv0) && !core_read(lg_cpu, &core_lg0);
	}
	uint64_t t0 = now_ns();
	int ok = ramp(opt.connect_timeout);
	uint64_t ramp_ns = now_ns() - t0;
	note("ramp done in %.2f s, ok=%d", (double)ramp_ns / 1e9, ok);
	uint64_t sent = 0, expected = 0;

	if (ok && opt.mode == M_IDLE) {
		/* wait until the join notices have stopped flowing */
		uint64_t deadline = now_ns() + (uint64_t)(opt.connect_timeout * 1e9);
		last_rx_ns = now_ns();
		while (!stop_flag && now_ns() - last_rx_ns < (uint64_t)(opt.settle * 1e9) && now_ns() < deadline)
			loop_once(50);
		rss1 = proc_rss_kb(opt.server_pid);
		t_window_start = t_window_end = now_ns();
		report(st.open == opt.n, ramp_ns, -1, -1, rss0, rss1, 0, 0, 0, 0);
		uint64_t until = now_ns() + (uint64_t)(opt.hold * 1e9);
		while (!stop_flag && now_ns() < until)
			loop_once(100);
		goto out;
	}
	if (ok && (has_sender || opt.mode == M_ROOMS)) {
		/* all join notices are delivered once everyone has seen this barrier */
		uint64_t tb = now_ns();
		ok = barrier(1, opt.connect_timeout);
		barrier_ns = now_ns() - tb;
		note("barrier ok=%d after %.2f s", ok, (double)(now_ns() - t0) / 1e9);
	}
	if (opt.mode == M_FORM) {
		t_window_start = t0;
		t_window_end = now_ns();
		cpu1 = servers_cpu_ns();
		self1 = self_cpu_ns();
		core_ok = core_ok && !core_read(opt.server_cpu, &core_srv1) && !core_read(lg_cpu, &core_lg1);
		rss1 = proc_rss_kb(opt.server_pid);
		ok = ok && st.open == opt.n && st.conn_failed == 0 && st.proto_err == 0 && st.server_closed == 0;
		report(ok, ramp_ns, cpu0, cpu1, rss0, rss1, self0, self1, 0, 0);
		goto out;
	}
	if (!ok) {
		report(0, ramp_ns, -1, -1, rss0, proc_rss_kb(opt.server_pid), 0, 0, 0, 0);
		goto out;
	}

	uint64_t start = now_ns();
	uint64_t ws = start + (uint64_t)(opt.warmup * 1e9);
	uint64_t we = ws + (uint64_t)(opt.duration * 1e9);
	int window_started = 0;
	int64_t self_start = self_cpu_ns();
	(void)self_start;

	if (opt.mode == M_BROADCAST) {
		t_window_start = ws; /* sender checks it to set seq_measure_from */
		for (int i = 0; i < opt.inflight; i++)
			queue_msg(sender, seq_next++, now_ns());
		conn_flush(sender);
	} else if (opt.mode == M_ECHO) {
		t_window_start = ws;
		for (int i = 0; i < nconns; i++) {
			struct conn *c = &conns[i];
			for (int k = 0; k < opt.inflight; k++)
				queue_msg(c, c->sent++, now_ns());
			conn_flush(c);
		}
		seq_measure_from = 0; /* echo: measured by time below */
	} else { /* rate, rooms */
		t_window_start = ws;
	}

	/* sending phase: warm-up then the measured window */
	uint64_t period = (uint64_t)(1e9 / opt.rate);
	uint64_t rate_t0 = start;
	while (!stop_flag) {
		uint64_t now = now_ns();
		if (!window_started && now >= ws) {
			window_started = 1;
			cpu0 = servers_cpu_ns();
			self0 = self_cpu_ns();
			core_ok = !core_read(opt.server_cpu, &core_srv0) && !core_read(lg_cpu, &core_lg0);
			if (opt.mode == M_ECHO) {
				lat = (struct hist){0};
			}
			if (opt.mode == M_RATE)
				seq_measure_from = seq_next;
		}
		if (now >= we)
			break;
		int timeout = 0;
		if (opt.mode == M_ROOMS) {
			/* the k-th message is member k % N's, due at rate_t0 + k * period;
			 * each goes out at once, in its own send, as a client's would */
			uint64_t due = (now - rate_t0) / period + 1;
			for (; seq_next < due; seq_next++) {
				struct conn *m = &conns[seq_next % (uint64_t)nconns];
				uint64_t at = rate_t0 + seq_next * period;
				if (m->state != CS_OPEN)
					continue;
				queue_msg(m, (uint64_t)(m->idx % opt.room_size) << 48 | m->sent++, at);
				conn_flush(m);
				if (at >= ws && at < we)
					rooms_sent_window++;
			}
			uint64_t next = rate_t0 + seq_next * period;
			int64_t us = next > now ? (int64_t)((next - now) / 1000) : 0;
			if (us > 100000)
				us = 100000;
			if (st.open == 0)
				break;
			loop_once_us(us);
			continue;
		}
		if (opt.mode == M_RATE) {
			uint64_t due = (now - rate_t0) / period + 1;
			if (sender->state == CS_OPEN) {
				while (seq_next < due)
					queue_msg(sender, seq_next, rate_t0 + seq_next * period), seq_next++;
				conn_flush(sender);
			}
			uint64_t next = rate_t0 + seq_next * period;
			timeout = next > now ? (int)((next - now) / 1000000) : 0;
			if (!window_started && ws > now && (int)((ws - now) / 1000000) < timeout)
				timeout = (int)((ws - now) / 1000000);
			if (timeout > 100)
				timeout = 100;
		} else {
			if (opt.mode == M_BROADCAST && sender->state != CS_OPEN)
				break;
			/* block until the next phase boundary: loadgen CPU then shows real work */
			uint64_t next = window_started ? we : ws;
			timeout = next > now ? (int)((next - now) / 1000000) + 1 : 0;
			if (timeout > 100)
				timeout = 100;
		}
		if (st.open == 0)
			break;
		loop_once(timeout);
	}
	/* stop sending; drain what is in flight */
	t_window_end = now_ns(); /* stops new sends in on_data_msg; real end set below */
	sent = opt.mode == M_ECHO ? 0 : seq_next;
	if (opt.mode == M_ROOMS) {
		sent = 0;
		for (int i = 0; i < nconns; i++)
			sent += conns[i].sent;
	}
	uint64_t drain_deadline = now_ns() + (uint64_t)(opt.drain * 1e9);
	uint64_t last_delivery = t_window_end;
	for (;;) {
		int done = 1;
		for (int i = 0; i < nconns && done; i++) {
			struct conn *c = &conns[i];
			if (c->state != CS_OPEN)
				continue;
			if (opt.mode == M_ROOMS ? rooms_missing(c, NULL) > 0
			    : opt.mode == M_ECHO ? c->next_seq < c->sent : c->next_seq < seq_next)
				done = 0;
		}
		if (done || now_ns() > drain_deadline || st.open == 0)
			break;
		uint64_t before = st.deliveries_total;
		loop_once(5);
		if (st.deliveries_total != before)
			last_delivery = now_ns();
	}
	cpu1 = servers_cpu_ns();
	self1 = self_cpu_ns();
	core_ok = core_ok && !core_read(opt.server_cpu, &core_srv1) && !core_read(lg_cpu, &core_lg1);
	rss1 = proc_rss_kb(opt.server_pid);
	t_window_end = last_delivery > t_window_end ? last_delivery : t_window_end;
	/* whatever did not arrive is lost (closed connections included) */
	for (int i = 0; i < nconns; i++) {
		struct conn *c = &conns[i];
		if (opt.mode == M_ROOMS) {
			st.lost += rooms_missing(c, &expected);
			continue;
		}
		uint64_t want = opt.mode == M_ECHO ? c->sent : seq_next;
		if (opt.mode == M_ECHO)
			expected += c->sent;
		else
			expected += seq_next;
		if (c->next_seq < want)
			st.lost += want - c->next_seq;
	}
	if (opt.mode == M_ECHO)
		sent = expected;
	ok = st.conn_failed == 0 && st.proto_err == 0 && st.server_closed == 0;
	report(ok, ramp_ns, cpu0, cpu1, rss0, rss1, self0, self1, sent, expected);
out:
	for (int i = 0; i < nconns; i++) {
		if (conns[i].fd >= 0)
			conn_close(&conns[i], 0);
		free(conns[i].slot_seq);
	}
	free(conns);
	free(rbuf);
	close(ep);
	return ok ? 0 : 1;
}
