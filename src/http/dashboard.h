/* SPDX-License-Identifier: MIT */
/* The dashboard's page, script and style (src/http/dashboard/), compiled
 * into the binary by scripts/embed.cmake so the page needs nothing from
 * outside; each is NUL-terminated ASCII text. Any thread. */
#pragma once

extern const unsigned char dashboard_index_html[];
extern const unsigned char dashboard_app_js[];
extern const unsigned char dashboard_style_css[];
