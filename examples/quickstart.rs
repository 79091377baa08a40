//! Placeholder: the quickstart example is written with the sending side.

fn main() {}
