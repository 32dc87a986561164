// Shared by every target (pulled in with `include!`, as each target is its own binary):
// arbitrary bytes through content detection and one parser, every row drained.

use bb_importers::{ImportFormat, detect, parse_reader};
use libfuzzer_sys::fuzz_target;

macro_rules! parser_target {
    ($format:ident) => {
        fuzz_target!(|data: &[u8]| {
            let _ = detect(data);
            if let Ok(rows) = parse_reader(
                ImportFormat::$format,
                Box::new(std::io::Cursor::new(data.to_vec())),
            ) {
                for row in rows {
                    let _ = row;
                }
            }
        });
    };
}
