//! Placeholder: the command-line tool is written with the signing schemes.

fn main() {}
