//! The keys, rules and destinations files on arbitrary text: each loads or
//! names the problem.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schemas::keys::ApiKeys;

fuzz_target!(|text: &str| {
    let _ = ApiKeys::from_toml(text);
    let _ = processor::rules::Rules::parse(text, "fuzz");
    let _ = processor::webhooks::destinations::parse(text, "fuzz", |_| Some("secret".to_owned()));
});
