//! IAB TCF and GPP strings through the API: decoding and encoding, and the problems for bad input.

mod codec;
mod preferences;
mod subject;
