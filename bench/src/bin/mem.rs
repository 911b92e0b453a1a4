//! Memory-function benchmark (filled in by the memory functions work).
fn main() {}
