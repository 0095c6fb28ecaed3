#!/usr/bin/env bash
# Quick-start demo: installs what is missing, builds breakfix, and runs a complete break-fix
# cycle offline with `breakfix demo` (see README.md, "The offline demo"): a tokenizer, a small
# chat model and a user simulator trained from scratch on demo/data, a classifier judge, then
# measure (rai + overrefusal) -> curate -> DPO -> measure, and the round-over-round table.
# Output goes to demo-out/ (or $BREAKFIX_DEMO_OUT); rerunning resumes and reprints the report.
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/build.sh" breakfix_cli
exec ./build/breakfix demo --data demo/data --out "${BREAKFIX_DEMO_OUT:-demo-out}" "$@"
