#!/usr/bin/env bash
# Debian's chromium for the headless browser test of the terminal page (playwright-core drives
# it through executablePath; no browser build is downloaded).
source "$(dirname "$0")/lib.sh"
command -v /usr/bin/chromium >/dev/null || apt_ensure chromium
