/* SPDX-License-Identifier: GPL-2.0 */
/* Includes and small helpers for every packet program (UAPI headers, no vmlinux.h). */
#ifndef __PKTLENS_BPF_COMMON_H
#define __PKTLENS_BPF_COMMON_H

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "pktlens/pktlens.h"
#include "compat.h"

#ifndef EEXIST
#define EEXIST 17
#endif

#endif /* __PKTLENS_BPF_COMMON_H */
