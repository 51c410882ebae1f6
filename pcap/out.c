// SPDX-License-Identifier: GPL-2.0
/* Output of `sample`: whole records, files replaced by rename, what the reader took (out.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <linux/fs.h>

#include <pktlens/array.h>
#include <pktlens/clock.h>
#include <pktlens/why.h>

#include "out.h"

#define BUF_BYTES (1U << 20)	/* written out when full, and by the caller's flushes */
#define STALL_MS 1000		/* after a stop, a reader taking nothing this long is given up */
#define NAME_KEEP 200		/* of the final name in the temporary one (NAME_MAX 255) */

struct pl_out {
	int fd;
	bool own;		/* we opened fd */
	bool reg, pipe, sock;	/* what fd is */
	char *path;		/* final name; NULL for "-" */
	char *tmp;		/* temporary name until committed */
	uint64_t base;		/* regular file: offset where our output begins */
	uint8_t *buf;		/* whole records not written yet */
	size_t len, cap;
	uint64_t done;		/* bytes write() took */
	size_t pipe_cap;	/* a pipe holds at most this much unread */
	struct rec_end {	/* records not yet known delivered: where each ends */
		uint64_t end;	/* byte offset after its last byte */
		bool packet;
	} *ends;
	size_t head, nends, ends_cap;
	uint64_t added, delivered;	/* packets */
	volatile sig_atomic_t *stop;	/* set: a stalled or interrupted write gives up */
	void (*on_wait)(void *ctx);	/* called while a write waits for a full pipe */
	void *wait_ctx;
	int err;
};


/*
 * The directory of @path must exist and take new files: one is made there and
 * removed, as the output's temporary file will be (access() says yes to root
 * where no file can be made: /proc, a read-only or full file system).
 */
static int dir_check(const char *path, char *why, size_t whylen)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX], probe[PATH_MAX + 32];
	struct stat st;
	int fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) >= sizeof(dir))
		return pl_why(why, whylen, -ENAMETOOLONG, "%s", strerror(ENAMETOOLONG));
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (slash && !slash[1])
		return pl_why(why, whylen, -EISDIR, "%s", strerror(EISDIR));	/* "dir/" */
	if (stat(dir, &st))
		return pl_why(why, whylen, -errno, "%s", strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return pl_why(why, whylen, -ENOTDIR, "%s", strerror(ENOTDIR));
	snprintf(probe, sizeof(probe), "%s/.pktlens-check.XXXXXX", dir);
	fd = mkostemp(probe, O_CLOEXEC);
	if (fd < 0)
		return pl_why(why, whylen, -errno, "%s: no file can be made there: %s", dir,
			      strerror(errno));
	close(fd);
	unlink(probe);
	return 0;
}

int pl_out_check(const char *path, char *why, size_t whylen)
{
	struct stat st;
	int fd, err;

	if (!strcmp(path, "-"))
		return 0;
	if (!*path)
		return pl_why(why, whylen, -ENOENT, "%s", strerror(ENOENT));
	if (lstat(path, &st)) {
		if (errno != ENOENT)
			return pl_why(why, whylen, -errno, "%s", strerror(errno));
		return dir_check(path, why, whylen);
	}
	if (S_ISLNK(st.st_mode))
		return pl_why(why, whylen, -ELOOP, "a symbolic link: not followed (name the file itself, or '-' "
			   "for standard output)");
	if (S_ISDIR(st.st_mode))
		return pl_why(why, whylen, -EISDIR, "%s", strerror(EISDIR));
	if (S_ISSOCK(st.st_mode))
		return pl_why(why, whylen, -ENXIO, "a socket, not a file, FIFO or device");
	if (!S_ISREG(st.st_mode))	/* a FIFO or a device is written as it is */
		return access(path, W_OK) ? pl_why(why, whylen, -errno, "%s", strerror(errno)) : 0;
	/* a capture file of a running sampler is locked (pl_out_open) */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		int attr = 0;

		err = flock(fd, LOCK_SH | LOCK_NB) && errno == EWOULDBLOCK;
		/* chattr +i or +a: the rename over it would fail, once the sampler has started */
		if (!err && !ioctl(fd, FS_IOC_GETFLAGS, &attr) &&
		    (attr & (FS_IMMUTABLE_FL | FS_APPEND_FL))) {
			close(fd);
			return pl_why(why, whylen, -EPERM, "%s (chattr +%c): not replaced",
				      attr & FS_IMMUTABLE_FL ? "immutable" : "append-only",
				      attr & FS_IMMUTABLE_FL ? 'i' : 'a');
		}
		close(fd);
		if (err)
			return pl_why(why, whylen, -EBUSY, "another pktlens sample is writing it");
	}
	return dir_check(path, why, whylen);
}

/*
 * Write a pipe without blocking, so that a reader that stops reading cannot
 * hold us once we are told to stop: on a file description of our own, since
 * O_NONBLOCK on one we share (stdout) would change it for others too.
 */
static void nonblocking(struct pl_out *o)
{
	int fd = o->fd, fl;

	if (!o->own) {
		char self[32];

		snprintf(self, sizeof(self), "/proc/self/fd/%d", o->fd);
		/* a pipe: a new description (no reader left: ENXIO rather than waiting for one) */
		fd = open(self, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return;	/* no /proc, or no reader: stay as it is */
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK)) {
		if (fd != o->fd)
			close(fd);
		return;
	}
	o->fd = fd;
	o->own = true;
}

/* A new file beside @path: ".NAME.XXXXXX", exclusive (O_EXCL: no link is followed). */
static int open_tmp(struct pl_out *o, const char *path, mode_t mode, char *why, size_t whylen)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	int dirlen = slash ? (int)(slash - path + 1) : 0;
	size_t len = strlen(path) + 16;

	o->tmp = malloc(len);
	if (!o->tmp)
		return pl_why(why, whylen, -ENOMEM, "%s", strerror(ENOMEM));
	snprintf(o->tmp, len, "%.*s.%.*s.XXXXXX", dirlen, path, NAME_KEEP, name);
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0) {
		int err = -errno;

		free(o->tmp);
		o->tmp = NULL;
		return pl_why(why, whylen, err, "%s", strerror(-err));
	}
	o->own = true;
	if (fchmod(o->fd, mode))
		return pl_why(why, whylen, -errno, "%s", strerror(errno));
	/* others checking the name (pl_out_check) see it is taken, after the rename too */
	flock(o->fd, LOCK_EX | LOCK_NB);
	return 0;
}

/*
 * A FIFO or device, as it is. A FIFO without a reader yet: opened without
 * blocking, again every 10 ms, so that a stop or the deadline ends the wait
 * (a blocking open() would outlast --duration, and a signal would fail it).
 */
static int open_as_is(const char *path, bool fifo, volatile sig_atomic_t *stop,
		      uint64_t deadline_ns, const struct pl_out_wait *w)
{
	const int flags = O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC;

	if (!fifo)
		return open(path, flags);
	for (unsigned int i = 1;; i++) {
		int fd = open(path, flags | O_NONBLOCK);

		if (fd >= 0 || errno != ENXIO)
			return fd;
		if ((stop && *stop) || pl_deadline_passed(deadline_ns)) {
			errno = ENXIO;
			return -1;
		}
		usleep(10000);
		if (w && w->fn && !(i % 10))
			w->fn(w->ctx);	/* every 100 ms, as a write's wait */
	}
}

int pl_out_open(const char *path, mode_t mode, volatile sig_atomic_t *stop, uint64_t deadline_ns,
		const struct pl_out_wait *w, struct pl_out **out, char *why, size_t whylen)
{
	struct pl_out *o = calloc(1, sizeof(*o));
	struct stat st;
	int err = 0;

	*out = NULL;
	if (!o)
		return pl_why(why, whylen, -ENOMEM, "%s", strerror(ENOMEM));
	o->fd = -1;
	o->cap = BUF_BYTES;
	o->buf = malloc(o->cap);
	if (!o->buf) {
		err = pl_why(why, whylen, -ENOMEM, "%s", strerror(ENOMEM));
		goto fail;
	}
	if (!strcmp(path, "-")) {
		o->fd = STDOUT_FILENO;
	} else {
		o->path = strdup(path);
		if (!o->path) {
			err = pl_why(why, whylen, -ENOMEM, "%s", strerror(ENOMEM));
			goto fail;
		}
		if (!lstat(path, &st) && !S_ISREG(st.st_mode)) {
			o->fd = open_as_is(path, S_ISFIFO(st.st_mode), stop, deadline_ns, w);
			if (o->fd < 0 && errno == ENXIO && S_ISFIFO(st.st_mode)) {
				err = pl_why(why, whylen, -ENXIO, "no reader opened the FIFO");
				goto fail;
			}
			if (o->fd < 0) {
				err = pl_why(why, whylen, -errno, "%s", strerror(errno));
				goto fail;
			}
			o->own = true;
		} else if ((err = open_tmp(o, path, mode, why, whylen))) {
			goto fail;
		}
	}
	if (fstat(o->fd, &st)) {
		err = pl_why(why, whylen, -errno, "%s", strerror(errno));
		goto fail;
	}
	o->reg = S_ISREG(st.st_mode);
	o->pipe = S_ISFIFO(st.st_mode);
	o->sock = S_ISSOCK(st.st_mode);
	if (o->reg) {
		/* O_APPEND (`-w - >> FILE`): writes go to the end, whatever the offset says */
		int fl = fcntl(o->fd, F_GETFL);
		off_t at = fl >= 0 && (fl & O_APPEND) ? st.st_size : lseek(o->fd, 0, SEEK_CUR);

		o->base = at > 0 ? (uint64_t)at : 0;
	}
	if (o->pipe) {
		int cap = fcntl(o->fd, F_GETPIPE_SZ);

		o->pipe_cap = cap > 0 ? (size_t)cap : 1U << 20;
		nonblocking(o);
	}
	*out = o;
	return 0;
fail:
	pl_out_close(o);
	return err;
}

/* Records whose last byte is at or below @upto are delivered. */
static void count_delivered(struct pl_out *o, uint64_t upto)
{
	while (o->head < o->nends && o->ends[o->head].end <= upto)
		o->delivered += o->ends[o->head++].packet;
	if (o->head == o->nends)
		o->head = o->nends = 0;
}

/* Where the last record that ends at or below @upto ends (@from: none does). */
static uint64_t last_whole(const struct pl_out *o, uint64_t from, uint64_t upto)
{
	for (size_t i = o->head; i < o->nends && o->ends[i].end <= upto; i++)
		from = o->ends[i].end;
	return from;
}

static int push_end(struct pl_out *o, uint64_t end, bool packet)
{
	struct rec_end *e;

	if (o->head && o->nends == o->ends_cap) {	/* reuse the consumed front */
		memmove(o->ends, o->ends + o->head, (o->nends - o->head) * sizeof(*o->ends));
		o->nends -= o->head;
		o->head = 0;
	}
	e = pl_grown(o->ends, &o->ends_cap, o->nends, sizeof(*e), 1024);
	if (!e)
		return -ENOMEM;
	o->ends = e;
	o->ends[o->nends].end = end;
	o->ends[o->nends++].packet = packet;
	return 0;
}

int pl_out_rec(struct pl_out *o, const struct iovec *iov, int n, bool packet)
{
	size_t total = 0;
	int err;

	if (o->err)
		return o->err;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (o->len && o->len + total > o->cap && (err = pl_out_flush(o)))
		return err;
	if (total > o->cap) {
		uint8_t *b = realloc(o->buf, total);

		if (!b)
			return -ENOMEM;
		o->buf = b;
		o->cap = total;
	}
	if ((err = push_end(o, o->done + o->len + total, packet)))
		return err;
	for (int i = 0; i < n; i++) {
		memcpy(o->buf + o->len, iov[i].iov_base, iov[i].iov_len);
		o->len += iov[i].iov_len;
	}
	o->added += packet;
	return 0;
}

int pl_out_flush(struct pl_out *o)
{
	uint64_t start = o->done;
	size_t off = 0;
	int err = o->err, idle_ms = 0;

	while (!err && off < o->len) {
		ssize_t n = write(o->fd, o->buf + off, o->len - off);

		if (n < 0 && errno == EINTR && !(o->stop && *o->stop))
			continue;
		if (n < 0 && errno == EAGAIN) {	/* a pipe that is full: wait until it takes more */
			struct pollfd p = { .fd = o->fd, .events = POLLOUT };

			if (!poll(&p, 1, 100) && o->stop && *o->stop && (idle_ms += 100) >= STALL_MS) {
				err = -ETIME;
				break;
			}
			if (o->on_wait)
				o->on_wait(o->wait_ctx);
			continue;
		}
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)n;
		o->done += (uint64_t)n;
		idle_ms = 0;
	}
	o->len = 0;
	if (err) {
		o->err = err;
		/* a file ends with the last record written whole, never inside one */
		if (o->reg) {
			uint64_t cut = last_whole(o, start, o->done);

			if (cut != o->done && !ftruncate(o->fd, (off_t)(o->base + cut)))
				o->done = cut;
		}
		return err;
	}
	/* a pipe may still hold what it took; everything before that was read */
	count_delivered(o, o->pipe ? (o->done > o->pipe_cap ? o->done - o->pipe_cap : 0) : o->done);
	return 0;
}

void pl_out_stop_on(struct pl_out *o, volatile sig_atomic_t *stop)
{
	o->stop = stop;
}

void pl_out_on_wait(struct pl_out *o, void (*fn)(void *ctx), void *ctx)
{
	o->on_wait = fn;
	o->wait_ctx = ctx;
}

int pl_out_commit(struct pl_out *o, char *why, size_t whylen)
{
	if (!o->tmp)
		return 0;
	if (rename(o->tmp, o->path))
		return pl_why(why, whylen, -errno, "%s", strerror(errno));
	free(o->tmp);
	o->tmp = NULL;
	return 0;
}

bool pl_out_gone(const struct pl_out *o)
{
	struct pollfd p = { .fd = o->fd };

	if (!o->pipe && !o->sock)
		return false;
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

uint64_t pl_out_bytes(const struct pl_out *o)
{
	return o->done + o->len;
}

bool pl_out_is_file(const struct pl_out *o)
{
	return o->reg && o->path;
}

int pl_out_error(const struct pl_out *o)
{
	return o->err;
}

int pl_out_finish(struct pl_out *o, uint64_t *delivered, uint64_t *added)
{
	uint64_t got;
	int unread = 0;

	pl_out_flush(o);
	got = o->done;
	/* a reader that went away took only what it read */
	if (o->pipe && pl_out_gone(o) && !ioctl(o->fd, FIONREAD, &unread) && unread > 0)
		got = (uint64_t)unread < got ? got - (uint64_t)unread : 0;
	count_delivered(o, got);
	*delivered = o->delivered;
	*added = o->added;
	return o->err;
}

void pl_out_close(struct pl_out *o)
{
	if (!o)
		return;
	if (o->own && o->fd >= 0)
		close(o->fd);
	if (o->tmp)
		unlink(o->tmp);
	free(o->tmp);
	free(o->path);
	free(o->buf);
	free(o->ends);
	free(o);
}
