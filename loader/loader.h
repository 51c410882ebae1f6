/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The loader: attach/detach over netlink and bpf links, the bpffs pin layout,
 * and reading the pinned state back. Functions return 0 or -errno and leave
 * a human-readable reason in the caller's `why` buffer where they can.
 */
#ifndef __PKTLENS_LOADER_H
#define __PKTLENS_LOADER_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/bpf.h>
#include <linux/types.h>

#include "pktlens/pktlens.h"

#define PL_BPFFS "/sys/fs/bpf"
#define PL_PIN_ROOT PL_BPFFS "/pktlens"
#define PL_PIN_XDP_LINK "xdp_link"
#define PL_PIN_TC_IN_LINK "tc_in_link"
#define PL_PIN_TC_OUT_LINK "tc_out_link"
#define PL_PIN_TMP_PREFIX "tmp:"
/* the capture-only sampler's XDP program (xdp/pktlens_cap_xdp.bpf.c), held by its bpf_link */
#define PL_CAP_XDP_PROG "pl_cap_xdp"
#define PL_WHY_LEN 256

/*
 * A program the kernel refused to load or attach (the verifier, a missing feature) is
 * a runtime failure (exit 1), not bad input: its -EINVAL or -EACCES must not
 * read as a malformed argument. The reason text keeps the real errno.
 */
static inline int pl_load_err(int err)
{
	return err == -EINVAL || err == -EACCES || err == -E2BIG || err == -ERANGE ||
	       err == -ENOENT ? -ENOEXEC : err;
}
/* UAPI values from Linux 6.6 (our UAPI headers are older) */
#define PL_BPF_TCX_INGRESS 46
#define PL_BPF_TCX_EGRESS 47

/* ---- netlink (loader/netlink.c) ---- */

struct pl_link_info {
	int ifindex;
	char ifname[16];
	bool up;
	bool loopback;
	char kind[32];		/* IFLA_INFO_KIND: "veth", "bridge", ... ("" = physical) */
	unsigned int arptype;	/* ARPHRD_*: ETHER, LOOPBACK, NONE (tun, wireguard), ... */
	__u64 rx_packets, rx_bytes, rx_dropped;
	__u64 tx_packets, tx_bytes, tx_dropped;
	/*
	 * its alternative names (ip link property add ... altname), each ended
	 * by a NUL, an empty one ends the list: pl_links()'s, in its array's
	 * allocation; NULL from pl_link_get()
	 */
	const char *altnames;
};
/* an alternative name's room (ALTIFNAMSIZ): up to 127 bytes; a real name's is IFNAMSIZ */
#define PL_ALTIFNAMSIZ 128
/*
 * Look up by name (ifindex 0) or by index (name NULL); the name may be an
 * alternative name (ip link property add ... altname), @li has the real one.
 * -ENODEV when absent.
 */
int pl_link_get(const char *ifname, int ifindex, struct pl_link_info *li);
/*
 * The programs parse Ethernet frames (loopback's too): NULL for such an
 * interface, else why @li is not one (tun, wireguard and IP tunnels have no
 * link-layer header), for "DEV: <why>: ..." messages.
 */
const char *pl_link_not_ethernet(const struct pl_link_info *li, char *buf, size_t len);
/*
 * Every interface of the current network namespace (one dump), with their
 * alternative names. Caller frees *out (the names too).
 */
int pl_links(struct pl_link_info **out, size_t *n);
/* Number of filters on the clsact qdisc's ingress and egress hooks. */
int pl_clsact_filter_count(int ifindex, int *count);
/*
 * The clsact qdisc for @hook (made unless there: *@made), refused for egress
 * where the slot holds an ingress qdisc. 0 or -errno with @why.
 */
struct bpf_tc_hook;
int pl_clsact_hook(struct bpf_tc_hook *hook, const char *ifname, bool *made, char *why,
		   size_t whylen);
/* bpf_tc_attach()'s EINVAL: the kernel's word for a priority another kind of filter holds */
#define PL_CLSACT_PRIO_TAKEN "priority 1 is held by another kind of filter or one for another " \
	"protocol (tc filter show): pktlens's must run first"
/* The kind of the qdisc in the ingress slot ("clsact", "ingress"; "" = none) into @kind. */
int pl_ingress_qdisc_kind(int ifindex, char *kind, size_t len);

/* ---- bpffs layout (loader/pins.c) ---- */

/* Mount bpffs on /sys/fs/bpf if it is not, create PL_PIN_ROOT (0700). */
int pl_bpffs_ensure(char *why, size_t whylen);
/*
 * Serialise changes to attachments (attach, detach, policy, filter set,
 * stats --reset): flock PL_PIN_ROOT, waiting up to @wait_ms. Returns the
 * locked fd (the lock lasts until it is closed or the process exits, so a
 * killed pktlens never leaves it held) or -errno with @why set.
 */
int pl_change_lock(unsigned wait_ms, char *why, size_t whylen);
/* The same lock shared, for readers that no change may cut across (the IPFIX exporter). */
int pl_change_lock_shared(unsigned wait_ms, char *why, size_t whylen);
/* Inode of the current network namespace. */
int pl_netns_ino(uint64_t *ino);
/*
 * A network namespace: its inode, which the kernel reuses once it is
 * deleted, and its cookie, which it never reuses (SO_NETNS_COOKIE, Linux
 * 5.14+; 0 on older kernels).
 */
struct pl_netns {
	uint64_t ino;
	uint64_t cookie;
};
/* The current network namespace. */
int pl_netns_here(struct pl_netns *ns);
/*
 * An interface name as it appears in bpffs, and back: bpffs refuses '.' in
 * a name (eth0.100, the usual name of a VLAN), so '.' is written "%2e" and
 * '%' "%25". -ENAMETOOLONG when @len is short; decoding: -EINVAL for a name
 * no interface has (empty, '.', ':' or another escape in it).
 */
#define PL_PIN_NAME_MAX (3 * 16)
int pl_pin_name(char *buf, size_t len, const char *ifname);
int pl_pin_name_ifname(char *buf, size_t len, const char *name);
/* PL_PIN_ROOT/<netns>/<ifname as pl_pin_name() writes it> */
int pl_pin_dir(char *buf, size_t len, uint64_t netns, const char *ifname);
/*
 * An fd of the object pinned as @dir/@name, or -1 with errno set: EPROTO
 * for a map of the map table (pl_maps[]) whose type, key or value size is
 * not the table's (another pktlens's layout, or not pktlens's: reading it
 * into our structs would overrun them).
 */
int pl_pin_open(const char *dir, const char *name);
/*
 * 0 if map @fd is per-CPU exactly when @percpu says and has keys of @ksize
 * (0: any) and values of @vsize bytes (per CPU), -EPROTO if not: a lookup
 * copies the map's own sizes, once per CPU for a per-CPU map, and a pin of
 * another layout would overrun a reader's buffers.
 */
int pl_map_sized(int fd, bool percpu, size_t ksize, size_t vsize);
struct bpf_link_info;
/* The same for a pinned link, with its bpf_link_info in *@li; -1 with errno set. */
int pl_pin_link_open(const char *dir, const char *name, struct bpf_link_info *li);
/* Pin @fd as @dir/@name in one step for readers: under a temporary name, then renamed over. */
int pl_pin_replace(int fd, const char *dir, const char *name);
/*
 * bpf_map_get_next_key(@fd, NULL, @key): the first key of a map, for walks
 * that go on with bpf_map_get_next_key(); 0 or -errno (-ENOENT: empty).
 * One function for the NULL key, which valgrind 3.19 takes for an
 * unreadable key (tests/valgrind.supp).
 */
int pl_map_first_key(int fd, void *key);
/* Read the pinned metadata map @fd (-EPROTO: another pktlens version wrote it). */
int pl_meta_read(int fd, struct pl_meta *m);
/*
 * Detach the bpf_link pinned at @path at once, then unpin it. Unpinning
 * alone leaves the detach to a kernel work item (bpf_link_put() defers when
 * bpffs drops the last reference): attaching again right after, e.g. in
 * another XDP mode, could still find the old program (EEXIST).
 */
void pl_pin_link_detach(const char *path);
struct bpf_map;

/*
 * A re-attach's probes count on in the old attachment's maps: before the
 * load, @maps[i] reuses the map pinned as @dir/@names[i] when it is there
 * and alike (type, flags, sizes). Returns how many were reused.
 */
int pl_pins_reuse_maps(const char *dir, struct bpf_map *const *maps, const char *const *names,
		       size_t n);
/* pl_pin_link_detach() of each @dir/@links[i], then unlink each @dir/@maps[i]. */
void pl_pins_unpin(const char *dir, const char *const *links, size_t nlinks,
		   const char *const *maps, size_t nmaps);
/*
 * Remove a pin directory and everything pinned in it (links detached first,
 * but the probe sets' links, which other directories may pin: unpinned).
 */
int pl_pin_dir_remove(const char *dir);
/*
 * Remove leftovers of attaches that died half-way (temporary dirs of dead
 * pids), and set aside the attachments of a deleted namespace that had the
 * current one's inode. Callers hold the change lock.
 */
void pl_pins_gc(void);

/*
 * An attachment as found in bpffs. The attachments of a namespace live in
 * PL_PIN_ROOT/INODE/; when a namespace is deleted and a new one gets its
 * inode, the old one's attachments are set aside into PL_PIN_ROOT/INODE:ID/
 * (ID: the old namespace's cookie, or "p" and a program id where the kernel
 * has no cookies), where they stay readable until detached.
 */
struct pl_attachment {
	uint64_t netns;		/* namespace inode */
	char ns[48];		/* its directory under PL_PIN_ROOT: "INODE" or "INODE:ID" */
	bool ns_gone;		/* set aside: its namespace was deleted */
	char ifname[16];
	char dir[512];
	struct pl_meta meta;
	bool meta_ok;
};
/* The cookie of @a's namespace, 0 where it is not known (pl_netns_identify()). */
static inline uint64_t pl_att_cookie(const struct pl_attachment *a)
{
	return a->meta_ok ? a->meta.netns_cookie : 0;
}
/* All attachments (netns == 0: every namespace, set-aside ones too). Caller frees *out. */
int pl_attachments(uint64_t netns, struct pl_attachment **out, size_t *n);
/*
 * The attachments of namespace @ns (as pl_attachment_of() says; never a
 * deleted namespace's that had its inode), or with @ns NULL all of them
 * (pl_attachments(0)). Caller frees *out.
 */
int pl_attachments_in(const struct pl_netns *ns, struct pl_attachment **out, size_t *n);
/*
 * Attachments of the current network namespace: all of them, or just
 * @ifname (-ENOENT when it is not attached). Never one of a deleted
 * namespace that had the same inode. Caller frees *out.
 */
int pl_attachments_here(const char *ifname, struct pl_attachment **out, size_t *n);
/*
 * Whether @a belongs to namespace @ns: same inode, and same cookie where
 * both are known (without cookies, the inode alone).
 */
bool pl_attachment_of(const struct pl_attachment *a, const struct pl_netns *ns);
/* Move @a, of a deleted namespace, to PL_PIN_ROOT/INODE:ID/IFNAME (updates @a). */
int pl_attachment_set_aside(struct pl_attachment *a);
/*
 * Whether a hook of @m still runs the program it recorded on m->ifindex of
 * the current namespace (XDP, tcx or clsact): the interface is the one
 * attached, not another that got its index (program ids are not reused).
 */
bool pl_meta_live(const struct pl_meta *m);
/* The same for @m's tc hook of direction @dir alone. */
bool pl_meta_tc_live(const struct pl_meta *m, int dir);
/* The same for @m's hook @slot (PL_SLOT_*) alone. */
bool pl_meta_slot_live(const struct pl_meta *m, int slot);
/*
 * The ifindex @a's pinned XDP or tcx links are attached to (the first link that
 * holds one); 0 once the interface is gone.
 */
int pl_attachment_link_ifindex(const struct pl_attachment *a, __u32 *ifindex);
/*
 * Whether none of @a's programs exists any more, where no link holds them:
 * clsact filters go with their interface and no pin keeps their programs.
 */
bool pl_attachment_progs_gone(const struct pl_attachment *a);
/* Where an attachment's hooks run when its interface moved to another namespace. */
struct pl_moved {
	uint64_t netns;		/* that namespace's inode */
	struct pl_link_info li;	/* the interface there: index, name, kernel counters */
	unsigned int slots;	/* the hooks (1 << PL_SLOT_*) that run there */
};
/*
 * Whether @a's hooks run in another network namespace than its own, its
 * interface having moved there: 1 and *@w; 0 when they run in its own, or
 * nowhere. A device's XDP or tcx links still hold its index (the kernel
 * zeroes it when the device is deleted), libxdp's pins its dispatcher:
 * only then are the namespaces pl_netns_find() reaches looked into.
 */
int pl_attachment_moved(const struct pl_attachment *a, struct pl_moved *w);
/* "NAME in netns INODE (NETNS-NAME)" of @w, into @buf */
const char *pl_moved_fmt(const struct pl_moved *w, char *buf, size_t len);
/*
 * Why attach refuses @ifname's XDP program @id (@mode, named @prog; @also
 * ends the parenthesis): a foreign program (--force replaces it), or
 * pktlens's own of an attachment in another namespace, the interface having
 * moved here from it (its link holds it: detach that one first). Into @why;
 * returns -EBUSY.
 */
int pl_foreign_xdp_why(const char *ifname, __u32 id, const char *mode, const char *prog,
		       const char *also, char *why, size_t whylen);
/*
 * Is XDP program @id pktlens's own, of an attachment in another namespace
 * (its interface moved)? Then the reason and the detach that frees it, into
 * @why, and true.
 */
bool pl_xdp_moved_why(__u32 id, char *why, size_t whylen);
/*
 * Is a tcx program on @ifindex (of the current namespace) pktlens's own, of
 * an attachment in another namespace (its interface moved here)? Then the
 * reason and the detach that frees it, into @why, and true.
 */
bool pl_tc_moved_why(int ifindex, char *why, size_t whylen);

/* ---- who a network namespace is (loader/netns.c) ---- */

struct pl_netns_id {
	char name[256];		/* its name in /run/netns, "" when it has none */
	int pid;		/* unnamed: the lowest pid inside it (0: none found, or not asked) */
	char comm[16];		/* and its command */
};
/*
 * Name the network namespace of inode @ino; with @pid, a process inside an
 * unnamed one. From walks of /run/netns and /proc cached for a second;
 * thread safe. A @cookie (an attachment's, 0: unknown) must match too: a
 * deleted namespace's inode is soon another's.
 */
void pl_netns_identify(uint64_t ino, uint64_t cookie, bool pid, struct pl_netns_id *id);
/*
 * The file of network namespace @s, as -n and every --netns take it, into
 * @path: a path (with a '/') as is; else a name in /run/netns, and when no
 * namespace has that name and @s is all digits, the PID's /proc/PID/ns/net
 * (as nsenter -t). 0, -ENAMETOOLONG, or -EINVAL (empty, "." or "..").
 */
int pl_netns_resolve(const char *s, char *path, size_t len);
/*
 * An fd of the network namespace file @path (pl_netns_resolve()'s), read-only:
 * -EINVAL when it is not one (any other file, another kind of namespace), else
 * open()'s -errno. Never waits on a FIFO or opens a device (a tape would rewind,
 * a watchdog start): only a namespace file is opened to be read.
 */
int pl_netns_open_file(const char *path);
/*
 * An fd of the network namespace of inode @ino (@cookie as pl_netns_identify()
 * takes it), through its name in /run/netns or a process inside it; -ENOENT
 * when neither holds it (deleted, or held only by a mount or a file).
 */
int pl_netns_open(uint64_t ino, uint64_t cookie);
/*
 * @fn(@arg) on a thread of its own inside that namespace (pl_netns_open()):
 * its result, or pl_netns_open()'s, setns()'s or pthread_create()'s -errno.
 */
int pl_netns_run(uint64_t ino, uint64_t cookie, int (*fn)(void *), void *arg);
/*
 * @fn(@arg) inside every network namespace a name in /run/netns or a
 * process holds (as pl_netns_run()), until one returns > 0: that result,
 * its namespace's inode in *@ino; 0 when none did.
 */
int pl_netns_find(int (*fn)(void *), void *arg, uint64_t *ino);
/* "4026532251 (blue)", "4026531840 (pid 1 systemd)" (with @pid) or "4026532251", into @buf. */
const char *pl_netns_fmt(uint64_t ino, uint64_t cookie, bool pid, char *buf, size_t len);

/* ---- the maps of an attachment (loader/maps.c) ---- */

/*
 * Every map of the packet objects has one row in pl_maps[], and what the
 * loader does with a map follows from its row alone: which objects have it
 * and share one instance, whether it is pinned, whether `attach --force`
 * carries it over, whether rule-set programs use the attachment's. Adding a
 * map to bpf/ means adding a row here (attach refuses objects with a map
 * the table lacks, or of another type).
 */
enum pl_map_id {
	PL_MID_STATS,
	PL_MID_FLOWS,
	PL_MID_FLOW_CACHE,
	PL_MID_META,
	PL_MID_CHAIN_RES,
	PL_MID_POLICY_RULES,
	PL_MID_RULE_STATS,
	PL_MID_REDIRECT,
	PL_MID_POLICY_EXPRS,
	PL_MID_EXPR_BITS,
	PL_MID_SAMPLE_CFG,
	PL_MID_SAMPLE_STATS,
	PL_MID_SAMPLE_RING,
	PL_MID_SAMPLE_RES,
	PL_MID_XDP_CHAIN,
	PL_MID_XDP_SKB_CHAIN,
	PL_MID_TC_CHAIN,
	PL_MID_POLICY_SRC4,
	PL_MID_POLICY_SRC6,
	PL_MID_POLICY_DST4,
	PL_MID_POLICY_DST6,
	PL_MID_POLICY_LIST,
	PL_MID_POLICY_CFG,
	PL_MID_SAMPLE_HDR,
	PL_MID_POLICY_WALK,
	PL_MID_LIMIT_BUCKET,
	PL_MID_LIMIT_KEYS,
	PL_MID_LIMIT_LOCKS,
	PL_MID_SAMPLE_FLOWS,
	PL_MID_POLICY_CLASS,
	PL_MID_POLICY_BITS,
	PL_MID_POLICY_CAND,
	PL_MID_TCP_STATE,
	PL_MID_TCP_TS,
	PL_MID_TCP_STATS,
	PL_MID_RULE_CTRS,
	PL_MID_POLICY_SET,
	PL_MID_FLOW_CTL,
	PL_MID_CLOCK,
	PL_MID_RULE_GENS,
	PL_MID_FLOW_DEBT,
	PL_MID_SAMPLE_LEASE,
	PL_MID_MAX,
};

/* The objects that have a map (pl_map_def.objs) */
#define PL_OBJ_XDP (1u << 0)
#define PL_OBJ_TC (1u << 1)

/* When a map is pinned in the attachment's directory (pl_map_def.pin) */
enum pl_map_pin {
	PL_PIN_NEVER = 0,
	PL_PIN_ALWAYS,
	PL_PIN_XDP,		/* with an XDP hook (the mode's PROG_ARRAY) */
	PL_PIN_TC,		/* with a tc hook */
};

/* What `attach --force` does with the map of the attachment it replaces */
enum pl_map_keep {
	PL_KEEP_NONE = 0,	/* a fresh one */
	PL_KEEP_ALWAYS,		/* reused: the counters go on */
	PL_KEEP_FLOWS,		/* reused with the flow table when its capacity is unchanged,
				 * else the table and its cache are merged into a new table */
	PL_KEEP_RULES,		/* reused where there is one: the rules' counters and state */
	PL_KEEP_RECORD,		/* copied where there is one: the loader's record of the
				 * rules, the old attachment's as it was until the new one
				 * takes its place (a kill in between leaves it whole) */
};

/* What a rule-set object (loader/policy.c) does with the map */
enum pl_map_rules {
	PL_RS_NONE = 0,		/* not created: its programs do not use it */
	PL_RS_SHARED,		/* the attachment's pinned one */
	PL_RS_OWN,		/* its own, sized for the rule set */
};

struct pl_map_def {
	const char *name;		/* in the objects, and its pin */
	enum bpf_map_type type;		/* the kind, checked against the objects */
	unsigned int objs;		/* PL_OBJ_*: the objects that have it */
	bool shared;			/* one instance for all objects of the attachment */
	enum pl_map_pin pin;
	enum pl_map_keep keep;
	enum pl_map_rules rules;
	bool optional;			/* may be missing from an attachment (older pktlens) */
	const char *pin_skb;		/* the non-frags XDP variant (skb mode; native without
				 * frags) pins this map under .name instead */
	/*
	 * SHAPE(): the key and value sizes of the objects' map, and so of the
	 * pin readers open (pl_pin_open()); 0: a map whose layouts of older
	 * attachments its readers tell apart themselves (meta, flow_cache,
	 * sample_flows) or one never pinned
	 */
	__u32 key_size, value_size;
};

extern const struct pl_map_def pl_maps[PL_MID_MAX];

/* The row of the object map @name, or NULL. */
const struct pl_map_def *pl_map_find(const char *name);
/* The id of row @d. */
enum pl_map_id pl_map_id(const struct pl_map_def *d);
/* Whether the map @fd has row @d's type and SHAPE() (a row without one: any). */
bool pl_map_fits(int fd, const struct pl_map_def *d);
struct bpf_object;
/*
 * Check @obj (PL_OBJ_XDP or PL_OBJ_TC) against the table: each of its maps
 * has a row of the same type naming that object. 0 or -EPROTO with @why.
 */
int pl_maps_check(const struct bpf_object *obj, unsigned int obj_bit, char *why, size_t whylen);

/*
 * The flow cache (bpf/flow.h): slots per CPU as a shift, room for
 * PL_FLOW_CACHE_SHARES times a CPU's share of a table of @flows_max; size
 * @obj's map for 2^@bits slots per possible CPU; size it for a table of
 * @flows_max (*bits: the shift, for the object's pl_flow_cache_bits); the
 * shift of an existing map, -EPROTO when it is not such a cache (made by an
 * older pktlens).
 */
unsigned int pl_flow_cache_bits(__u32 flows_max);
int pl_flow_cache_set(struct bpf_object *obj, unsigned int bits);
int pl_flow_cache_size(struct bpf_object *obj, __u32 flows_max, unsigned int *bits);
int pl_flow_cache_bits_of(int fd);
/*
 * Open every pinned map of the attachment in @dir into @fd (by enum
 * pl_map_id; -1 where a map is not pinned or, if optional, absent).
 * 0 or -errno; on error nothing stays open.
 */
int pl_maps_open(const char *dir, int fd[PL_MID_MAX]);
void pl_maps_close(int fd[PL_MID_MAX]);

/* Entries per batch map call: each syscall costs tens of microseconds on slow hosts. */
#define PL_BATCH 8192U
/*
 * bpf_map_update_batch() of @n entries of @ksz/@vsz bytes in PL_BATCH
 * chunks, waiting out a momentarily empty BPF memory allocator. 0 or -errno.
 */
int pl_map_update_batch(int fd, const void *keys, size_t ksz, const void *vals, size_t vsz,
			size_t n);
/*
 * A new map like @from (not per-CPU) but of @max entries (0: as many), with
 * every entry of @from copied in PL_BATCH chunks: its fd, or -errno.
 */
int pl_map_clone(int from, __u32 max);
/* The max_entries of map @fd into *@max: 0 or -errno. */
int pl_map_max_entries(int fd, __u32 *max);

/* ---- attach/detach (loader/loader.c) ---- */

struct pl_rule_text;

struct pl_attach_opts {
	const char *ifname;
	int xdp_mode;		/* enum pl_xdp_mode, or -1 for the driver-based default */
	int tc_hooks;		/* PL_TC_IN | PL_TC_OUT, or -1 for the default */
	int tc_mech;		/* enum pl_tc_mech, or -1: tcx where the kernel has it */
	uint32_t flows_max;
	bool force;		/* reattach + down_ok, and replace a foreign XDP program */
	bool reattach;		/* over an existing pktlens attachment, keeping its counters */
	/*
	 * The interface's index the caller planned for (0: whichever has the
	 * name): another interface under the name, or an attachment of the name
	 * that records another index, is refused (renamed or created again since
	 * the plan: a re-attach would take the renamed one's hooks and counters).
	 */
	int ifindex;
	bool down_ok;		/* attach to an interface that is down */
	unsigned probes;	/* PL_PROBE_*: pinned with the attachment, in the same step */
	/*
	 * Recorded in pl_meta.managed_by; NULL: the replaced attachment's
	 * (a re-attach), else none.
	 */
	const char *owner;
	/* with @owner: its config file, recorded in pl_meta.managed_file (NULL: none) */
	const char *owner_file;
	/*
	 * What the new attachment judges and filters, in the same step (before
	 * its pins appear): with set_filter, @filter (NULL: none) instead of the
	 * replaced attachment's expression; with set_rules, @rules (ids set,
	 * counters of ids already there carried over) and the expressions of
	 * its PL_M_EXPR rules in @texts (sorted by id) instead of its rules.
	 */
	bool set_filter, set_rules;
	const char *filter;
	struct pl_rule *rules;
	size_t nrules;
	const struct pl_rule_text *texts;
	size_t ntexts;
	/*
	 * XDP's run priority in libxdp's dispatcher (lower runs first), when
	 * set; else the replaced attachment's, or PL_XDP_PRIO_DEFAULT.
	 */
	bool xdp_prio_set;
	uint32_t xdp_prio;
	/* passive TCP analysis (bpf/tcp.h), its timestamp map's capacity (0: default) */
	bool tcp_passive;
	uint32_t tcp_ts_max;
};

struct pl_attach_info {
	int ifindex;
	char ifname[16];	/* the interface's own name (DEV may be an alternative name) */
	int xdp_mode;		/* what was used */
	int tc_hooks;
	int tc_mech;
	const char *reason;	/* why those hooks (static string) */
	const char *tc_note;	/* e.g. why tcx was not used, or NULL */
	const char *xdp_note;	/* e.g. native XDP without multi-buffer frames, or NULL */
	bool xdp_disp;		/* XDP runs in libxdp's dispatcher (loader/xdp_multi.h) ... */
	uint32_t xdp_prio;	/* ... at this priority */
	const char *disp_note;	/* why XDP is attached alone (the kernel refuses the dispatcher) */
	bool replaced_foreign;
	bool reattached;	/* --force over an existing pktlens attachment */
	bool kept_counters;	/* counters and every flow carried over from that attachment */
	__u64 flows_dropped;	/* --force into a smaller table: flows that did not fit ... */
	__u64 pkts_dropped;	/* ... and their packets (with any counted between copy and
				 * switch): counted in flow_lost*, flows + lost == counters */
	size_t rules_kept;	/* policy rules carried over */
	size_t rules_dropped;	/* ... dropped: their direction has no hook now */
	/* --tcp-passive: the namespace's outstanding-timestamp map's size, set by its first
	 * analysing attach (meta.tcp_ts_max is what this one asked for) */
	uint32_t tcp_ts_max;
	struct pl_meta meta;	/* as pinned */
};

/* Errors: -ENODEV unknown interface, -ENETDOWN down, -EEXIST attached already,
 * -EBUSY foreign XDP program, others from the kernel. */
int pl_attach(const struct pl_attach_opts *o, struct pl_attach_info *info, char *why, size_t whylen);
/*
 * The hooks pl_attach() would use for @o on @li: XDP mode, tc hooks and tc
 * mechanism (PL_TC_NONE without tc hooks); returns the reason (static).
 */
const char *pl_attach_hooks(const struct pl_attach_opts *o, const struct pl_link_info *li,
			    int *xdp_mode, int *tc_hooks, int *tc_mech);
int pl_detach(const struct pl_attachment *a, char *why, size_t whylen);

/* ---- ownership and renames, for pktlens apply/daemon (loader/manage.c) ---- */

/*
 * Record @owner ("" for none) as the config managing the attachment in
 * @dir, and @file (its config file; NULL: none) where its metadata has room
 * (version 10). -EPROTO: its metadata predates pl_meta.managed_by (re-attach
 * it).
 */
int pl_meta_set_owner(const char *dir, const char *owner, const char *file, char *why,
		      size_t whylen);
/*
 * The interface of @a is now called @ifname: move its pins there (one
 * rename) and record the name. -EEXIST when @ifname has pins already.
 */
int pl_attachment_rename(const struct pl_attachment *a, const char *ifname, char *why,
			 size_t whylen);
/*
 * Two interfaces that traded names (or a chain of renames, one pair at a
 * time): the pins of @a and @b exchange places in one step (renameat2
 * RENAME_EXCHANGE), each recording its new directory's name; @a's pins
 * are then under @b->ifname and @b's under @a->ifname.
 */
int pl_attachment_swap(const struct pl_attachment *a, const struct pl_attachment *b, char *why,
		       size_t whylen);

const char *pl_xdp_mode_name(int mode);
/* What an EOPNOTSUPP of a native-mode XDP attach means, alone or in libxdp's dispatcher. */
#define PL_XDP_NO_NATIVE_HINT " (driver lacks native XDP; try --xdp skb)"
const char *pl_tc_mech_name(int mech);

/* ---- filter chaining (loader/chain.c) ---- */

/* The chain maps and metadata of one attachment. */
struct pl_chain {
	int res_fd;		/* chain_res */
	int xdp_fd;		/* xdp_chain, -1 without an XDP hook */
	int tc_fd;		/* tc_chain, -1 without tc hooks */
	int meta_fd;
	struct pl_meta meta;
	bool xdp_no_tail;	/* the XDP entry does not tail-call (loader/xdp_multi.h) */
	char dir[512];		/* its pins; "" in attach, which loads what the chain needs */
};

/* Open the pins of the attachment in @dir. */
int pl_chain_open(const char *dir, struct pl_chain *c);
void pl_chain_close(struct pl_chain *c);
/*
 * Compile @expr (libpcap), translate and load it for every hook of @c, then
 * chain it in, replacing any expression before it, and record it in the
 * metadata. On any error nothing changes: -EINVAL bad expression (libpcap's
 * message in @why), -EOPNOTSUPP needs a live capture, -E2BIG too long, else
 * from the kernel.
 */
int pl_chain_set(struct pl_chain *c, const char *expr, char *why, size_t whylen);
/* Unchain the expression from every hook (no error when none was set). */
int pl_chain_clear(struct pl_chain *c, char *why, size_t whylen);
/* Names of the hooks an expression is chained on ("xdp in", "tc out"). */
size_t pl_chain_hooks(const struct pl_chain *c, const char *names[PL_SLOT_MAX]);
/* The PROG_ARRAY of the hook of @slot (enum pl_slot), -1 if not attached. */
int pl_chain_fd(const struct pl_chain *c, int slot);
/*
 * Compile and translate @expr for the hook of @slot and load it as a chain
 * stage that stores its verdict in @res_fd[slot] and tail-calls the slots
 * @next[0..nnext) in order (pl_ebpf_chain()). The program fd, or -errno
 * with @why (-EINVAL: a bad expression, as pl_chain_set()).
 */
int pl_chain_load_stage(const struct pl_chain *c, int slot, int res_fd, const __u32 *next,
			__u32 nnext, const char *expr, char *why, size_t whylen);
/* Wait until no packet can still be inside a program just unlinked (an RCU grace period). */
void pl_wait_for_packets(void);

/* ---- policy rules (loader/policy.c) ---- */

/* The pins of one attachment, for its rule sets. */
struct pl_policy {
	char dir[512];
	struct pl_meta meta;
	int fd[PL_MID_MAX];	/* pl_maps_open(): policy_rules holds the rules by id,
				 * policy_exprs the texts of expression rules */
	/*
	 * Counter keys of generation g >= 1 (PL_RULE_GEN) are in gen_fd[g],
	 * where @gens; else every key is in rule_stats (an attachment made
	 * before generations). -1: no map of that generation yet.
	 */
	bool gens;
	int gen_fd[PL_RULE_GENS];
	/*
	 * Set by attach --force over an attachment without XDP: the rules did
	 * not run at XDP, so no devmap entry of theirs is gone, all are made
	 * (pl_policy_open() clears it).
	 */
	bool xdp_new;
};

/* The expression of rule @id (PL_M_EXPR). */
struct pl_rule_text {
	__u32 id;
	char *text;
};

int pl_policy_open(const char *dir, struct pl_policy *p);
void pl_policy_close(struct pl_policy *p);
/* Sort by direction, priority, id: the order rules are tried in. */
void pl_policy_sort(struct pl_rule *rules, size_t n);
/* All recorded rules, sorted. Caller frees *out. */
int pl_policy_rules(const struct pl_policy *p, struct pl_rule **out, size_t *n);
/* Rule @id, by id (@out may be NULL). 0, -ENOENT: no such rule, or -errno. */
int pl_policy_rule_find(const struct pl_policy *p, __u32 id, struct pl_rule *out);
/* Whether the attachment in @dir has rule @id: 0, -ENOENT (also: an id out of range), or -errno. */
int pl_policy_has_rule(const char *dir, __u32 id);
/* Hits of recorded rule @r summed over CPUs (last_ns: the latest). */
int pl_policy_rule_stats(const struct pl_policy *p, const struct pl_rule *r,
			 struct pl_rule_stats *sum);
/*
 * Keys a --per src|dst|flow limit rule tracks now (its LRU map's entries);
 * its keys_new less these were evicted. -ENOENT for other rules.
 */
int pl_policy_limit_keys(const struct pl_policy *p, const struct pl_rule *r, __u64 *keys);
/*
 * Whether recorded rule @r is an XDP --redirect whose target the kernel
 * took out of the devmap (the interface went away, or left the namespace):
 * its packets drop, even once another interface has that index, until a
 * rule new to the set names that interface (pl_policy_commit()).
 */
bool pl_policy_redirect_gone(const struct pl_policy *p, const struct pl_rule *r);
/* Keys a --per limit rule's LRU map evicted: inserted (@s->keys_new) and no longer there. */
static inline __u64 pl_policy_limit_evicted(const struct pl_rule_stats *s, __u64 keys)
{
	return s->keys_new > keys ? s->keys_new - keys : 0;
}
/* Whether the hook of @slot (enum pl_slot) judges rules. */
bool pl_policy_judges(const struct pl_policy *p, int slot);
/* Whether some hook of the attachment judges rules of direction @dir. */
bool pl_policy_has_dir(const struct pl_policy *p, int dir);
/*
 * The bound of the rule walk without bpf_loop() (PL_POLICY_LIST_BOUNDED
 * list rules of direction @dir): 0, or -ENOSYS naming the rule past it and
 * the release that lifts it. pl_policy_commit() checks it; apply's plan too,
 * before any change.
 */
int pl_policy_bound(const struct pl_rule *rules, size_t n, int dir, char *why, size_t whylen);
/* Texts of all expression rules, sorted by id. Free with pl_policy_texts_free(). */
int pl_policy_exprs(const struct pl_policy *p, struct pl_rule_text **out, size_t *n);
void pl_policy_texts_free(struct pl_rule_text *t, size_t n);
/* Sort by id; the text of rule @id in sorted @t, or NULL. */
void pl_policy_texts_sort(struct pl_rule_text *t, size_t n);
const char *pl_policy_text(const struct pl_rule_text *t, size_t n, __u32 id);
/* FNV-1a of an expression text (pl_rule.expr_hash). */
__u32 pl_policy_expr_hash(const char *text);
/* pl_rule.ctr for pl_policy_commit(): this id now names another rule, with its own counters. */
#define PL_RULE_CTR_NEW 0xffffffffU
/*
 * Make @rules (ids 1..PL_POLICY_RULES_MAX, unique) the whole rule set,
 * atomically per hook program; counters of ids already there carry over
 * (ctr PL_RULE_CTR_NEW: not those of the id's old rule). @texts (sorted by id)
 * give the expression of every PL_M_EXPR rule. On error nothing changed and
 * @why says why: -EEXIST duplicate id, -E2BIG over a limit, -ERANGE an id out
 * of range, -ENOTSUP no hook for a direction, -EINVAL a bad expression, else
 * from the kernel. Sorts @rules and sets their ctr.
 */
/*
 * Settle the journal a killed pl_policy_commit() left (loader/policy.c): the
 * record of what runs pinned as the record, the counters, limit state and
 * redirect targets of rules that do not run removed. Nothing without one.
 * Under the lock; pl_policy_commit() does it first.
 */
int pl_policy_settle(struct pl_policy *p, char *why, size_t whylen);
int pl_policy_commit(struct pl_policy *p, struct pl_rule *rules, size_t n,
		     const struct pl_rule_text *texts, size_t ntexts, char *why, size_t whylen);

/* ---- pcap samples (loader/sample.c) ---- */

struct pl_sample_opts {
	const char *expr;	/* tcpdump expression; NULL: every packet */
	__u32 dirs;		/* bit (1 << enum pl_dir) per direction sampled */
	__u32 every;		/* 1 in N, per CPU */
	__u32 snaplen;
	__u32 ring_bytes;	/* ring buffer size: a power of two >= the page size */
	bool policy;		/* what policy --sample rules choose, not an own selection */
	__u32 verdicts;		/* bit (1 << enum pl_verdict) per verdict kept; 0: all */
	__u32 rule;		/* only what this policy rule judged or sampled; 0: any */
	__u32 hooks;		/* bit (1 << enum pl_hook) per hook sampled; 0: as dirs say */
	bool per_flow;		/* every: the first N packets of each flow instead of 1 in N */
};

/* A running sampler on one attachment. */
struct pl_sampler {
	struct pl_chain c;
	int dir_fd;		/* the pin directory, flock()ed while sampling */
	int cfg_fd, stats_fd, outer_fd, res_fd;
	int flows_fd;		/* sample_flows, -1: attached by a pktlens without it */
	int ring_fd;		/* the ring buffer, -1 before start */
	int lease_fd;		/* sample_lease, -1: attached by a pktlens without it */
	__u64 lease_until;	/* CLOCK_MONOTONIC ns: the lease last written, 0: none */
	__u32 slots;		/* hooks sampled: bit (1 << enum pl_slot) */
	bool staged[PL_SLOT_MAX];	/* a SAMPLE stage is chained on the hook */
	bool live;		/* sample_cfg says we are sampling */
	struct pl_sample_stats base[PL_SLOT_MAX];	/* counters at start */
};

/*
 * Bytes of ring buffer one packet of @snaplen bytes takes at most (its
 * record header included): a smaller ring could never hold one.
 */
__u32 pl_sample_ring_min(__u32 snaplen);
/* Open the pins of the attachment in @dir. -ENOENT: attached by an older pktlens. */
int pl_sample_open(const char *dir, struct pl_sampler *s);
/*
 * Take the attachment (-EBUSY when another sampler holds it), create the
 * ring, chain the expression's SAMPLE stage on the hooks sampled and turn
 * sampling on. Sampled hooks: per direction asked for, XDP for ingress
 * when attached (else tc ingress), tc egress. On error nothing is left
 * changed: -EINVAL bad expression, -ENOTSUP no hook for the directions,
 * else from the kernel.
 */
int pl_sample_start(struct pl_sampler *s, const struct pl_sample_opts *o, char *why, size_t whylen);
/*
 * Renew the sampler's lease (sample_lease): PL_SAMPLE_LEASE_MS from now.
 * *@late_ns: how long it had run out, 0 when it had not (the programs took
 * nothing in that time). 0 or -errno; nothing to do on an attachment
 * without a lease.
 */
int pl_sample_renew(struct pl_sampler *s, __u64 *late_ns);
/*
 * Turn sampling off, unchain the stages and wait for packets in flight:
 * afterwards nothing more enters the ring, which still holds what it had.
 */
void pl_sample_stop(struct pl_sampler *s);
/* sample_stats (@fd) per hook since attach, summed over CPUs (seq left 0). */
int pl_sample_stats_read(int fd, struct pl_sample_stats out[PL_SLOT_MAX]);
/* Counters of the sampled hooks since start, summed over CPUs. */
int pl_sample_counts(const struct pl_sampler *s, struct pl_sample_stats out[PL_SLOT_MAX]);
/* Who samples the attachment in @dir, as pl_sample_owner() finds it. */
struct pl_sample_owner {
	__u32 pid;		/* the last sampler's (sample_cfg), 0: none */
	bool sampling;		/* its settings say it samples */
	bool live;		/* it holds the pin directory's lock: it runs */
	__u64 late_ns;		/* live and sampling: its lease ran out this long ago (stopped, stalled) */
	bool reaped;		/* it was gone (kill -9): its settings, stages and ring taken out now */
};
/*
 * Who samples the attachment in @dir. With @reap, what a sampler that is
 * gone left (its settings, its expression's stages chained, its ring; a
 * --rearm one killed between firings, its ring alone) is taken out: the lock it held is free (flock, which the kernel lets go of
 * with the process, so a pid reused since cannot fool it). 0 or -errno
 * (-ENOENT: attached by an older pktlens).
 */
int pl_sample_owner(const char *dir, bool reap, struct pl_sample_owner *o);
/* Take the ring out of the attachment and close everything (stops first if needed). */
void pl_sample_close(struct pl_sampler *s);

/* ---- capture-only programs for sample on an interface not attached (loader/capture.c) ---- */

struct pl_cap {
	struct pktlens_cap_xdp *x;
	struct pktlens_cap_tc *t;
	int ifindex;
	char ifname[16];
	bool xdp;		/* at XDP (ingress), else tc */
	__u32 dirs;		/* tc: bit (1 << enum pl_dir) per hook */
	bool tcx;		/* tc as tcx links, else clsact filters */
	int xdp_mode;		/* enum pl_xdp_mode it got */
	int link[3];		/* XDP, tc in, tc out: not pinned, the process holds them */
	bool filter[2];		/* clsact filters made */
	bool qdisc_made;
	char marker[512];	/* PL_PIN_ROOT/cap:INO:DEV:PID while it runs */
	bool marker_made;
};

/*
 * Load and attach capture-only programs on @ifname (@xdp: XDP ingress, else
 * tc on @dirs) and set up @s to sample through them (then pl_sample_start()
 * as on an attachment). On error call pl_cap_close() and pl_sample_close()
 * all the same. 0, or -errno with @why.
 */
int pl_cap_open(const char *ifname, bool xdp, __u32 dirs, struct pl_cap *cap,
		struct pl_sampler *s, char *why, size_t whylen);
/* What was attached, for the sampler's first line. */
const char *pl_cap_desc(const struct pl_cap *cap, char *buf, size_t len);
/* Detach, unload, remove the marker (after pl_sample_close()). */
void pl_cap_close(struct pl_cap *cap);
/* Remove what captures killed with -9 left: markers of dead pids, and their clsact filters. */
void pl_cap_gc(void);

/* ---- reading state (loader/state.c) ---- */

/*
 * Pins only user space writes, beside the kernel's maps: what `stats
 * --reset` (and `attach --force` into a smaller table) left for readers
 * to subtract, so that the kernel's counters are never zeroed under
 * traffic. Absent until the first reset.
 */
#define PL_MAP_STATS_BASE "stats_base"	/* ARRAY[PL_SLOT_MAX] of struct pl_stats */
#define PL_MAP_FLOWS_BASE "flows_base"	/* HASH pl_flow_key -> pl_flow_val: cached flows */

struct pl_flow;

struct pl_state {
	int stats_fd;
	int flows_fd;
	int cache_fd;
	int meta_fd;
	struct pl_meta meta;
	__u32 stats_id;		/* the stats map's id: another one is another attachment (detach, attach) */
	char dir[512];		/* the pin directory ("" for maps not pinned) */
	/*
	 * Read at open: subtracted from the kernel's counters (a base may
	 * also add: flow_lost_* there count flows the table lost otherwise)
	 * and, sorted by key, from the flows. Zero and NULL without a reset.
	 */
	struct pl_stats base[PL_SLOT_MAX];
	struct pl_flow *fbase;
	size_t nfbase;
	bool held;		/* its flow caches are held already (pl_holds_begin()) */
};

int pl_state_open(const char *dir, struct pl_state *st);
void pl_state_close(struct pl_state *st);
/* The per-CPU stats of every slot, summed, since the last reset. */
int pl_state_stats(const struct pl_state *st, struct pl_stats out[PL_SLOT_MAX]);
/*
 * Reset: @printed gets the counters since the previous reset, and from
 * this reading on the counters start again from zero; the flow table is
 * emptied. Under traffic nothing is lost: the kernel's counters are not
 * written, only the base readers subtract, so every packet is in @printed
 * or in the counters afterwards. Flows: the table's entries are deleted
 * and what the per-CPU caches hold becomes the flows' base; packets counted
 * after the reading whose flow records the reset removed are added to
 * flow_lost_*, so sum(flows) + flow_lost == packets still holds. Only under
 * the change lock. Maps not pinned (@st->dir ""): the bases stay in @st.
 */
int pl_state_reset(struct pl_state *st, struct pl_stats printed[PL_SLOT_MAX]);
/*
 * The same reset, to @reading, which pl_state_stats() made before (and the
 * caller has shown): what came after it stays in the counters. So `stats
 * --reset` resets only once its figures are out.
 */
int pl_state_reset_to(struct pl_state *st, const struct pl_stats reading[PL_SLOT_MAX]);
/*
 * Pin @base (and @fbase, NULL: none) as the bases of the attachment in @dir,
 * replacing the ones there at once (a pin under a temporary name, then
 * rename()).
 */
int pl_state_base_pin(const char *dir, const struct pl_stats base[PL_SLOT_MAX],
		      const struct pl_flow *fbase, size_t nfbase);

struct pl_flow {
	struct pl_flow_key key;
	struct pl_flow_val val;
};
/*
 * Table + every CPU's cache slots, merged by key, in no particular order.
 * Holds every flow (88 bytes each): for a large table prefer
 * pl_state_flows_each(). Successive readings never shrink. Caller frees *out.
 */
int pl_state_flows(const struct pl_state *st, struct pl_flow **out, size_t *n);
/*
 * One observation point per direction: where XDP and tc ingress both count an
 * attachment's arriving packets, only the first hook's (XDP's) flows, or one
 * adding them up counts every packet twice (the IPFIX export, top's flows;
 * `flows` shows both). Returns the flows kept, at the front of @fl.
 */
static inline size_t pl_flows_first_hook_only(const struct pl_meta *m, struct pl_flow *fl,
					      size_t nf)
{
	size_t kept = 0;

	if (m->xdp_mode == PL_XDP_NONE)
		return nf;
	for (size_t f = 0; f < nf; f++)
		if (fl[f].key.dir != PL_DIR_IN || fl[f].key.hook != PL_HOOK_TC)
			fl[kept++] = fl[f];
	return kept;
}
/* Called for each flow; a nonzero return stops the walk and is returned. */
typedef int (*pl_flow_fn)(const struct pl_flow *f, void *ctx);
/*
 * The same flows streamed to @fn, without holding them: one batched walk of
 * the table, memory independent of its size. @entries (may be NULL): the
 * table's entries, as pl_state_flow_count() would say. A flow moving from a
 * cache slot into the table during the walk may show its cached packets
 * twice in this one reading.
 */
int pl_state_flows_each(const struct pl_state *st, pl_flow_fn fn, void *ctx, size_t *entries);
/*
 * Number of entries in the flow table (one batched walk: ~0.5 s per million).
 * Not the flows: after a stats --reset the flows the caches hold count in
 * their slots without an entry until a slot is folded.
 */
int pl_state_flow_count(const struct pl_state *st, size_t *n);
/*
 * The flow caches of attachments @a (those with their metadata read) held
 * still at once, with one wait for the programs running now (a hold of each
 * took a grace period each: 10 ms an attachment, a scrape of 200 interfaces
 * 2.4 s). True when they are held: a pl_state then opened of one of them
 * with ->held set reads it without a hold of its own. pl_holds_end() lets
 * them go (also after false).
 */
struct pl_holds {
	struct cache_hold *h;
	size_t n;
};
bool pl_holds_begin(struct pl_holds *hs, const struct pl_attachment *a, size_t n);
void pl_holds_end(struct pl_holds *hs);
/* Number of flows pl_state_flows_each() gives: those with packets since the last reset. */
int pl_state_flow_live(const struct pl_state *st, size_t *n);

/*
 * Walk any hash or array map in batches, calling @cb with each key and its
 * value (@percpu: ncpu consecutive values of @vsize bytes, the size
 * rounded up to 8). A nonzero return of @cb stops the walk and is returned.
 */
typedef int (*pl_walk_fn)(const void *key, const void *vals, int ncpu, void *ctx);
int pl_map_walk(int fd, size_t ksize, size_t vsize, bool percpu, pl_walk_fn cb, void *ctx);

/*
 * The flows that left a flow table (loader/gone.c): stats --reset and
 * detach append each removed flow's last reading (as pl_state_flows()
 * showed it) to one log pinned at PL_PIN_ROOT/PL_MAP_FLOWS_GONE, under the
 * change lock, so the IPFIX exporter can send what a flow gained between
 * its last export and its removal. Only while an exporter reads it: each
 * says so every round (pl_gone_reader()); a removal drops what is older
 * than two rounds and a minute of every exporter still reading, and unpins
 * the log once none is (an exporter that ends says so: pl_gone_unread()).
 * At most PL_GONE_MAX flows: the oldest go first (PL_GONE_READERS entries
 * of the map are the readers').
 */
#define PL_MAP_FLOWS_GONE "flows_gone"
#define PL_GONE_MAX 262144
#define PL_GONE_READERS 64
/* in pl_flow_val.pad[0] of a logged flow: it lives on, these counts are its last delta */
#define PL_GONE_LIVES_ON 1
/* ...: a flow copied under another key, its counts those the exporter has counted under the old */
#define PL_GONE_COUNTED 2
struct pl_gone_key {
	__u64 id;		/* CLOCK_MONOTONIC ns of the removal; 0: a reader's entry */
	__u64 netns;		/* the attachment's (struct pl_attachment.netns); a reader's pid */
	struct pl_flow_key key;
};
struct pl_gone {
	struct pl_gone_key key;
	struct pl_flow_val val;	/* a reader's: packets its interval in ns, last_ns its last read */
};
/*
 * Log @n flows removed from an attachment in @netns (@m: its meta, for the
 * exporter's one observation point per direction; NULL: all). Call with the
 * change lock held, after the removal. 0, or -errno (some not logged).
 */
int pl_gone_log(uint64_t netns, const struct pl_meta *m, const struct pl_flow *fl, size_t n);
/* Every entry of the log, readers' too, unsorted. 0 (none: *n 0), or -errno. */
int pl_gone_read(struct pl_gone **out, size_t *n);
/*
 * An exporter of every @interval_s seconds reads the log now (creating it): 0 or -errno.
 * Called with the change lock held, shared at least, where it could be taken:
 * pl_gone_unread() of another exporter may otherwise unpin the log it has
 * just registered in (its next round registers again, in a new log).
 */
int pl_gone_reader(uint32_t interval_s);
/*
 * This process's exporter reads the log no more. The log is unpinned once no
 * exporter reads it: nobody to keep removed flows for, no pin left behind.
 * Takes the change lock (exclusive): call without it.
 */
void pl_gone_unread(void);
/* Unpin the log if no exporter reads it (the last one was killed): with the change lock held. */
void pl_gone_gc(void);

/* Merge per-CPU flow values (used by state.c and tests). */
void pl_flow_val_merge(struct pl_flow_val *v, const struct pl_flow_val *d);
/*
 * A flow read as @now, and as @then at an earlier reading, was counted
 * afresh in between (detach and attach again, stats --reset): it shrank, or
 * its first packet came after @then's last. Then all of @now is new, even
 * where it has grown past @then.
 */
bool pl_flow_val_afresh(const struct pl_flow_val *then, const struct pl_flow_val *now);

/* ---- passive TCP analysis (loader/tcp.c) ---- */

struct bpf_object;
/* pl_tcp_slots of the XDP (@xdp_obj) or tc object for these hooks on interface @ifindex */
__u32 pl_tcp_slots_for(int xdp_mode, int tc_hooks, bool tcp, bool xdp_obj, int ifindex);
/*
 * Before loading @obj for namespace @ns: with @on, share the namespace's
 * tcp_state and tcp_ts (or size new ones, *@fresh: pin them with
 * pl_tcp_pin_ns() once loaded); without, one-entry maps of its own.
 * @replacing: the pin directory of the attachment being replaced, or NULL.
 */
int pl_tcp_prepare(struct bpf_object *obj, uint64_t ns, bool on, __u32 flows_max, __u32 ts_max,
		   const char *replacing, bool *fresh);
int pl_tcp_pin_ns(struct bpf_object *obj, uint64_t ns);
/*
 * After a failed re-attach that pinned new maps as the namespace's: the maps of the
 * attachment in @dir (the one it was to replace) are the namespace's again, if it analyses.
 */
void pl_tcp_repin_ns(uint64_t ns, const char *dir);
/* After a detach: remove the namespace's pins when no attachment there analyses TCP. */
void pl_tcp_release_ns(uint64_t ns);
/* tcp_stats of the attachment in @dir, summed over CPUs (-ENOENT: none there) */
int pl_tcp_pstats_read(const char *dir, struct pl_tcp_pstats out[PL_SLOT_MAX]);
/* The size of the outstanding-timestamp map attachment @dir shares with its namespace: 0, -errno. */
int pl_tcp_ts_max_read(const char *dir, __u32 *max);
/* The counters of every hook summed (the histogram's max: the largest). */
void pl_tcp_pstats_sum(const struct pl_tcp_pstats in[PL_SLOT_MAX], struct pl_tcp_pstats *out);
/* The connection key of a flow, and which half (0: end a) its packets are. */
void pl_tcp_key_of(const struct pl_flow_key *fk, struct pl_tcp_key *k, int *half);
/* The state of the TCP connection of flow @fk in tcp_state @state_fd (-ENOENT: none). */
int pl_tcp_flow(int state_fd, const struct pl_flow_key *fk, struct pl_tcp_state *st, int *half);

#endif /* __PKTLENS_LOADER_H */
