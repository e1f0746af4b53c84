#!/usr/bin/env bash
# Checks the machine-level prerequisites and, as root on Debian/Ubuntu, installs what is missing with apt.
# Idempotent: when everything is present it installs nothing and says so in one line.
set -euo pipefail

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ -x "$(pg_config --bindir 2>/dev/null)/initdb" ] \
  || missing+=(postgresql)
[ -f /usr/share/java/postgresql.jar ] || [ -n "${SPARK_JDBC_JAR:-}" ] || missing+=(libpostgresql-jdbc-java)
# The browser tests drive Debian's Chromium through Playwright (tests/browser.py); Playwright downloads no browser.
command -v chromium >/dev/null 2>&1 || [ -n "${CHROMIUM:-}" ] || missing+=(chromium)

# A German locale lets the tests check that PostgreSQL errors are classified by SQLSTATE, not by their English
# wording (tests/test_postgres_classify.py skips without it). Generating it from Debian's `locales` data takes about
# a second.
if [ "$(id -u)" -eq 0 ] && command -v localedef >/dev/null 2>&1 && [ -f /usr/share/i18n/locales/de_DE ] \
  && ! locale -a 2>/dev/null | grep -qix 'de_DE\.utf-\?8'; then
  localedef -i de_DE -f UTF-8 de_DE.UTF-8 && echo "system-deps: generated the de_DE.UTF-8 locale for the tests."
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "system-deps: Java, PostgreSQL server binaries, the JDBC driver and Chromium are present."
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "system-deps: missing Debian packages: ${missing[*]}." >&2
  echo "  Install them with: sudo apt-get install ${missing[*]}" >&2
  echo "  (or point SPARK_JDBC_JAR at a PostgreSQL JDBC jar, CHROMIUM at a Chromium; see docs/operations.md, 'Prerequisites')." >&2
  exit 1
fi
