# Private apt for other Debian suites' packages; sourced (after common.sh).
#
# Each suite gets its own apt configuration under $LLMDEV_CACHE/apt/<suite>/
# (sources.list, lists, package cache, an empty dpkg status): the system's
# apt sources and dpkg database are never read or changed, and nothing is
# installed; packages are only downloaded (apt-get download) and extracted
# (dpkg-deb -x) where the caller wants them.
#
#   suite_apt SUITE apt-get|apt-cache ARGS...   run apt with SUITE's config
#   suite_update SUITE       refresh SUITE's package lists when older than
#                            LLMDEV_APT_MAX_AGE seconds (default 3600; 0 =
#                            always); without network, use the old lists
#   suite_candidate SUITE PKG   the version apt would pick, or nothing
#   suite_depends SUITE PKG=VER the names in its Depends (first alternative)
#   suite_download SUITE DIR PKG=VER...  download the .debs into DIR
#
# Suites: bullseye, bookworm, trixie (each with its security suite), sid;
# sid-src has sid's source packages.

LLMDEV_APT_MIRROR=${LLMDEV_APT_MIRROR:-http://deb.debian.org/debian}
LLMDEV_APT_SECURITY=${LLMDEV_APT_SECURITY:-http://deb.debian.org/debian-security}
LLMDEV_APT_KEYRING=${LLMDEV_APT_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}

suite_dir() { printf '%s/apt/%s' "$LLMDEV_CACHE" "$1"; }

suite_sources() {
	local s=$1 o="[arch=amd64 signed-by=$LLMDEV_APT_KEYRING]"
	case $s in
	bullseye | bookworm | trixie)
		echo "deb $o $LLMDEV_APT_MIRROR $s main"
		echo "deb $o $LLMDEV_APT_MIRROR $s-updates main"
		echo "deb $o $LLMDEV_APT_SECURITY $s-security main" ;;
	sid) echo "deb $o $LLMDEV_APT_MIRROR sid main" ;;
	# source packages of sid (apt-get source --download-only)
	sid-src) echo "deb-src [signed-by=$LLMDEV_APT_KEYRING] $LLMDEV_APT_MIRROR sid main" ;;
	*) die "unknown Debian suite '$s' (bullseye, bookworm, trixie, sid, sid-src)" ;;
	esac
}

suite_init() {
	local d
	d=$(suite_dir "$1")
	mkdir -p "$d/etc/sources.list.d" "$d/etc/preferences.d" \
		"$d/lists/partial" "$d/archives/partial"
	suite_sources "$1" >"$d/etc/sources.list.new"
	if ! cmp -s "$d/etc/sources.list.new" "$d/etc/sources.list"; then
		mv "$d/etc/sources.list.new" "$d/etc/sources.list"
		rm -f "$d/.updated"
	else
		rm -f "$d/etc/sources.list.new"
	fi
	[ -f "$d/status" ] || : >"$d/status"
}

suite_apt() {
	local s=$1 tool=$2 d
	shift 2
	d=$(suite_dir "$s")
	"$tool" -q \
		-o Dir::Etc::sourcelist="$d/etc/sources.list" \
		-o Dir::Etc::sourceparts="$d/etc/sources.list.d" \
		-o Dir::Etc::preferences="$d/etc/preferences" \
		-o Dir::Etc::preferencesparts="$d/etc/preferences.d" \
		-o Dir::State="$d" -o Dir::State::lists="$d/lists" \
		-o Dir::State::status="$d/status" \
		-o Dir::Cache="$d" -o Dir::Cache::archives="$d/archives" \
		-o Dir::Cache::pkgcache="$d/pkgcache.bin" \
		-o Dir::Cache::srcpkgcache="$d/srcpkgcache.bin" \
		-o APT::Architecture=amd64 -o APT::Architectures::=amd64 \
		-o APT::Sandbox::User=root \
		"$@"
}

suite_lock() { # SUITE: serialise everything that touches SUITE's apt dir
	mkdir -p "$LLMDEV_CACHE/apt"
	exec 7>"$LLMDEV_CACHE/apt/.lock-$1"
	flock 7
}

suite_update() {
	local s=$1 d age max=${LLMDEV_APT_MAX_AGE:-3600}
	suite_init "$s"
	d=$(suite_dir "$s")
	if [ -f "$d/.updated" ]; then
		age=$(($(date +%s) - $(stat -c %Y "$d/.updated")))
		[ "$age" -lt "$max" ] && return 0
	fi
	log "$s: updating the package lists (private apt in ${d/#$HOME/\~})"
	if suite_apt "$s" apt-get update >"$d/update.log" 2>&1 &&
		! grep -qE '^(W|E): ' "$d/update.log"; then
		touch "$d/.updated"
		return 0
	fi
	if ls "$d/lists/"*_Packages >/dev/null 2>&1; then
		log "$s: apt-get update failed; using the lists of $(date -r "$(ls -t "$d/lists/"*_Packages | head -n 1)" '+%F %R'):"
		grep -E '^(W|E|Err):' "$d/update.log" | head -n 5 >&2
		return 0
	fi
	grep -E '^(W|E|Err):' "$d/update.log" | head -n 5 >&2
	return 1
}

suite_candidate() {
	suite_apt "$1" apt-cache policy "$2" 2>/dev/null |
		awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'
}

suite_depends() { # SUITE PKG=VER: package names of Depends, first alternatives
	suite_apt "$1" apt-cache show "$2" 2>/dev/null |
		awk -F': ' '$1 == "Depends" { print $2; exit }' |
		tr ',' '\n' | sed -E 's/\|.*//; s/\(.*//; s/[[:space:]]//g' | grep -v '^$'
}

suite_download() { # SUITE DIR PKG=VER...: download into DIR (kept there as a cache)
	local s=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	(cd "$dir" && suite_apt "$s" apt-get download "$@") >&2
}
