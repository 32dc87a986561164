#!/usr/bin/env bash
# Runs every importer fuzz target for SECONDS each (default 60).
# Needs cargo-fuzz: cargo install cargo-fuzz --version 0.13.2 --locked
# RUSTC_BOOTSTRAP lets the stable toolchain accept the sanitizer flags cargo-fuzz passes.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")"
targets=(goodreads_csv storygraph_csv librarything_json librarything_tsv openlibrary_csv calibre_csv calibre_opf
         audible_cli_json audible_cli_csv audible_cli_tsv libation_json libation_csv audible_api_json kindle_clippings
         kobo_sqlite)
# A KoboReader.sqlite built from the real schema document and the tests' synthetic rows
# (there is no binary fixture), so mutations reach the tables past SQLite's header check.
kobo_seed() {
    rm -f "$1"
    python3 - "$1" <<'PY'
import re, sqlite3, sys
doc = open("../../shared/fixtures/real/kobo/kobo.schema.md", encoding="utf-8").read()
db = sqlite3.connect(sys.argv[1])
for ddl in re.findall(r"```sql\n(.*?)```", doc, re.S):
    db.executescript(ddl)
db.executescript(open("../crates/bb-importers/tests/data/kobo_rows.sql", encoding="utf-8").read())
db.commit()
PY
}

for target in "${targets[@]}"; do
    echo "== fuzzing $target for ${seconds}s"
    # Seed each corpus with the real exports so the fuzzer starts past the header checks.
    corpus="corpus/$target"
    mkdir -p "$corpus"
    case "$target" in
        goodreads_csv) seeds=(../../shared/fixtures/real/goodreads/*.csv) ;;
        storygraph_csv) seeds=(../../shared/fixtures/real/storygraph/*.csv) ;;
        librarything_json) seeds=() ;; # 395 KB: too big a seed; the fuzzer finds `{` quickly
        librarything_tsv) seeds=(../../shared/fixtures/real/librarything/*.tsv) ;;
        openlibrary_csv) seeds=(../../shared/fixtures/real/openlibrary/*.csv) ;;
        calibre_csv) seeds=(../../shared/fixtures/real/calibre/*.csv) ;;
        calibre_opf) seeds=(../../shared/fixtures/real/calibre/*.opf) ;;
        kindle_clippings) seeds=(../../shared/fixtures/real/kindle-clippings/*.txt) ;;
        kobo_sqlite) kobo_seed "$corpus/full-schema.sqlite"; seeds=() ;;
        *) seeds=(../crates/bb-importers/tests/data/*) ;; # the synthetic Audible/Libation samples
    esac
    for s in "${seeds[@]}"; do
        [ -f "$s" ] && cp "$s" "$corpus/"
    done
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$corpus" -- -max_total_time="$seconds" -rss_limit_mb=2048
done
