//! Link settings of the C artifacts.

fn main() {
    // libmemshim.so binds its own calls to its own definitions: realloc's
    // free, reallocarray's realloc and the newlib `_r` forms must reach
    // memshim even when the library is loaded with dlopen(RTLD_LOCAL)
    // beside another malloc (the test: c_tests/dlopen_probe.c). Preloaded,
    // it changes nothing: memshim's definitions come first anyway.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-Bsymbolic-functions");
}
