#!/usr/bin/env bash
# Installs the directory servers that connectors/ldap tests run against:
# OpenLDAP (slapd, ldap-utils) and a Samba AD DC. Idempotent. The tests start
# their own instances in temporary folders; package postinst scripts must not
# leave system daemons on the standard LDAP/SMB ports.
set -euo pipefail

pkgs=(slapd ldap-utils samba samba-ad-dc samba-ad-provision samba-dsdb-modules winbind)

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} > 0)); then
	export DEBIAN_FRONTEND=noninteractive
	# Keep invoke-rc.d from starting daemons while packages install.
	policy=/usr/sbin/policy-rc.d
	had_policy=0
	[[ -e $policy ]] && had_policy=1
	if ((had_policy == 0)); then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
	fi
	trap '((had_policy == 0)) && rm -f "$policy"' EXIT
	echo "slapd slapd/no_configuration boolean true" | debconf-set-selections || true
	apt-get update -qq || apt-get update
	apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Stop anything that still got started on the standard ports (system units,
# if a service manager runs at all here).
for svc in slapd samba-ad-dc smbd nmbd winbind; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
		systemctl stop "$svc" || true
	fi
	if [[ -x /etc/init.d/$svc ]] && command -v service >/dev/null 2>&1; then
		service "$svc" stop >/dev/null 2>&1 || true
	fi
done
# AppArmor (where present) keeps slapd from reading configs in temp folders.
if [[ -e /etc/apparmor.d/usr.sbin.slapd ]] && command -v aa-complain >/dev/null 2>&1; then
	aa-complain /usr/sbin/slapd >/dev/null 2>&1 || true
fi
command -v slapd >/dev/null 2>&1 || [[ -x /usr/sbin/slapd ]]
command -v samba >/dev/null 2>&1 || [[ -x /usr/sbin/samba ]]
echo "install-ldap: slapd and samba are installed"
