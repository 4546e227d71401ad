/* SPDX-License-Identifier: MIT */
/* Leadership through raft: placeholder until the raft backend lands. */
#include "leader/leader_impl.h"

#include <errno.h>

int leader_raft_init(struct leader *l, struct err *err)
{
    (void)l;
    return err_set(err, -ENOSYS, "leader: raft with RaftNodes is not available in this build yet");
}
