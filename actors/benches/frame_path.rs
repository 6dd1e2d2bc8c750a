//! Criterion benchmark of the per-frame path (filled in below).

fn main() {}
