#!/bin/bash
# manifest.sh DIR: one line per entry under DIR (a mounted store), sorted:
# F path sha256 size nlink mode; L path -> target; D path mode; X path
# name=value for the xattrs mkstore.sh sets.  Used by mkstore.sh to write
# NAME.manifest and by tests/integration/it_compat.sh to compare with it.
set -euo pipefail
cd "$1"
find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r p; do
	if [ -L "$p" ]; then
		printf 'L %s -> %s\n' "$p" "$(readlink "$p")"
	elif [ -d "$p" ]; then
		printf 'D %s %s\n' "$p" "$(stat -c %a "$p")"
	else
		printf 'F %s %s %s\n' "$p" "$(sha256sum <"$p" | cut -d' ' -f1)" "$(stat -c '%s %h %a' "$p")"
	fi
	for x in user.compat user.empty; do
		if v=$(getfattr --only-values -h -n "$x" "$p" 2>/dev/null); then
			printf 'X %s %s=%s\n' "$p" "$x" "$v"
		fi
	done
done
