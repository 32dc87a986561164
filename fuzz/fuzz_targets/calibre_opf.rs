//! Fuzz target: arbitrary bytes through the calibre opf parser, detection included.
#![no_main]

use bb_importers::{ImportFormat, detect, parse_reader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = detect(data);
    if let Ok(rows) = parse_reader(
        ImportFormat::CalibreOpf,
        Box::new(std::io::Cursor::new(data.to_vec())),
    ) {
        for row in rows {
            let _ = row;
        }
    }
});
