# Shared settings for the build scripts; sourced, not run.
# Caches live outside the repository, keyed by what they depend on: in
# $LLMDEV_CACHE, by default ~/.cache/llmdev (debian/rules points it into
# the source tree: a package build may not write to $HOME).
LLMDEV_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LLMDEV_CACHE=${LLMDEV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmdev}

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 2; }

mkdir -p "$LLMDEV_CACHE" ||
	die "cannot create the cache directory $LLMDEV_CACHE (set LLMDEV_CACHE to a writable one)"

# hash_files FILE... : a short content hash of the named files (and their names)
hash_files() {
	local f
	for f in "$@"; do
		printf '%s\n' "${f#"$LLMDEV_TOP"/}"
		cat "$f"
	done | sha256sum | cut -c1-16
}

# Make sure deb-src entries mirror the deb entries, so apt-get source works.
ensure_deb_src() {
	local f=/etc/apt/sources.list.d/llmdev-deb-src.sources
	if apt-cache showsrc "$1" 2>/dev/null | grep -q '^Package:'; then
		return 0
	fi
	[ "$(id -u)" = 0 ] || die "no deb-src entries for $1 and not root to add them"
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		sed -n '/^Types:/!p;/^Types:/s/.*/Types: deb-src/p' \
			/etc/apt/sources.list.d/debian.sources >"$f"
	elif [ -f /etc/apt/sources.list ]; then
		grep -E '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' \
			>/etc/apt/sources.list.d/llmdev-deb-src.list
	fi
	apt-get update -qq
}

# Kernel ABI name of Debian's current linux-image-amd64, e.g. 6.1.0-56-amd64
debian_kver() {
	local d
	d=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] || die "linux-headers-amd64 is not installed (run scripts/deps.sh)"
	echo "${d#/usr/src/linux-headers-}"
}

# checker_args KDIR: make arguments that run sparse (C=1) on a module build
# against KDIR. Where the kernel rejects the installed sparse (its
# scripts/checker-valid.sh: 7.x needs __typeof_unqual__, which Debian 12's
# 0.6.4 lacks), CHECK= names a newer one (scripts/sparse-new.sh). Nothing
# when sparse is not installed.
checker_args() {
	local valid=$1/scripts/checker-valid.sh new
	command -v sparse >/dev/null || return 0
	if [ -f "$valid" ] &&
		[ "$(sh "$valid" sparse --arch=x86 -mlittle-endian -m64 2>/dev/null)" != 1 ]; then
		if new=$("$LLMDEV_TOP/scripts/sparse-new.sh"); then
			echo "C=1 CHECK=$new"
			return 0
		fi
		log "no sparse that $1 accepts (kbuild will say so)"
	fi
	echo C=1
}
