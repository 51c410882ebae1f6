/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the running kernel has, decided at load time (DESIGN.md, Kernels).
 *
 * pl_has_helper(name) tests a bit of pl_helpers, a .rodata constant the
 * loader sets from its probes before the load (PL_HELPER_*, loader/features.c):
 * the verifier reads frozen .rodata as a known value and never walks the
 * branch that calls a helper the kernel lacks. (A CO-RE check against the
 * kernel's BTF would do the same, but makes libbpf parse that BTF, several
 * megabytes, at every load.) Unset, every helper counts as there: a loader
 * that forgot fails to load on an older kernel instead of quietly losing a
 * feature. Code that cannot be hidden this way (a bpf_loop() callback, a
 * program's frags flag, a tracepoint argument) is in separate programs
 * instead, which the loader picks.
 *
 * Everything here is written for the oldest verifier we support (5.10): no
 * reliance on bounds that only newer verifiers infer.
 */
#ifndef __PKTLENS_BPF_COMPAT_H
#define __PKTLENS_BPF_COMPAT_H

const volatile __u32 pl_helpers = PL_HELPER_ALL;

#define pl_has_helper(name) ((pl_helpers & PL_HELPER_##name) != 0)

/*
 * CLOCK_MONOTONIC, coarse where the kernel has it (5.11): jiffy resolution
 * is enough for last-seen. Packet programs read it through pl_now_coarse()
 * (bpf/maps.h), which asks once per jiffy and CPU.
 */
static __always_inline __u64 pl_ktime_coarse(void)
{
	if (pl_has_helper(ktime_get_coarse_ns))
		return bpf_ktime_get_coarse_ns();
	return bpf_ktime_get_ns();
}

#endif /* __PKTLENS_BPF_COMPAT_H */
