/*
 * kclient DAX: the client's DAX range allocator, mapping on access, LRU
 * reclaim and batched REMOVEMAPPING (see kclient_dax.h for what is modelled
 * and what is not).
 */
#include "kclient_dax.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KC_REMOVE_MAX FUSE_REMOVEMAPPING_MAX_ENTRY

/* ---- requests ---- */

static int send_setup(struct kc_dax *d, struct kc_inode *in, uint64_t range,
		      unsigned slot, int write)
{
	struct fuse_setupmapping_in a = {
		.fh = UINT64_MAX,	/* what Linux always sends */
		.foffset = range << KC_RANGE_SHIFT,
		.len = KC_RANGE_SIZE,
		.flags = FUSE_SETUPMAPPING_FLAG_READ |
			 (write ? FUSE_SETUPMAPPING_FLAG_WRITE : 0),
		.moffset = (uint64_t)slot << KC_RANGE_SHIFT,
	};
	struct iovec iov = { &a, sizeof(a) };
	int err;

	err = kc_call(d->c, FUSE_SETUPMAPPING, in->nodeid, &iov, 1, NULL, 0, NULL);
	if (err && err != -ETIMEDOUT && err != -ENOTCONN)
		fprintf(stderr, "kc: SETUPMAPPING nodeid %llu foffset %llu moffset %llu %s: %s\n",
			(unsigned long long)in->nodeid, (unsigned long long)a.foffset,
			(unsigned long long)a.moffset, write ? "rw" : "ro", strerror(-err));
	return err;
}

/* REMOVEMAPPING of n slots, in requests of at most 256 entries. */
static int send_remove(struct kc_dax *d, const unsigned *slots, unsigned n)
{
	struct fuse_removemapping_one one[KC_REMOVE_MAX];
	struct fuse_removemapping_in hdr;
	int first_err = 0;

	for (unsigned done = 0; done < n; done += hdr.count) {
		struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { one, 0 } };
		int err;

		hdr.count = n - done < KC_REMOVE_MAX ? n - done : KC_REMOVE_MAX;
		for (unsigned i = 0; i < hdr.count; i++) {
			one[i].moffset = (uint64_t)slots[done + i] << KC_RANGE_SHIFT;
			one[i].len = KC_RANGE_SIZE;
		}
		iov[1].iov_len = hdr.count * sizeof(one[0]);
		err = kc_call(d->c, FUSE_REMOVEMAPPING, 0, iov, 2, NULL, 0, NULL);
		pthread_mutex_lock(&d->lock);
		d->st.remove_requests++;
		if (hdr.count > d->st.remove_largest)
			d->st.remove_largest = hdr.count;
		if (hdr.count == KC_REMOVE_MAX)
			d->st.remove_full++;
		if (!err)
			d->st.removed_ranges += hdr.count;
		else
			d->st.errors++;
		pthread_mutex_unlock(&d->lock);
		if (err) {
			fprintf(stderr, "kc: REMOVEMAPPING of %u ranges: %s\n", hdr.count,
				strerror(-err));
			if (!first_err)
				first_err = err;
		}
	}
	return first_err;
}

/* ---- slots (all with d->lock held unless said otherwise) ---- */

/* Take slot s away from whoever maps it; the caller sends the REMOVEMAPPING. */
static void slot_begin_remove(struct kc_dax *d, unsigned s)
{
	struct kc_slot *sl = &d->slots[s];

	if (sl->state == KC_SLOT_FREE)
		d->nfree--;
	else
		sl->in->range_slot[sl->range] = -1;
	sl->state = KC_SLOT_BUSY;
	sl->in = NULL;
}

/* REMOVEMAPPING of slots[0..n) with d->lock dropped, then free them. */
static int remove_slots(struct kc_dax *d, const unsigned *slots, unsigned n)
{
	int err;

	pthread_mutex_unlock(&d->lock);
	err = send_remove(d, slots, n);
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < n; i++) {
		d->slots[slots[i]].state = KC_SLOT_FREE;
		d->slots[slots[i]].writable = 0;
	}
	d->nfree += n;
	pthread_cond_broadcast(&d->cond);
	return err;
}

/* The least-recently-used idle mapped slot, or -1. */
static int lru_idle_slot(struct kc_dax *d)
{
	int best = -1;

	for (unsigned s = 0; s < d->nslots; s++) {
		const struct kc_slot *sl = &d->slots[s];

		if (sl->state != KC_SLOT_MAPPED || sl->refs)
			continue;
		if (best < 0 || sl->last_use < d->slots[best].last_use)
			best = (int)s;
	}
	return best;
}

/* Reclaim up to max idle slots, oldest first; returns how many. */
static int reclaim_locked(struct kc_dax *d, unsigned max)
{
	unsigned victims[KC_REMOVE_MAX];
	unsigned n = 0;
	int s, err;

	if (max > KC_REMOVE_MAX)
		max = KC_REMOVE_MAX;
	while (n < max && (s = lru_idle_slot(d)) >= 0) {
		slot_begin_remove(d, (unsigned)s);
		victims[n++] = (unsigned)s;
	}
	if (!n)
		return 0;
	d->st.reclaimed += n;
	err = remove_slots(d, victims, n);
	return err ? err : (int)n;
}

static int take_free_slot(struct kc_dax *d)
{
	for (unsigned s = 0; s < d->nslots; s++)
		if (d->slots[s].state == KC_SLOT_FREE) {
			d->nfree--;
			return (int)s;
		}
	return -1;
}

static void wait_slot_change(struct kc_dax *d)
{
	struct timespec ts;

	/* Bounded: a lost wake-up must not look like a deadlock. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 20 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&d->cond, &d->lock, &ts);
}

/* Map range of in into a free slot (reclaiming one if needed). */
static int map_range(struct kc_dax *d, struct kc_inode *in, uint64_t range, int write)
{
	struct kc_slot *sl;
	int s, err;

	s = take_free_slot(d);
	if (s < 0) {
		d->st.inline_reclaims++;
		if (reclaim_locked(d, 1) <= 0) {
			d->st.slot_waits++;
			wait_slot_change(d);
		}
		return -EAGAIN;	/* the caller looks again: things moved */
	}
	sl = &d->slots[s];
	sl->state = KC_SLOT_BUSY;
	sl->in = in;
	sl->range = range;
	sl->writable = write;
	sl->refs = 0;
	in->range_slot[range] = s;
	if (d->nfree < d->low_water)
		pthread_cond_signal(&d->reclaim_cond);
	pthread_mutex_unlock(&d->lock);
	err = send_setup(d, in, range, (unsigned)s, write);
	pthread_mutex_lock(&d->lock);
	if (err) {
		/* A failed setup leaves the range unmapped: the slot is free. */
		d->st.errors++;
		in->range_slot[range] = -1;
		sl->state = KC_SLOT_FREE;
		sl->in = NULL;
		d->nfree++;
		pthread_cond_broadcast(&d->cond);
		return err;
	}
	sl->state = KC_SLOT_MAPPED;
	d->st.setups++;
	pthread_cond_broadcast(&d->cond);
	return -EAGAIN;
}

/* A write to a read-only mapping: SETUPMAPPING again, with WRITE. */
static int upgrade_slot(struct kc_dax *d, struct kc_inode *in, unsigned s)
{
	struct kc_slot *sl = &d->slots[s];
	int err;

	sl->state = KC_SLOT_BUSY;
	pthread_mutex_unlock(&d->lock);
	err = send_setup(d, in, sl->range, s, 1);
	pthread_mutex_lock(&d->lock);
	sl->state = KC_SLOT_MAPPED;
	pthread_cond_broadcast(&d->cond);
	if (err) {
		d->st.errors++;
		return err;
	}
	sl->writable = 1;
	d->st.upgrades++;
	return -EAGAIN;
}

/* Find or make the slot that maps range of in, and hold a reference. */
static int pin_range(struct kc_dax *d, struct kc_inode *in, uint64_t range, int write)
{
	int err = -EAGAIN;

	pthread_mutex_lock(&d->lock);
	while (err == -EAGAIN) {
		int s = in->range_slot[range];
		struct kc_slot *sl;

		if (s < 0) {
			err = map_range(d, in, range, write);
			continue;
		}
		sl = &d->slots[s];
		if (sl->state == KC_SLOT_BUSY) {
			wait_slot_change(d);
			continue;
		}
		if (write && !sl->writable) {
			err = upgrade_slot(d, in, (unsigned)s);
			continue;
		}
		sl->refs++;
		sl->last_use = ++d->tick;
		err = s;
	}
	pthread_mutex_unlock(&d->lock);
	return err;
}

static void unpin_slot(struct kc_dax *d, unsigned s)
{
	pthread_mutex_lock(&d->lock);
	if (--d->slots[s].refs == 0)
		pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

/* ---- window access ---- */

static ssize_t dax_io(struct kc_dax *d, struct kc_inode *in, uint64_t off, void *buf,
		      size_t len, int write)
{
	size_t done = 0;

	if (off >= in->size)
		return 0;
	if (len > in->size - off)
		len = (size_t)(in->size - off);
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t range = pos >> KC_RANGE_SHIFT;
		uint64_t in_range = pos & (KC_RANGE_SIZE - 1);
		size_t n = len - done;
		uint64_t moffset;
		int s, err;

		if (n > KC_RANGE_SIZE - in_range)
			n = (size_t)(KC_RANGE_SIZE - in_range);
		if (range >= in->nranges)
			return -EFBIG;
		s = pin_range(d, in, range, write);
		if (s < 0)
			return s;
		moffset = ((uint64_t)s << KC_RANGE_SHIFT) + in_range;
		if (write)
			err = kc_window_write(d->c, moffset, (char *)buf + done, n);
		else
			err = kc_window_read(d->c, moffset, (char *)buf + done, n);
		if (err) {
			pthread_mutex_lock(&d->lock);
			if (err == -EFAULT)
				d->st.faults++;
			else
				d->st.errors++;
			fprintf(stderr, "kc: window %s FAULT: nodeid %llu file offset %llu len %zu "
				"(i_size %llu) at window offset %llu (slot %d, %s mapping): %s\n",
				write ? "write" : "read", (unsigned long long)in->nodeid,
				(unsigned long long)pos, n, (unsigned long long)in->size,
				(unsigned long long)moffset, s,
				d->slots[s].writable ? "rw" : "ro", strerror(-err));
			pthread_mutex_unlock(&d->lock);
		}
		unpin_slot(d, (unsigned)s);
		if (err)
			return err;
		done += n;
	}
	return (ssize_t)done;
}

ssize_t kc_dax_read(struct kc_dax *d, struct kc_inode *in, uint64_t off,
		    void *buf, size_t len)
{
	return dax_io(d, in, off, buf, len, 0);
}

ssize_t kc_dax_write(struct kc_dax *d, struct kc_inode *in, uint64_t off,
		     const void *buf, size_t len)
{
	return dax_io(d, in, off, (void *)buf, len, 1);
}

/* ---- reclaim, explicit removal, eviction ---- */

int kc_dax_reclaim(struct kc_dax *d, unsigned n)
{
	int ret;

	pthread_mutex_lock(&d->lock);
	ret = reclaim_locked(d, n);
	pthread_mutex_unlock(&d->lock);
	return ret;
}

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

int kc_dax_remove_random(struct kc_dax *d, unsigned n, uint64_t *seed)
{
	unsigned victims[KC_REMOVE_MAX];
	unsigned k = 0;
	int err;

	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < n && k < KC_REMOVE_MAX; i++) {
		unsigned s = (unsigned)(next_rand(seed) % d->nslots);
		const struct kc_slot *sl = &d->slots[s];

		/* Like Linux: only ranges it mapped, and none in use. */
		if (sl->state != KC_SLOT_MAPPED || sl->refs)
			continue;
		slot_begin_remove(d, s);
		victims[k++] = s;
	}
	err = k ? remove_slots(d, victims, k) : 0;
	pthread_mutex_unlock(&d->lock);
	return err ? err : (int)k;
}

int kc_dax_vmm_scan(struct kc_dax *d, unsigned n, uint64_t *seed)
{
	static __thread char *buf;
	int scanned = 0;

	if (!buf)
		buf = malloc(KC_RANGE_SIZE);	/* per thread, kept for its life */
	if (!buf)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		unsigned s = (unsigned)(next_rand(seed) % d->nslots);
		struct kc_slot *sl = &d->slots[s];
		struct kc_inode *in = NULL;
		uint64_t nodeid = 0, range = 0;
		int err;

		pthread_mutex_lock(&d->lock);
		if (sl->state == KC_SLOT_MAPPED &&
		    pthread_rwlock_tryrdlock(&sl->in->host_lock) == 0) {
			sl->refs++;	/* no REMOVEMAPPING of it while we read */
			in = sl->in;
			nodeid = in->nodeid;
			range = sl->range;
		}
		pthread_mutex_unlock(&d->lock);
		if (!in)
			continue;
		err = kc_window_read(d->c, (uint64_t)s << KC_RANGE_SHIFT, buf, KC_RANGE_SIZE);
		pthread_rwlock_unlock(&in->host_lock);
		pthread_mutex_lock(&d->lock);
		if (err) {
			if (err == -EFAULT)
				d->st.faults++;
			else
				d->st.errors++;
			fprintf(stderr, "kc: VMM read FAULT: slot %u (window offset %llu) mapping "
				"nodeid %llu file range %llu: %s\n", s,
				(unsigned long long)s << KC_RANGE_SHIFT, (unsigned long long)nodeid,
				(unsigned long long)range << KC_RANGE_SHIFT, strerror(-err));
		}
		if (--sl->refs == 0)
			pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
		if (err)
			return err;
		scanned++;
	}
	return scanned;
}

int kc_dax_evict_inode(struct kc_dax *d, struct kc_inode *in)
{
	unsigned *victims;
	unsigned k;
	int err, busy;

	/* Every range of the inode, however many: send_remove batches them. */
	victims = malloc((in->nranges ? in->nranges : 1) * sizeof(*victims));
	if (!victims)
		return -ENOMEM;
	pthread_mutex_lock(&d->lock);
	do {	/* a reclaim of one of its ranges may be in flight */
		busy = 0;
		for (unsigned r = 0; r < in->nranges; r++) {
			int s = in->range_slot[r];

			if (s >= 0 && (d->slots[s].state == KC_SLOT_BUSY || d->slots[s].refs))
				busy = 1;
		}
		if (busy)
			wait_slot_change(d);
	} while (busy);
	k = 0;
	for (unsigned r = 0; r < in->nranges; r++) {
		int s = in->range_slot[r];

		if (s >= 0) {
			slot_begin_remove(d, (unsigned)s);
			victims[k++] = (unsigned)s;
		}
	}
	err = k ? remove_slots(d, victims, k) : 0;
	pthread_mutex_unlock(&d->lock);
	free(victims);
	return err ? err : (int)k;
}

/* ---- the background reclaimer ---- */

static void *reclaimer_main(void *arg)
{
	struct kc_dax *d = arg;

	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		if (d->nfree >= d->low_water) {
			pthread_cond_wait(&d->reclaim_cond, &d->lock);
			continue;
		}
		if (reclaim_locked(d, d->batch) <= 0)
			wait_slot_change(d);	/* everything is in use: later */
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int kc_dax_init(struct kc_dax *d, struct kc_conn *c)
{
	memset(d, 0, sizeof(*d));
	d->c = c;
	d->nslots = (unsigned)(c->win_size >> KC_RANGE_SHIFT);
	if (!c->win_known || d->nslots < 2)
		return -EINVAL;
	d->slots = calloc(d->nslots, sizeof(*d->slots));
	if (!d->slots)
		return -ENOMEM;
	d->nfree = d->nslots;
	/* Like the kernel: start reclaiming when few slots (~20%) are free. */
	d->low_water = d->nslots / 5 ? d->nslots / 5 : 1;
	d->batch = d->nslots / 4 ? d->nslots / 4 : 1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	pthread_cond_init(&d->reclaim_cond, NULL);
	if (pthread_create(&d->reclaimer, NULL, reclaimer_main, d) != 0) {
		free(d->slots);
		return -EAGAIN;
	}
	return 0;
}

void kc_dax_stop(struct kc_dax *d)
{
	pthread_mutex_lock(&d->lock);
	d->stop = 1;
	pthread_cond_broadcast(&d->reclaim_cond);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->reclaimer, NULL);
}

int kc_inode_init(struct kc_inode *in, uint64_t nodeid, uint64_t fh,
		  uint64_t size, uint64_t max_size)
{
	memset(in, 0, sizeof(*in));
	in->nodeid = nodeid;
	in->fh = fh;
	in->size = size;
	in->nranges = (unsigned)((max_size + KC_RANGE_SIZE - 1) >> KC_RANGE_SHIFT);
	in->range_slot = malloc(in->nranges * sizeof(*in->range_slot));
	if (!in->range_slot)
		return -ENOMEM;
	for (unsigned r = 0; r < in->nranges; r++)
		in->range_slot[r] = -1;
	pthread_rwlock_init(&in->lock, NULL);
	pthread_rwlock_init(&in->host_lock, NULL);
	return 0;
}
