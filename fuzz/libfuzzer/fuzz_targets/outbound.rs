#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mfh_fuzz::TARGETS
    .iter()
    .find(|(name, _)| *name == "outbound")
    .expect("a target of mfh_fuzz::TARGETS")
    .1(data));
