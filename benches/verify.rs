//! Placeholder: the verification benchmark lives with the verifier.

fn main() {}
