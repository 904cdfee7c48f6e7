#!/bin/sh
# Any program can be an agent: this one is plain shell. It prints coloured
# status lines, a warning on stderr now and then, and handles SIGTERM cleanly.
trap 'echo "ticker: got SIGTERM, bye"; exit 0' TERM
i=0
while true; do
  i=$((i + 1))
  load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
  printf '\033[32m●\033[0m tick %d  load=%s  queue=%d\n' "$i" "$load" $((i * 7 % 23))
  if [ $((i % 10)) -eq 0 ]; then
    echo "warning: queue depth above soft limit ($((i * 7 % 23)))" >&2
  fi
  sleep 1
done
