# SPDX-License-Identifier: MIT
# Writes OUT, a C file defining one NUL-terminated unsigned char array per
# NAME=PATH entry of ASSETS (separated by |), so the dashboard's files are part of
# the binary. Run at build time: cmake -DOUT=... -DASSETS=... -P embed.cmake
file(WRITE ${OUT}.tmp "/* Generated from src/http/dashboard/ by scripts/embed.cmake. */\n#include \"http/dashboard.h\"\n")
string(REPLACE "|" ";" entries "${ASSETS}")
foreach(entry ${entries})
    string(REPLACE "=" ";" parts ${entry})
    list(GET parts 0 name)
    list(GET parts 1 path)
    file(READ ${path} hex HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
    string(REGEX REPLACE "((0x..,){16})" "\\1\n" hex "${hex}")
    file(APPEND ${OUT}.tmp "const unsigned char ${name}[] = {\n${hex}0x00};\n")
endforeach()
file(RENAME ${OUT}.tmp ${OUT})
