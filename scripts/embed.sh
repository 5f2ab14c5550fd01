#!/bin/sh
# Writes a C file that holds FILE's bytes as `const unsigned char NAME[]` and `NAME_len`, so a
# data file is compiled into the binaries (C11 has no #embed).
set -eu
file=$1 name=$2
echo "#include <stddef.h>"
echo "const unsigned char $name[] = {"
od -An -v -tx1 "$file" | sed -e 's/[0-9a-f][0-9a-f]/0x&,/g' -e 's/^ *//'
echo "0x00 };"
echo "const size_t ${name}_len = sizeof $name - 1;"
