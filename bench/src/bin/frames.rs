//! Frame manager benchmark (filled in by the frames work).
fn main() {}
