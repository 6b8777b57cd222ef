#!/bin/sh
# Puts ratepool's broker login into mosquitto's password file, from the same
# secret file ratepool reads (RATEPOOL_MQTT_PASSWORD_FILE), so that the two
# always agree. docker-compose.yml runs it once before the broker starts
# (service mosquitto-init, in the eclipse-mosquitto image, as root).
#
# Environment (defaults are the paths inside that container):
#   PASSWD_FILE     /mosquitto/auth/passwd         the password file
#   SECRET_FILE     /run/secrets/mqtt_password     ratepool's password
#   MQTT_USER       ratepool                       the user to add or update
#   PASSWD_OWNER    mosquitto                      owner of the password file
#
# Other users (households, Node-RED) are added by hand; see README.md
# beside this file. Running it again only updates ratepool's entry.
set -eu

passwd=${PASSWD_FILE:-/mosquitto/auth/passwd}
secret=${SECRET_FILE:-/run/secrets/mqtt_password}
user=${MQTT_USER:-ratepool}
owner=${PASSWD_OWNER:-mosquitto}

say() { echo "passwd-init: $*" >&2; }

if [ ! -r "$secret" ] || [ ! -s "$secret" ]; then
	say "$secret is missing or empty."
	say "Create it first, e.g. in deploy/:  mkdir -p secrets && head -c 24 /dev/urandom | base64 > secrets/mqtt_password"
	exit 1
fi
# Strip trailing newlines and one carriage return, as ratepool does when it
# reads the same file.
pw=$(cat "$secret")
cr=$(printf '\r')
pw=${pw%"$cr"}
if [ -z "$pw" ]; then
	say "$secret holds only newlines"
	exit 1
fi

umask 077
mkdir -p "$(dirname "$passwd")"
[ -e "$passwd" ] || : >"$passwd"
# The password goes through stdin, never the command line (ps would show it).
printf '%s\n%s\n' "$pw" "$pw" | mosquitto_passwd "$passwd" "$user" >/dev/null
# mosquitto drops root and reads the file as its own user; nobody else may.
if [ "$(id -u)" -eq 0 ] && id "$owner" >/dev/null 2>&1; then
	chown "$owner" "$passwd"
fi
chmod 0600 "$passwd"
say "user $user is in $passwd"
