// SPDX-License-Identifier: GPL-2.0
#include "report.h"
#include "format.h"
#include "../loader/xdp_multi.h"

#include <stdio.h>

#include "pktlens/drops.h"

const char *pl_fmt_hooks(const struct pl_meta *m, char *buf, size_t len)
{
	int n = 0;

	buf[0] = '\0';
	if (m->xdp_mode != PL_XDP_NONE)
		n = snprintf(buf, len, "xdp/%s in", pl_xdp_mode_name(m->xdp_mode));
	if (m->tc_hooks && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - n, "%stc/%s %s", n ? ", " : "",
			      pl_tc_mech_name(m->tc_mech),
			      m->tc_hooks == (PL_TC_IN | PL_TC_OUT) ? "in+out" :
			      m->tc_hooks == PL_TC_IN ? "in" : "out");
	if ((m->probes & PL_PROBE_TCP) && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - n, "%stcp probes", n ? ", " : "");
	if ((m->probes & PL_PROBE_DROPS) && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - n, "%sdrop probes", n ? ", " : "");
	return buf;
}

void pl_json_hooks(struct jw *w, const struct pl_meta *m)
{
	jw_arr_open(w);
	if (m->xdp_mode != PL_XDP_NONE) {
		jw_obj_open(w);
		jw_str_field(w, "hook", "xdp");
		jw_str_field(w, "dir", "in");
		jw_str_field(w, "mode", pl_xdp_mode_name(m->xdp_mode));
		jw_str_field(w, "mechanism", pl_xdp_prog_ext(m->xdp_prog_id) ? "libxdp-dispatcher" :
					     "bpf_link");
		jw_u64_field(w, "prog_id", m->xdp_prog_id);
		jw_obj_close(w);
	}
	for (int dir = 0; dir < 2; dir++) {
		if (!(m->tc_hooks & (1u << dir)))
			continue;
		jw_obj_open(w);
		jw_str_field(w, "hook", "tc");
		jw_str_field(w, "dir", dir == PL_DIR_IN ? "in" : "out");
		jw_str_field(w, "mechanism", pl_tc_mech_name(m->tc_mech));
		jw_u64_field(w, "prog_id", m->tc_prog_id[dir]);
		if (m->tc_mech == PL_TC_CLSACT) {
			jw_u64_field(w, "handle", m->tc_handle[dir]);
			jw_u64_field(w, "priority", m->tc_prio[dir]);
		}
		jw_obj_close(w);
	}
	jw_arr_close(w);
}

static const char *const xdp_act[] = { "aborted", "drop", "pass", "tx", "redirect" };

static const char *disp_position(const struct pl_xdp_disp *d, size_t i, __u32 ours)
{
	for (size_t j = 0; j < d->n; j++)
		if (d->prog[j].id == ours)
			return i < j ? "before" : i == j ? "pktlens" : "after";
	return "beside";
}

void pl_print_xdp_disp(const struct pl_xdp_disp *d, __u32 ours, const char *indent)
{
	printf("%slibxdp dispatcher (id %u, %s mode), in run order:\n", indent, d->id,
	       pl_xdp_mode_name(d->mode));
	for (size_t i = 0; i < d->n; i++) {
		const struct pl_xdp_prog *p = &d->prog[i];
		char chain[64] = "";
		int n = 0;

		for (unsigned a = 0; a < sizeof(xdp_act) / sizeof(xdp_act[0]); a++)
			if (p->chain & (1U << a))
				n += snprintf(chain + n, sizeof(chain) - n, "%s%s", n ? "," : "",
					      xdp_act[a]);
		printf("%s  %-8s prio %-5u id %-7u %-16s goes on after: %s\n", indent,
		       disp_position(d, i, ours), p->prio, p->id, p->name, n ? chain : "nothing");
	}
}

void pl_json_xdp_disp(struct jw *w, const struct pl_xdp_disp *d, __u32 ours)
{
	jw_obj_open(w);
	jw_u64_field(w, "id", d->id);
	jw_str_field(w, "mode", pl_xdp_mode_name(d->mode));
	jw_key(w, "programs");
	jw_arr_open(w);
	for (size_t i = 0; i < d->n; i++) {
		jw_obj_open(w);
		jw_str_field(w, "position", disp_position(d, i, ours));
		jw_u64_field(w, "priority", d->prog[i].prio);
		jw_u64_field(w, "id", d->prog[i].id);
		jw_str_field(w, "name", d->prog[i].name);
		jw_key(w, "chain_call_actions");
		jw_arr_open(w);
		for (unsigned a = 0; a < sizeof(xdp_act) / sizeof(xdp_act[0]); a++)
			if (d->prog[i].chain & (1U << a))
				jw_str(w, xdp_act[a]);
		jw_arr_close(w);
		jw_obj_close(w);
	}
	jw_arr_close(w);
	jw_obj_close(w);
}

bool pl_meta_xdp_disp(const struct pl_meta *m, struct pl_xdp_disp *d)
{
	return m->xdp_mode != PL_XDP_NONE && pl_xdp_disp_runs((int)m->ifindex, m->xdp_prog_id, NULL) &&
	       !pl_xdp_disp_read((int)m->ifindex, d);
}

bool pl_slot_attached(const struct pl_meta *m, int slot)
{
	switch (slot) {
	case PL_SLOT_XDP_IN:
		return m->xdp_mode != PL_XDP_NONE;
	case PL_SLOT_TC_IN:
		return m->tc_hooks & PL_TC_IN;
	case PL_SLOT_TC_OUT:
		return m->tc_hooks & PL_TC_OUT;
	}
	return false;
}

const char *pl_fmt_totals(const struct pl_meta *m, const struct pl_stats s[PL_SLOT_MAX], char *buf,
			  size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int sl = 0; sl < PL_SLOT_MAX && n < len; sl++) {
		__u64 pk, by;

		pl_stats_totals(&s[sl], &pk, &by);
		if (!pk && !pl_slot_attached(m, sl))
			continue;
		n += (size_t)snprintf(buf + n, len - n, "%s%s %s %llu packets, %llu bytes",
				      n ? "; " : "", pl_slot_hook[sl], pl_slot_dir[sl], pk, by);
	}
	return buf;
}

static void json_netns(struct jw *w, uint64_t ino, uint64_t cookie, const char *dir, bool identify)
{
	struct pl_netns_id id = { .pid = 0 };

	if (identify)
		pl_netns_identify(ino, cookie, true, &id);
	jw_u64_field(w, "netns", ino);
	if (dir)
		jw_str_field(w, "netns_id", dir);
	jw_str_field(w, "netns_name", id.name[0] ? id.name : NULL);
	if (id.pid) {
		jw_u64_field(w, "netns_pid", (uint64_t)id.pid);
		jw_str_field(w, "netns_comm", id.comm);
	}
}

void pl_json_netns(struct jw *w, uint64_t ino)
{
	json_netns(w, ino, 0, NULL, true);
}

void pl_json_att_netns(struct jw *w, const struct pl_attachment *a)
{
	json_netns(w, a->netns, pl_att_cookie(a), a->ns, !a->ns_gone);
}

const char *pl_fmt_att_netns(const struct pl_attachment *a, bool pid, char *buf, size_t len)
{
	if (a->ns_gone) {
		snprintf(buf, len, "%s", a->ns);
		return buf;
	}
	return pl_netns_fmt(a->netns, pl_att_cookie(a), pid, buf, len);
}

void pl_stats_totals(const struct pl_stats *s, __u64 *pk, __u64 *by)
{
	*pk = *by = 0;
	for (int v = 0; v < PL_VERDICT_MAX; v++)
		*pk += s->pkts[v], *by += s->bytes[v];
}

static __u64 counted_since(__u64 now, __u64 now_base, __u64 then, __u64 then_base)
{
	now += now_base, then += then_base;
	return now >= then ? now - then : now;
}

void pl_stats_since(const struct pl_stats *now, const struct pl_stats *now_base,
		    const struct pl_stats *then, const struct pl_stats *then_base,
		    struct pl_stats *d)
{
	static const struct pl_stats zero;

	if (!then)
		then = then_base = &zero;
	*d = (struct pl_stats){ 0 };
	for (int v = 0; v < PL_VERDICT_MAX; v++) {
		d->pkts[v] = counted_since(now->pkts[v], now_base->pkts[v], then->pkts[v],
					   then_base->pkts[v]);
		d->bytes[v] = counted_since(now->bytes[v], now_base->bytes[v], then->bytes[v],
					    then_base->bytes[v]);
	}
	for (int k = 0; k < PL_RMON_MAX; k++)
		d->rmon[k] = counted_since(now->rmon[k], now_base->rmon[k], then->rmon[k],
					   then_base->rmon[k]);
}

void pl_json_stats_slot(struct jw *w, const struct pl_stats *s, int slot, bool attached)
{
	__u64 pk, by;

	pl_stats_totals(s, &pk, &by);
	jw_obj_open(w);
	jw_str_field(w, "hook", pl_slot_hook[slot]);
	jw_str_field(w, "dir", pl_slot_dir[slot]);
	jw_bool_field(w, "attached", attached);
	jw_u64_field(w, "packets", pk);
	jw_u64_field(w, "bytes", by);
	jw_key(w, "verdicts");
	jw_obj_open(w);
	for (int v = 0; v < PL_VERDICT_MAX; v++) {
		jw_key(w, pl_verdict_names[v]);
		jw_obj_open(w);
		jw_u64_field(w, "packets", s->pkts[v]);
		jw_u64_field(w, "bytes", s->bytes[v]);
		jw_obj_close(w);
	}
	jw_obj_close(w);
	jw_key(w, "size_rmon");
	jw_obj_open(w);
	for (int i = 0; i < PL_RMON_MAX; i++)
		jw_u64_field(w, pl_rmon_names[i], s->rmon[i]);
	jw_obj_close(w);
	jw_key(w, "size_log2");
	jw_arr_open(w);
	for (int i = 0; i < PL_LOG2_MAX; i++)
		jw_u64(w, s->log2[i]);
	jw_arr_close(w);
	jw_key(w, "l3");
	jw_obj_open(w);
	for (int i = 0; i < PL_L3_MAX; i++)
		jw_u64_field(w, pl_l3_names[i], s->l3[i]);
	jw_obj_close(w);
	jw_key(w, "l4");
	jw_obj_open(w);
	for (int i = 0; i < PL_L4_MAX; i++)
		jw_u64_field(w, pl_l4_names[i], s->l4[i]);
	jw_obj_close(w);
	jw_u64_field(w, "vlan", s->vlan);
	jw_u64_field(w, "vlan_double", s->vlan2);
	jw_u64_field(w, "ip_fragments", s->ip_frags);
	jw_u64_field(w, "ip_options", s->ip_opts);
	jw_u64_field(w, "parse_errors", s->parse_err);
	jw_u64_field(w, "truncated", s->truncated);
	jw_u64_field(w, "flow_lost", s->flow_lost);
	jw_u64_field(w, "flow_lost_packets", s->flow_lost_pkts);
	jw_u64_field(w, "flow_lost_bytes", s->flow_lost_bytes);
	jw_u64_field(w, "filter_packets", s->filter_pkts);
	jw_u64_field(w, "filter_bytes", s->filter_bytes);
	jw_u64_field(w, "nomatch_packets", s->nomatch_pkts);
	jw_u64_field(w, "nomatch_bytes", s->nomatch_bytes);
	jw_obj_close(w);
}

double pl_flow_rate(const struct pl_flow_val *v)
{
	double secs = (v->last_ns - v->first_ns) / 1e9;

	return v->bytes / (secs < 1.0 ? 1.0 : secs);
}

static void json_us(struct jw *w, const char *key, __u32 us, bool known)
{
	jw_key(w, key);
	if (known)
		jw_u64(w, us);
	else
		jw_null(w);
}

__u32 pl_tcp_row_rtt(const struct pl_tcp_state *tcp, int half)
{
	const struct pl_tcp_half *h = &tcp->h[half & 1];

	if (h->rtt_samples)
		return h->rtt_srtt_us;
	if (tcp->rtt_syn_us && tcp->rtt_synack_us)
		return tcp->rtt_syn_us + tcp->rtt_synack_us;
	return 0;
}

/*
 * "tcp": the connection's handshake halves; of the flow's end (@half): RTT
 * from here to the flow's destination and back (timestamps), sequence
 * counters.
 */
static void json_tcp(struct jw *w, const struct pl_tcp_state *t, int half)
{
	const struct pl_tcp_half *h;

	jw_key(w, "tcp");
	if (!t) {
		jw_null(w);
		return;
	}
	h = &t->h[half & 1];
	jw_obj_open(w);
	json_us(w, "rtt_syn_us", t->rtt_syn_us, t->rtt_syn_us != 0);
	json_us(w, "rtt_synack_us", t->rtt_synack_us, t->rtt_synack_us != 0);
	jw_bool_field(w, "timestamps", t->flags & PL_TCPS_TS);
	jw_u64_field(w, "rtt_samples", h->rtt_samples);
	json_us(w, "rtt_min_us", h->rtt_min_us, h->rtt_samples != 0);
	json_us(w, "rtt_srtt_us", h->rtt_srtt_us, h->rtt_samples != 0);
	json_us(w, "rtt_max_us", h->rtt_max_us, h->rtt_samples != 0);
	jw_u64_field(w, "segs", h->segs);
	jw_u64_field(w, "retrans", h->retrans);
	jw_u64_field(w, "reorder", h->reorder);
	jw_u64_field(w, "zero_win", h->zero_win);
	jw_u64_field(w, "rst", h->rst);
	jw_obj_close(w);
}

static void json_flow(struct jw *w, const char *ifname, const struct pl_flow *f, double rate,
		      long long retrans_segs, long long drops, bool tcp_field,
		      const struct pl_tcp_state *tcp, int half);

void pl_json_flow(struct jw *w, const char *ifname, const struct pl_flow *f, double rate,
		  long long retrans_segs, long long drops)
{
	json_flow(w, ifname, f, rate, retrans_segs, drops, false, NULL, 0);
}

void pl_json_flow_tcp(struct jw *w, const char *ifname, const struct pl_flow *f, double rate,
		      long long retrans_segs, long long drops, const struct pl_tcp_state *tcp,
		      int half)
{
	json_flow(w, ifname, f, rate, retrans_segs, drops, true, tcp, half);
}

void pl_json_icmp(struct jw *w, __u16 sport, __u16 dport)
{
	bool none = sport == PL_ICMP_NONE;

	jw_key(w, "icmp_type");
	none ? jw_null(w) : jw_u64(w, sport);
	jw_key(w, "icmp_code");
	none ? jw_null(w) : jw_u64(w, dport);
}

void pl_json_flow_key(struct jw *w, const char *ifname, const struct pl_flow_key *k)
{
	char b1[PL_ADDR_STRLEN], b2[16];
	bool ip = k->l3proto == 0x0800 || k->l3proto == 0x86dd;
	bool icmp = ip && (k->l4proto == 1 || k->l4proto == 58);

	jw_name_field(w, "ifname", ifname);
	jw_u64_field(w, "ifindex", k->ifindex);
	jw_str_field(w, "hook", k->hook == PL_HOOK_XDP ? "xdp" : "tc");
	jw_str_field(w, "dir", k->dir == PL_DIR_IN ? "in" : "out");
	jw_key(w, "vlan");
	if (k->vlan == PL_VLAN_NONE)
		jw_null(w);
	else
		jw_u64(w, k->vlan);
	jw_str_field(w, "l3", pl_fmt_l3(k->l3proto, b2, sizeof(b2)));
	jw_u64_field(w, "ethertype", k->l3proto);
	if (ip) {
		jw_str_field(w, "proto", pl_fmt_l4(k, b2, sizeof(b2)));
		jw_u64_field(w, "ip_proto", k->l4proto);
		jw_str_field(w, "src", pl_fmt_key_addr(k, k->saddr, b1, sizeof(b1)));
		jw_str_field(w, "dst", pl_fmt_key_addr(k, k->daddr, b1, sizeof(b1)));
		if (icmp) {
			pl_json_icmp(w, k->sport, k->dport);
		} else {
			jw_u64_field(w, "sport", k->sport);
			jw_u64_field(w, "dport", k->dport);
		}
	}
}

static void json_flow(struct jw *w, const char *ifname, const struct pl_flow *f, double rate,
		      long long retrans_segs, long long drops, bool tcp_field,
		      const struct pl_tcp_state *tcp, int half)
{
	const struct pl_flow_key *k = &f->key;
	const struct pl_flow_val *v = &f->val;
	bool ip = k->l3proto == 0x0800 || k->l3proto == 0x86dd;
	__s64 epoch = pl_epoch_offset_ns();	/* one for both times */
	char b2[16];

	jw_obj_open(w);
	pl_json_flow_key(w, ifname, k);
	jw_u64_field(w, "packets", v->packets);
	jw_u64_field(w, "bytes", v->bytes);
	if (k->l4proto == 6 && ip)
		jw_str_field(w, "tcp_flags", pl_fmt_tcp_flags(v->tcp_flags, b2, sizeof(b2)));
	jw_fixed_field(w, "first_seen", pl_mono_to_epoch(v->first_ns, epoch), 6);
	jw_fixed_field(w, "last_seen", pl_mono_to_epoch(v->last_ns, epoch), 6);
	jw_fixed_field(w, "duration", (v->last_ns - v->first_ns) / 1e9, 6);
	jw_double_field(w, "rate_bps", rate * 8);
	jw_key(w, "retrans_segs");
	if (retrans_segs >= 0)
		jw_u64(w, (uint64_t)retrans_segs);
	else
		jw_null(w);
	jw_key(w, "drops");
	if (drops >= 0)
		jw_u64(w, (uint64_t)drops);
	else
		jw_null(w);
	if (tcp_field)
		json_tcp(w, tcp, half);
	jw_obj_close(w);
}

