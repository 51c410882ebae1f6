/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the running kernel has, decided at load time (DESIGN.md, Kernels).
 *
 * pl_has_helper(name) is a CO-RE relocation against the kernel's BTF
 * (enum bpf_func_id): libbpf turns it into the constant 0 or 1 before the
 * program is loaded, and the verifier never walks the branch that calls a
 * helper the kernel lacks. Code that cannot be hidden this way (a bpf_loop()
 * callback, a program's frags flag, a tracepoint argument) is in separate
 * programs instead, which the loader picks (loader/features.c).
 *
 * Everything here is written for the oldest verifier we support (5.10): no
 * reliance on bounds that only newer verifiers infer.
 */
#ifndef __PKTLENS_BPF_COMPAT_H
#define __PKTLENS_BPF_COMPAT_H

#include <bpf/bpf_core_read.h>

#define pl_has_helper(name) bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_##name)

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
