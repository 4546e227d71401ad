/* SPDX-License-Identifier: MIT */
/* Leadership through a MySQL backend: placeholder until the backend lands. */
#include "leader/leader_impl.h"

#include <errno.h>

int leader_mysql_init(struct leader *l, struct err *err)
{
    (void)l;
    return err_set(err, -ENOSYS, "leader: the MySQL backend is not available in this build yet");
}

int leader_init_backend(const struct config *cfg, struct err *err)
{
    (void)cfg;
    return err_set(err, -ENOSYS, "leader: the MySQL backend is not available in this build yet");
}
