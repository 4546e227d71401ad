/* SPDX-License-Identifier: MIT */
/* Entry point (placeholder until the app module lands). */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "freno: not built yet\n");
    return 1;
}
