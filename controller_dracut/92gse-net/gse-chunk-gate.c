/* gse-chunk-gate: let the tarball through chunk by chunk, each only once its
 * SHA-256 matched the signed index.
 *
 *   gse-chunk-gate LIST DIR < tarball > decompressor
 *
 * LIST is gse_caibx_ranges' table of the verified tarball index: one line per
 * chunk, in order, "FIRST LAST SHA256" (the chunk's byte range, inclusive,
 * and its SHA-256 in lower-case hex).  The stream on stdin is cut into those
 * chunks; each is held in memory until its SHA-256 equals the index's and
 * only then written to stdout.  Nothing after the last chunk is read.
 *
 * It does what gse_ranges_take | gse_ranges_check (gse-ranges-lib.sh) do with
 * dd, openssl and cat, without their copies through files and without three
 * processes per chunk: one read of every byte, one hash, one write.  A
 * reading thread fills the next of GATE_SLOTS buffers while the chunk before
 * is checked and written, so that the download never waits for the check.
 *
 * Exit status (gse-lib.sh's convention): 0 when every chunk of LIST went
 * out; 2 otherwise, with DIR/verdict and DIR/reason as gse_ranges_check
 * writes them: short (the stream ended inside or before a chunk), digest (a
 * whole chunk whose SHA-256 is not the index's), space (a chunk could not be
 * held in memory), unpack (stdout closed), and list (LIST is malformed: the
 * caller's error, never the stream's).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

/* One arriving, one being checked and written, one in between (as
 * GSE_RANGE_SLOTS in gse-ranges-lib.sh). */
#define GATE_SLOTS 3
/* The largest chunk accepted (GSE_RANGE_MAXCHUNK; gse_caibx_ranges refuses
 * an index with larger ones before this runs). */
#define GATE_MAXCHUNK ((uint64_t)64 << 20)
#define GATE_READ (1 << 20)
/* The pipes from curl and to the decompressor get this much room where the
 * kernel allows it (pipe-max-size is 1 MiB by default): fewer hand-offs of
 * 64 KiB.  Measured side by side (bench/controller/README.md). */
#define GATE_PIPE (1 << 20)

struct chunk {
	uint64_t first, last;
	char want[65];
};

struct slot {
	unsigned char *buf;
	uint64_t got;     /* bytes read into buf */
	int full;         /* filled by the reader, not yet written */
	int read_errno;   /* the read that ended the stream early failed with it */
};

static struct chunk *chunks;
static size_t nchunks;
static struct slot slots[GATE_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int stopped; /* the writer gave up: the reader stops reading */
static const char *dir;

/* Writes DIR/verdict and DIR/reason; returns 2 (the exit status). */
static int verdict(const char *v, const char *fmt, ...)
{
	char path[4096], reason[1024];
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/verdict", dir);
	if ((f = fopen(path, "w"))) {
		fprintf(f, "%s\n", v);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/reason", dir);
	if ((f = fopen(path, "w"))) {
		fprintf(f, "%s\n", reason);
		fclose(f);
	}
	return 2;
}

/* Reads LIST: 0 when every line is "FIRST LAST SHA256" with the chunks
 * following each other from byte 0, none larger than GATE_MAXCHUNK. */
static int read_list(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t cap = 0;
	uint64_t next = 0;
	char line[256];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		struct chunk c;
		size_t i;

		if (sscanf(line, "%" SCNu64 " %" SCNu64 " %64s", &c.first, &c.last, c.want) != 3 ||
		    c.first != next || c.last < c.first || c.last - c.first >= GATE_MAXCHUNK ||
		    strlen(c.want) != 64)
			goto bad;
		for (i = 0; i < 64; i++)
			if (!strchr("0123456789abcdef", c.want[i]))
				goto bad;
		if (nchunks == cap) {
			struct chunk *n = realloc(chunks, (cap = cap ? cap * 2 : 64) * sizeof(*n));
			if (!n)
				goto bad;
			chunks = n;
		}
		chunks[nchunks++] = c;
		next = c.last + 1;
	}
	fclose(f);
	return nchunks ? 0 : -1;
bad:
	fclose(f);
	return -1;
}

static uint64_t length(size_t k)
{
	return chunks[k].last - chunks[k].first + 1;
}

/* The reading thread: chunk k into slot k % GATE_SLOTS once that slot is
 * free, exactly its length (never a byte of the next chunk before its slot
 * is free, none after the last).  A stream that ends early leaves got short
 * and stops. */
static void *reader(void *unused)
{
	size_t k;

	(void)unused;
	for (k = 0; k < nchunks; k++) {
		struct slot *s = &slots[k % GATE_SLOTS];
		uint64_t len = length(k), got = 0;
		int err = 0, stop;

		pthread_mutex_lock(&lock);
		while (s->full && !stopped)
			pthread_cond_wait(&changed, &lock);
		stop = stopped;
		pthread_mutex_unlock(&lock);
		if (stop)
			break;
		while (got < len) {
			size_t want = len - got < GATE_READ ? (size_t)(len - got) : GATE_READ;
			ssize_t n = read(0, s->buf + got, want);

			if (n > 0) {
				got += (uint64_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			err = n < 0 ? errno : 0;
			break;
		}
		pthread_mutex_lock(&lock);
		s->got = got;
		s->read_errno = err;
		s->full = 1;
		pthread_cond_broadcast(&changed);
		pthread_mutex_unlock(&lock);
		if (got < len)
			break; /* the stream ended: nothing more to read */
	}
	return NULL;
}

static void hex(const unsigned char *d, unsigned n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	unsigned i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = 0;
}

static int write_all(const unsigned char *p, uint64_t n)
{
	while (n) {
		ssize_t w = write(1, p, n < GATE_READ ? (size_t)n : GATE_READ);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (uint64_t)w;
	}
	return 0;
}

/* The writer (the main thread): each chunk in order, checked, then out. */
static int gate(void)
{
	size_t k;

	for (k = 0; k < nchunks; k++) {
		struct slot *s = &slots[k % GATE_SLOTS];
		uint64_t len = length(k);
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned mdlen = 0;
		char got[2 * EVP_MAX_MD_SIZE + 1];

		pthread_mutex_lock(&lock);
		while (!s->full)
			pthread_cond_wait(&changed, &lock);
		pthread_mutex_unlock(&lock);
		if (s->got == 0 && len > 0)
			return verdict("short", "chunk %zu of %zu (bytes %" PRIu64 "-%" PRIu64 "): the stream ended before it%s%s",
				       k + 1, nchunks, chunks[k].first, chunks[k].last,
				       s->read_errno ? ": " : "", s->read_errno ? strerror(s->read_errno) : "");
		if (s->got < len)
			return verdict("short", "chunk %zu of %zu (bytes %" PRIu64 "-%" PRIu64 "): the stream ended after %" PRIu64 " bytes%s%s",
				       k + 1, nchunks, chunks[k].first, chunks[k].last, chunks[k].first + s->got,
				       s->read_errno ? ": " : "", s->read_errno ? strerror(s->read_errno) : "");
		if (!EVP_Digest(s->buf, (size_t)len, md, &mdlen, EVP_sha256(), NULL))
			return verdict("digest", "chunk %zu of %zu: SHA-256 could not be computed", k + 1, nchunks);
		hex(md, mdlen, got);
		if (strcmp(got, chunks[k].want) != 0)
			return verdict("digest", "chunk %zu of %zu (bytes %" PRIu64 "-%" PRIu64 "): received %" PRIu64 " bytes with SHA256 %s, the signed index says %s",
				       k + 1, nchunks, chunks[k].first, chunks[k].last, len, got, chunks[k].want);
		if (write_all(s->buf, len) != 0)
			return verdict("unpack", "the unpacking stopped reading");
		pthread_mutex_lock(&lock);
		s->full = 0;
		pthread_cond_broadcast(&changed);
		pthread_mutex_unlock(&lock);
	}
	return 0;
}

int main(int argc, char **argv)
{
	pthread_t t;
	uint64_t largest = 0;
	size_t k;
	int i, rc;

	if (argc != 3) {
		fprintf(stderr, "usage: gse-chunk-gate LIST DIR < stream > out\n");
		return 2;
	}
	dir = argv[2];
	/* A closed stdout is an error of write (the unpack verdict), not a
	 * signal that ends the process without one. */
	signal(SIGPIPE, SIG_IGN);
	/* Best effort: on a file or a terminal, or above the limit, it fails
	 * and nothing changes. */
	fcntl(0, F_SETPIPE_SZ, GATE_PIPE);
	fcntl(1, F_SETPIPE_SZ, GATE_PIPE);
	if (read_list(argv[1]) != 0)
		return verdict("list", "the chunk list %s is malformed", argv[1]);
	for (k = 0; k < nchunks; k++)
		if (length(k) > largest)
			largest = length(k);
	for (i = 0; i < GATE_SLOTS; i++)
		if (!(slots[i].buf = malloc((size_t)largest)))
			return verdict("space", "chunk 1 of %zu: could not be held in RAM: %d buffers of %" PRIu64 " bytes could not be allocated",
				       nchunks, GATE_SLOTS, largest);
	if (pthread_create(&t, NULL, reader, NULL) != 0)
		return verdict("space", "no thread to read the stream");
	rc = gate();
	if (rc != 0) {
		/* The reader may wait in read() for a stream that no longer
		 * matters: the process ends without it (stdin closes). */
		pthread_mutex_lock(&lock);
		stopped = 1;
		pthread_cond_broadcast(&changed);
		pthread_mutex_unlock(&lock);
		_exit(rc);
	}
	pthread_join(t, NULL);
	return 0;
}
