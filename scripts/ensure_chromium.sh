#!/usr/bin/env bash
# The console's tests drive Debian's Chromium through Playwright (whose own browser
# download needs the internet). Install it when it is missing and we may (root with apt);
# otherwise say how, and the browser tests skip with the same advice.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; then
    exit 0
  fi
fi
echo "no Chromium at /usr/bin/chromium: the browser tests will skip (apt-get install -y chromium)" >&2
