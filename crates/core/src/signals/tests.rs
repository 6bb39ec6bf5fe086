//! Tests of the signal codecs: the IAB's published vectors (each file named where it is used) and
//! property tests (round trips, random bytes never panic).

mod apply;
mod gpp_vectors;
mod props;
mod tcf_vectors;
