//! `PARADOX_SIMD` forces the level chosen on first use. The choice is made once per
//! process, so the test re-runs its own binary with the variable set.

use std::process::Command;

use paradox_kernels::{kernel_table, simd_level, SimdLevel, SIMD_ENV_VAR};

const TEST_NAME: &str = "forcing_a_level_through_the_environment";

#[test]
fn forcing_a_level_through_the_environment() {
    match std::env::var(SIMD_ENV_VAR) {
        Ok(name) => {
            // Child: the forced level is used when supported, else the default choice stands.
            let forced = SimdLevel::parse(&name).expect("a known level name");
            if forced.is_supported() {
                assert_eq!(kernel_table().level, forced);
                assert_eq!(simd_level(), forced.as_str());
            } else {
                assert!(kernel_table().level.is_supported());
            }
            assert_eq!(
                paradox_kernels::dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]),
                32.0
            );
        }
        Err(_) => {
            for level in SimdLevel::ALL {
                // Output is captured so the child's summary does not mix with ours.
                let child = Command::new(std::env::current_exe().unwrap())
                    .args(["--exact", TEST_NAME])
                    .env(SIMD_ENV_VAR, level.as_str())
                    .output()
                    .expect("re-running the test binary");
                assert!(
                    child.status.success(),
                    "{SIMD_ENV_VAR}={level} failed:\n{}{}",
                    String::from_utf8_lossy(&child.stdout),
                    String::from_utf8_lossy(&child.stderr)
                );
            }
        }
    }
}
