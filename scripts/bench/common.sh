# Shared by compare-peer.sh and compare-peer-run.sh (sourced, after `name` is set): where the
# qgoft binary, the peer and its virtual environment are, argument checks, the output folder.
# QGOFT (default .build/release/qgoft), QGOFT_PEER (default ../shared/peer next to the repository)
# and PEER_VENV (default ~/.peer-venv, made by setup-peer.sh) override the locations.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
peer=${QGOFT_PEER:-$repo/../shared/peer}
venv=${PEER_VENV:-$HOME/.peer-venv}
qgoft=${QGOFT:-$repo/.build/release/qgoft}
py=$venv/bin/python

die() { echo "$name: $*" >&2; exit 2; }
# posint OPTION VALUE MIN: VALUE must be an integer >= MIN.
posint() { [[ $2 =~ ^[0-9]+$ && $2 -ge $3 ]] || die "$1 $2: must be an integer >= $3"; }

# The script's header comment (from line 2 to the first line that is not a comment), unmarked.
usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }

# The options both scripts take, for the last branches of their option loops: --threads N and
# --out DIR (set `threads` and `out`), --help; anything else is an error. Sets `shifted` to the
# number of arguments used.
common_option() {
    case $1 in
        --threads) [[ $# -ge 2 ]] || die "--threads needs a value"; posint "$1" "$2" 1; threads=$2; shifted=2 ;;
        --out) [[ $# -ge 2 ]] || die "--out needs a value"; out=$2; shifted=2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
}

# Dies unless the qgoft binary, the peer and its virtual environment are there.
check_tools() {
    [[ -x $qgoft ]] || die "no qgoft binary at $qgoft (swift build -c release, or set QGOFT)"
    [[ -f $peer/peer.py ]] || die "no peer at $peer (set QGOFT_PEER)"
    [[ -x $py ]] || die "no peer virtual environment at $venv (run scripts/bench/setup-peer.sh)"
}

# make_out DIR: sets `out` to DIR as an absolute path, made new (an existing DIR is refused:
# nothing is overwritten), or to a new folder under /tmp when DIR is empty.
make_out() {
    if [[ -z $1 ]]; then
        out=$(mktemp -d "/tmp/$name.XXXXXX")
    else
        [[ ! -e $1 ]] || die "--out $1: already exists (nothing is overwritten)"
        mkdir -p "$1"
        out=$1
    fi
    out=$(cd "$out" && pwd)  # the peer runs in its own folder
}
