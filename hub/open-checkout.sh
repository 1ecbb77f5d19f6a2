#!/bin/sh
# As root: let other accounts pass (o+x, not list) every directory above the checkout, so that
# per-user servers reach the project's code and var/ (hub/isolation.py refuses to spawn
# otherwise). Says what it changed; changes nothing when not root or nothing is closed.
[ "$(id -u)" = 0 ] || exit 0
directory=$(cd "$(dirname "$0")/.." && pwd)
while [ "$directory" != "/" ]; do
  if [ "$(stat -c %A "$directory" | cut -c10)" != "x" ] && [ "$(stat -c %A "$directory" | cut -c10)" != "t" ]; then
    chmod o+x "$directory"
    echo "Opened $directory for passing (chmod o+x): per-user servers must reach the checkout" >&2
  fi
  directory=$(dirname "$directory")
done
