//! Build script: the static arena size, and the C header.
//!
//! * `MEMSHIM_ARENA_SIZE` (bytes, or with a K/M suffix; default 1M; 0 turns
//!   the arena off) becomes `MEMSHIM_ARENA_BYTES` for `src/source/arena.rs`.
//! * With the `header` feature, cbindgen generates the header into
//!   `$OUT_DIR/memshim.h`; `make header` copies it to `include/memshim.h`,
//!   and a test (`make test-rust`) fails when they differ. Without it (the
//!   default) the build has no dependencies.

use std::env;

fn arena_bytes() -> u64 {
    const DEFAULT: u64 = 1 << 20;
    let Ok(raw) = env::var("MEMSHIM_ARENA_SIZE") else {
        return DEFAULT;
    };
    let s = raw.trim();
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1u64 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1u64 << 30),
        _ => (s, 1),
    };
    let n: u64 = digits.parse().unwrap_or_else(|_| {
        panic!("MEMSHIM_ARENA_SIZE={raw:?}: expected bytes, optionally with a K, M or G suffix")
    });
    let bytes = n
        .checked_mul(mult)
        .unwrap_or_else(|| panic!("MEMSHIM_ARENA_SIZE={raw:?} overflows"));
    // Whole pages, so the arena is one page-aligned span.
    bytes.div_ceil(4096) * 4096
}

fn main() {
    println!("cargo:rerun-if-env-changed=MEMSHIM_ARENA_SIZE");
    println!("cargo:rustc-env=MEMSHIM_ARENA_BYTES={}", arena_bytes());
    println!("cargo::rustc-check-cfg=cfg(memshim_no_std_decls, memshim_no_newlib_decls)");
    #[cfg(feature = "header")]
    header();
}

/// `$OUT_DIR/memshim.h` from the crate's source and cbindgen.toml.
#[cfg(feature = "header")]
fn header() {
    use std::path::PathBuf;
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("memshim.h");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src");
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(&out);
        }
        // A syntax error is reported by rustc itself, with better messages.
        Err(e) => println!("cargo:warning=cbindgen could not generate memshim.h: {e}"),
    }
}
