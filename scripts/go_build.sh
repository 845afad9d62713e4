# Sourced by build_prometheus3.sh and build_otelcol.sh: the binary cache, the Go check, the
# temporary build folder and the atomic install.
CACHE="${BENCHWATCH_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/benchwatch/bin}"

# go_build_start NAME OUT: prints OUT and exits when it is built already; otherwise checks for Go
# and sets $tmp (a build folder, removed on exit) and $start (the clock).
go_build_start() {
    if [ -x "$2" ]; then
        echo "$2"
        exit 0
    fi
    command -v go >/dev/null || { echo "$1: Go is required (https://go.dev/dl/)" >&2; exit 1; }
    mkdir -p "$CACHE"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    start=$(date +%s)
}

# go_build_install NAME BUILT OUT: moves BUILT to OUT (atomic: no half-built binary), prints OUT.
go_build_install() {
    mv "$2" "$3.partial" && mv "$3.partial" "$3"
    echo "$1: built in $(( $(date +%s) - start )) s -> $3" >&2
    echo "$3"
}
