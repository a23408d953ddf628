//! Query cursors: arbitrary text is a position or nothing, and a position
//! survives its own cursor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use query_api::store::bounds::Position;

fuzz_target!(|text: &str| {
    if let Some(position) = Position::parse(text) {
        assert_eq!(Position::parse(&position.cursor()), Some(position));
    }
});
