//! The short fuzz pass of the test suite: every target over seeded random inputs (the
//! same inputs every run), so a panic any of them finds fails the suite. `scripts/fuzz`
//! runs the coverage-guided libFuzzer pass for longer.
#![allow(clippy::unwrap_used)]

use rand::{Rng, SeedableRng};

/// Inputs per target; `MFH_FUZZ_SHORT_RUNS` raises it.
fn runs() -> usize {
    std::env::var("MFH_FUZZ_SHORT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

#[test]
fn every_target_survives_seeded_random_inputs() {
    for (name, target) in mfh_fuzz::TARGETS {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x6d66_6800 + name.len() as u64);
        for i in 0..runs() {
            let len = rng.random_range(0..2048);
            let input: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let caught = std::panic::catch_unwind(|| target(&input));
            assert!(
                caught.is_ok(),
                "target {name} panicked on input {i}: {input:?}"
            );
        }
    }
}
