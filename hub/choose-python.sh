#!/bin/sh
# Prints the Python 3.11+ that `make install` builds .venv from, and says why on stderr.
#
# As root, user servers run as per-user system accounts and execute this interpreter, so
# every directory above it (and above its standard library) must be passable by other
# accounts (o+x). A pyenv under /root is not; Debian's /usr/bin/python3.11 is. Elsewhere the
# first Python 3.11+ on PATH is used.
passable() {
  dir=$1
  while [ "$dir" != "/" ] && [ -n "$dir" ]; do
    [ "$(stat -c %A "$dir" | cut -c10)" = "x" ] || [ "$(stat -c %A "$dir" | cut -c10)" = "t" ] || { echo "$dir"; return 1; }
    dir=$(dirname "$dir")
  done
  return 0
}
first=""
seen=" "
for candidate in ${PYTHON:-} python3.11 python3 /usr/bin/python3.11 /usr/bin/python3; do
  command -v "$candidate" >/dev/null 2>&1 || continue
  where=$("$candidate" -c 'import os, sys; print(os.path.realpath(sys.executable), os.path.realpath(sys.base_prefix)) if sys.version_info >= (3, 11) else None' 2>/dev/null) || continue
  [ -n "$where" ] || continue
  executable=${where% *}
  prefix=${where#* }
  case "$seen" in *" $executable "*) continue ;; esac
  seen="$seen$executable "
  [ -n "$first" ] || first=$executable
  if [ "$(id -u)" != 0 ]; then
    echo "Python: $executable (not root: user servers share this account)" >&2
    echo "$executable"; exit 0
  fi
  blocked=$(passable "$(dirname "$executable")") && blocked=$(passable "$prefix") && {
    echo "Python: $executable (other accounts can pass its directories: per-user servers can run it)" >&2
    echo "$executable"; exit 0
  }
  echo "Python: not $executable: other accounts cannot pass $blocked" >&2
done
if [ -n "$first" ]; then
  echo "Python: no interpreter that other accounts can pass; using $first (the hub will refuse to spawn until one is: apt-get install python3.11 python3.11-venv)" >&2
  echo "$first"; exit 0
fi
echo "Python 3.11 or newer is needed (apt-get install python3.11 python3.11-venv)" >&2
exit 1
