/*
 * floor.c: the floor under libwschat's figures. The least work a chat server
 * can do for bench/loadgen's workloads, so that what remains is what the
 * kernel alone costs (accept, read, write, loopback TCP).
 *
 * One thread, level-triggered epoll, no libwschat code. It speaks just what
 * the load generator needs:
 *   - ws://HOST:PORT/?name=NAME&room=ROOM: a minimal HTTP upgrade (the
 *     Sec-WebSocket-Key is the only header read; SHA-1 and base64 come from
 *     libcrypto), then the welcome line
 *     "* welcome, NAME! you are in #ROOM; type /help for commands" to the
 *     newcomer and "* NAME joined #ROOM" to the members already there (not
 *     announced in rooms that already hold --quiet-above members, as
 *     libwschat does after its events refactor; --quiet-above 0 announces
 *     every join, as libwschat did before);
 *   - every masked, single-frame text message is turned into ONE server frame
 *     "[ROOM] NAME: TEXT" that is copied into the output buffer of every
 *     member, the sender included;
 *   - after each epoll_wait batch, ONE write per connection with pending
 *     output; what the kernel does not take waits for EPOLLOUT;
 *   - ping -> pong, close -> close; --echo: every text message back as it came.
 *
 * What it leaves out, on purpose (each would cost libwschat something the
 * floor does not pay): UTF-8 validation, control-character filtering, name
 * uniqueness, commands, "left" notices, output caps, keepalive pings,
 * timeouts, fragmented and binary messages (answered with close 1003), HTTP
 * error statuses beyond a bare 400.
 *
 * Build: cc -O2 -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE bench/floor.c -o floor -lcrypto
 * Run:   floor [--host 127.0.0.1] [--port 0] [--echo] [--quiet-above 500]
 * It prints "listening on ws://HOST:PORT/" once it listens (like chat-cli)
 * and exits 0 on SIGINT/SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
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
#include <unistd.h>

#define MAX_EVENTS 1024
#define READ_SIZE 65536      /* one read per readable connection per turn */
#define MAX_HEAD 8192        /* HTTP request head */
#define MAX_MESSAGE (1 << 20) /* larger frames: close 1009 */
#define BUF_MIN 256          /* first allocation of a buffer; it doubles as needed */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("floor: ", stderr);
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

/* ------------------------------------------------------------ buffers */

/* Bytes [off, len) of p are pending; cap is the allocation. */
struct buf {
	uint8_t *p;
	size_t off, len, cap;
};

/* Spare buffers. A connection holds an output buffer only while it has
 * output pending, so an idle connection costs none; drained buffers wait
 * here for the next turn instead of going back to malloc, which would hand
 * the memory back to the kernel and fault it in again on every turn. The
 * pool is emptied when the server has been idle for a second. */
static struct spare {
	uint8_t *p;
	size_t cap;
} *pool;
static size_t npool, pool_cap;

static void buf_release(struct buf *b)
{
	if (b->p) {
		if (npool == pool_cap) {
			pool_cap = pool_cap ? pool_cap * 2 : 1024;
			pool = xrealloc(pool, pool_cap * sizeof *pool);
		}
		pool[npool++] = (struct spare){b->p, b->cap};
	}
	memset(b, 0, sizeof *b);
}

static void pool_trim(void)
{
	while (npool)
		free(pool[--npool].p);
	free(pool);
	pool = NULL;
	pool_cap = 0;
	malloc_trim(0);
}

/* Room for extra more bytes at p + len. */
static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return;
	if (!b->p && npool) {
		b->p = pool[--npool].p;
		b->cap = pool[npool].cap;
		if (extra <= b->cap)
			return;
	}
	if (b->off) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + extra <= b->cap)
			return;
	}
	size_t nc = b->cap ? b->cap : BUF_MIN;
	while (nc < b->len + extra)
		nc *= 2;
	b->p = xrealloc(b->p, nc);
	b->cap = nc;
}

static void buf_append(struct buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

/* ------------------------------------------------------ connections */

struct room;

struct conn {
	int fd;
	uint8_t open;     /* handshake done: speaks WebSocket */
	uint8_t dirty;    /* on the dirty list: write at the end of this turn */
	uint8_t want_out; /* registered for EPOLLOUT: the kernel was full */
	uint8_t dead;     /* closed; freed at the end of the turn */
	struct room *room;
	size_t slot;      /* index in room->m */
	struct buf in;    /* unparsed bytes: a partial request head or frame */
	struct buf out;   /* bytes the kernel has not taken yet */
	struct conn *next_dead;
	char name[33];
};

struct room {
	struct room *next;
	struct conn **m;
	size_t n, cap;
	char name[65];
};

static struct {
	const char *host;
	int port, echo;
	size_t quiet_above;
} opt = {.host = "127.0.0.1", .port = 0, .echo = 0, .quiet_above = 500};

static int ep, lfd;
static struct room *rooms;
static struct conn **dirty;
static size_t ndirty, dirty_cap;
static struct conn *dead_list;
static uint8_t *rbuf, *fbuf; /* the shared read buffer; the frame being built */
static size_t rcap, fcap;
static unsigned long guests;
static struct {
	unsigned long long turns, reads, messages, writes, bytes, full;
} stats; /* printed on stderr at exit */
static volatile sig_atomic_t stop_flag;

static void ep_set(struct conn *c, int want_out)
{
	struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl mod: %s", strerror(errno));
	c->want_out = (uint8_t)want_out;
}

/* Put c on the list of connections written at the end of this turn. */
static void mark_dirty(struct conn *c)
{
	if (c->dirty)
		return;
	if (ndirty == dirty_cap) {
		dirty_cap = dirty_cap ? dirty_cap * 2 : 1024;
		dirty = xrealloc(dirty, dirty_cap * sizeof *dirty);
	}
	dirty[ndirty++] = c;
	c->dirty = 1;
}

/* Queue bytes for c: written at the end of the turn, or, when the kernel
 * was full last time, at the turn that reports EPOLLOUT. */
static void conn_send(struct conn *c, const void *data, size_t len)
{
	buf_append(&c->out, data, len);
	if (!c->want_out)
		mark_dirty(c);
}

static void room_remove(struct conn *c)
{
	struct room *r = c->room;
	if (!r)
		return;
	r->m[c->slot] = r->m[--r->n];
	r->m[c->slot]->slot = c->slot;
	c->room = NULL;
	if (r->n == 0) {
		struct room **pp = &rooms;
		while (*pp != r)
			pp = &(*pp)->next;
		*pp = r->next;
		free(r->m);
		free(r);
	}
}

/* Close now; the struct lives until the end of the turn, since later events
 * of the same epoll batch and the dirty list may still point at it. */
static void conn_close(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	room_remove(c);
	buf_release(&c->in);
	buf_release(&c->out);
	c->next_dead = dead_list;
	dead_list = c;
}

/* Best effort, then close: for protocol errors and the close handshake. */
static void conn_close_with(struct conn *c, unsigned code)
{
	uint8_t f[4] = {0x88, 2, (uint8_t)(code >> 8), (uint8_t)code};
	if (c->out.len == c->out.off && write(c->fd, f, sizeof f) < 0) {
		/* nothing more to do: the connection is going anyway */
	}
	conn_close(c);
}

/* One write per connection with pending output, once per turn. */
static void flush_dirty(void)
{
	for (size_t i = 0; i < ndirty; i++) {
		struct conn *c = dirty[i];
		c->dirty = 0;
		if (c->dead)
			continue;
		struct buf *b = &c->out;
		if (b->off == b->len)
			continue;
		ssize_t w = write(c->fd, b->p + b->off, b->len - b->off);
		stats.writes++;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			conn_close(c);
			continue;
		}
		if (w > 0) {
			b->off += (size_t)w;
			stats.bytes += (unsigned long long)w;
		}
		if (b->off == b->len) {
			buf_release(b);
			if (c->want_out)
				ep_set(c, 0);
		} else if (!c->want_out) {
			stats.full++;
			ep_set(c, 1);
		}
	}
	ndirty = 0;
}

/* ----------------------------------------------------------- framing */

/* Server frame header for a payload of len bytes; returns its size. */
static size_t frame_header(uint8_t *h, int opcode, size_t len)
{
	h[0] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		h[1] = (uint8_t)len;
		return 2;
	}
	if (len < 65536) {
		h[1] = 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		return 4;
	}
	h[1] = 127;
	for (int i = 0; i < 8; i++)
		h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	return 10;
}

/* Room in fbuf for a frame with a payload of len bytes; returns fbuf. */
static uint8_t *frame_buf(size_t len)
{
	if (fcap < len + 10) {
		fcap = len + 10 > 4096 ? len + 10 : 4096;
		fbuf = xrealloc(fbuf, fcap);
	}
	return fbuf;
}

/* Unmask 8 bytes at a time (the key repeats every 4, so also every 8). */
static void unmask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4])
{
	uint32_t k4;
	memcpy(&k4, key, 4);
	uint64_t k8 = (uint64_t)k4 << 32 | k4;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, src + i, 8);
		v ^= k8;
		memcpy(dst + i, &v, 8);
	}
	for (; i < n; i++)
		dst[i] = src[i] ^ key[i & 3];
}

/* Send the frame in fbuf[0, len) to every member of r but skip. */
static void room_send(struct room *r, const struct conn *skip, size_t len)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->m[i] != skip)
			conn_send(r->m[i], fbuf, len);
}

/* A text frame "PREFIX" + TEXT in fbuf, TEXT still masked in src; returns its length. */
static size_t build_text(const char *prefix, size_t plen, const uint8_t *src, size_t tlen, const uint8_t key[4])
{
	uint8_t *f = frame_buf(plen + tlen);
	size_t hl = frame_header(f, 1, plen + tlen);
	memcpy(f + hl, prefix, plen);
	unmask(f + hl + plen, src, tlen, key);
	return hl + plen + tlen;
}

/* A notice frame from a format, in fbuf; returns its length. */
static size_t build_notice(const char *fmt, ...)
{
	char text[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	size_t len = n < 0 ? 0 : (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
	uint8_t *f = frame_buf(len);
	size_t hl = frame_header(f, 1, len);
	memcpy(f + hl, text, len);
	return hl + len;
}

static void on_text(struct conn *c, const uint8_t *src, size_t len, const uint8_t key[4])
{
	stats.messages++;
	if (opt.echo) {
		conn_send(c, fbuf, build_text("", 0, src, len, key));
		return;
	}
	char prefix[112];
	int pl = snprintf(prefix, sizeof prefix, "[%s] %s: ", c->room->name, c->name);
	room_send(c->room, NULL, build_text(prefix, (size_t)pl, src, len, key));
}

/* Parse the client frames in p[0, len); returns bytes used, or -1 if c was closed. */
static ssize_t on_frames(struct conn *c, const uint8_t *p, size_t len)
{
	size_t used = 0;
	while (len - used >= 2) {
		const uint8_t *f = p + used;
		size_t avail = len - used, hl = 2;
		int fin = f[0] & 0x80, op = f[0] & 0x0f;
		uint64_t plen = f[1] & 0x7f;
		if (!(f[1] & 0x80) || (f[0] & 0x70)) {
			conn_close_with(c, 1002); /* unmasked, or RSV bits */
			return -1;
		}
		if (plen == 126) {
			if (avail < 4)
				break;
			plen = (uint64_t)f[2] << 8 | f[3];
			hl = 4;
		} else if (plen == 127) {
			if (avail < 10)
				break;
			plen = 0;
			for (int i = 0; i < 8; i++)
				plen = plen << 8 | f[2 + i];
			hl = 10;
		}
		if (plen > MAX_MESSAGE) {
			conn_close_with(c, 1009);
			return -1;
		}
		if (avail < hl + 4 + plen)
			break;
		const uint8_t *key = f + hl, *pl = f + hl + 4;
		used += hl + 4 + (size_t)plen;
		if (op == 1 && fin) {
			on_text(c, pl, (size_t)plen, key);
		} else if (op == 9 && fin && plen <= 125) {
			uint8_t *o = frame_buf((size_t)plen);
			size_t ol = frame_header(o, 10, (size_t)plen);
			unmask(o + ol, pl, (size_t)plen, key);
			conn_send(c, o, ol + (size_t)plen);
		} else if (op == 10) {
			/* unsolicited pong: ignored */
		} else if (op == 8) {
			uint8_t code[2] = {0x03, 0xe8}; /* 1000 */
			if (plen >= 2)
				unmask(code, pl, 2, key);
			conn_close_with(c, (unsigned)code[0] << 8 | code[1]);
			return -1;
		} else {
			conn_close_with(c, 1003); /* fragments and binary: not supported here */
			return -1;
		}
	}
	return (ssize_t)used;
}

/* ---------------------------------------------------------- handshake */

/* Value of a query parameter in [q, end): copied if it only has allowed characters. */
static void query_param(const char *q, const char *end, const char *key, const char *extra, char *out, size_t cap)
{
	size_t kl = strlen(key);
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *e = amp ? amp : end;
		if ((size_t)(e - q) > kl && !memcmp(q, key, kl) && q[kl] == '=') {
			const char *v = q + kl + 1;
			size_t vl = (size_t)(e - v);
			if (vl == 0 || vl >= cap)
				return;
			for (size_t i = 0; i < vl; i++) {
				char ch = v[i];
				if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
				      ch == '-' || ch == '_' || (ch && extra && strchr(extra, ch))))
					return;
			}
			memcpy(out, v, vl);
			out[vl] = 0;
			return;
		}
		q = e + 1;
	}
}

static struct room *room_join(const char *name)
{
	struct room *r;
	for (r = rooms; r; r = r->next) /* a list: the bench has at most a few hundred rooms */
		if (!strcmp(r->name, name))
			return r;
	r = calloc(1, sizeof *r);
	if (!r)
		die("out of memory");
	snprintf(r->name, sizeof r->name, "%s", name);
	r->next = rooms;
	rooms = r;
	return r;
}

static void on_open(struct conn *c, const char *room)
{
	c->open = 1;
	if (opt.echo)
		return;
	struct room *r = room_join(room);
	conn_send(c, fbuf, build_notice("* welcome, %s! you are in #%s; type /help for commands", c->name, r->name));
	if (opt.quiet_above == 0 || r->n < opt.quiet_above)
		room_send(r, NULL, build_notice("* %s joined #%s", c->name, r->name));
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->m = xrealloc(r->m, r->cap * sizeof *r->m);
	}
	c->room = r;
	c->slot = r->n;
	r->m[r->n++] = c;
}

/* The request head in p[0, len): returns bytes used, 0 if incomplete, -1 if c was closed. */
static ssize_t on_request(struct conn *c, const uint8_t *p, size_t len)
{
	static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	const char *s = (const char *)p;
	const char *end = memmem(s, len, "\r\n\r\n", 4);
	if (!end) {
		if (len > MAX_HEAD)
			goto refuse;
		return 0;
	}
	if (len < 4 || memcmp(s, "GET ", 4))
		goto refuse;
	const char *path = s + 4, *sp = memchr(path, ' ', (size_t)(end - path));
	if (!sp)
		goto refuse;
	char room[65] = "lobby";
	snprintf(c->name, sizeof c->name, "guest-%lu", ++guests);
	const char *q = memchr(path, '?', (size_t)(sp - path));
	if (q) {
		query_param(q + 1, sp, "name", NULL, c->name, sizeof c->name);
		query_param(q + 1, sp, "room", ".", room, sizeof room);
	}
	const char *key = NULL;
	size_t kl = 0;
	for (const char *line = memchr(s, '\n', (size_t)(end - s)); line && line < end;
	     line = memchr(line, '\n', (size_t)(end + 2 - line))) {
		line++;
		if ((size_t)(end - line) > 18 && !strncasecmp(line, "sec-websocket-key:", 18)) {
			key = line + 18;
			while (*key == ' ' || *key == '\t')
				key++;
			const char *eol = memchr(key, '\r', (size_t)(end + 2 - key));
			kl = (size_t)(eol - key);
			while (kl && (key[kl - 1] == ' ' || key[kl - 1] == '\t'))
				kl--;
			break;
		}
	}
	if (!key || kl == 0 || kl > 64)
		goto refuse;
	char cat[128];
	memcpy(cat, key, kl);
	memcpy(cat + kl, WS_GUID, sizeof WS_GUID - 1);
	unsigned char sha[SHA_DIGEST_LENGTH];
	SHA1((const unsigned char *)cat, kl + sizeof WS_GUID - 1, sha);
	char accept[32];
	EVP_EncodeBlock((unsigned char *)accept, sha, SHA_DIGEST_LENGTH);
	char resp[256];
	int rl = snprintf(resp, sizeof resp,
			  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			  "Sec-WebSocket-Accept: %s\r\n\r\n",
			  accept);
	conn_send(c, resp, (size_t)rl);
	on_open(c, room);
	return end + 4 - s;
refuse:
	if (write(c->fd, bad, sizeof bad - 1) < 0) {
		/* closing anyway */
	}
	conn_close(c);
	return -1;
}

/* ---------------------------------------------------------- the loop */

static void conn_readable(struct conn *c)
{
	size_t pend = c->in.len - c->in.off;
	if (rcap < pend + READ_SIZE) {
		rcap = pend + READ_SIZE;
		rbuf = xrealloc(rbuf, rcap);
	}
	if (pend)
		memcpy(rbuf, c->in.p + c->in.off, pend);
	ssize_t r = read(c->fd, rbuf + pend, rcap - pend);
	stats.reads++;
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		conn_close(c);
		return;
	}
	if (r < 0)
		return;
	size_t len = pend + (size_t)r, used = 0;
	if (!c->open) {
		ssize_t u = on_request(c, rbuf, len);
		if (u < 0)
			return;
		used = (size_t)u;
	}
	if (c->open) {
		ssize_t u = on_frames(c, rbuf + used, len - used);
		if (u < 0)
			return;
		used += (size_t)u;
	}
	/* keep the partial request head or frame for the next read */
	c->in.off = c->in.len = 0;
	if (used < len)
		buf_append(&c->in, rbuf + used, len - used);
	else if (c->in.p)
		buf_release(&c->in);
}

static void on_accept(void)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				fprintf(stderr, "floor: accept: %s\n", strerror(errno));
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as libwschat does */
		struct conn *c = calloc(1, sizeof *c);
		if (!c)
			die("out of memory");
		c->fd = fd;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			die("epoll_ctl add: %s", strerror(errno));
	}
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(void)
{
	fputs("usage: floor [--host 127.0.0.1] [--port 0] [--echo] [--quiet-above N]\n"
	      "  --quiet-above N  joins into a room that already holds N members are not\n"
	      "                   announced (as in libwschat after the events refactor) [500];\n"
	      "                   0 announces every join\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--echo"))
			opt.echo = 1;
		else if (!strcmp(a, "--host") && i + 1 < argc)
			opt.host = argv[++i];
		else if (!strcmp(a, "--port") && i + 1 < argc)
			opt.port = atoi(argv[++i]);
		else if (!strcmp(a, "--quiet-above") && i + 1 < argc)
			opt.quiet_above = (size_t)strtoul(argv[++i], NULL, 10);
		else
			usage();
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: epoll_wait returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	struct sockaddr_in sa_in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
	if (inet_pton(AF_INET, opt.host, &sa_in.sin_addr) != 1)
		die("bad host %s (an IPv4 address)", opt.host);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 || bind(lfd, (struct sockaddr *)&sa_in, sizeof sa_in) < 0 || listen(lfd, 4096) < 0)
		die("listen on %s:%d: %s", opt.host, opt.port, strerror(errno));
	socklen_t sl = sizeof sa_in;
	getsockname(lfd, (struct sockaddr *)&sa_in, &sl);
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
		die("epoll: %s", strerror(errno));
	printf("listening on ws://%s:%d/\n", opt.host, ntohs(sa_in.sin_port));
	fflush(stdout);

	static struct epoll_event evs[MAX_EVENTS];
	while (!stop_flag) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, npool ? 1000 : -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		if (n == 0) {
			pool_trim(); /* a second without events: give the spare buffers back */
			continue;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				on_accept();
				continue;
			}
			if (c->dead)
				continue;
			if (evs[i].events & EPOLLOUT)
				mark_dirty(c); /* the kernel has room again: write in this turn's flush */
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				conn_readable(c);
		}
		stats.turns++;
		flush_dirty();
		while (dead_list) {
			struct conn *d = dead_list;
			dead_list = d->next_dead;
			free(d);
		}
	}
	fprintf(stderr,
		"floor: %llu turns, %llu reads, %llu messages in, %llu writes (%llu bytes, %.1f per write), %llu times "
		"the kernel was full\n",
		stats.turns, stats.reads, stats.messages, stats.writes, stats.bytes,
		stats.writes ? (double)stats.bytes / (double)stats.writes : 0.0, stats.full);
	close(lfd);
	close(ep);
	return 0;
}
