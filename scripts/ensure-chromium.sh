#!/usr/bin/env bash
# The browser tests drive Debian's chromium through playwright-core (a test tool's own browser
# download does not work here). Installs it when missing and we may (root + apt-get).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "hyper-sse tests: installing Debian chromium for the browser tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "hyper-sse tests: chromium is missing; install it (apt-get install chromium) for the browser tests" >&2
fi
