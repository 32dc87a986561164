//! Fuzz target: arbitrary bytes as a `KoboReader.sqlite` file, through the Kobo reader
//! (opened read-only, `quick_check` first). A damaged or foreign file must be a whole-file
//! error, never a panic or a hang. Seeded by `run.sh` with databases built from the real
//! schema, so mutations reach the tables and not only SQLite's header check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::sync::LazyLock;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime for the fuzz target")
});

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(data).and_then(|()| file.flush()).is_err() {
        return;
    }
    let path = file.path().to_owned();
    let _ = RUNTIME.block_on(bb_importers::kobo::read_kobo(&path));
});
