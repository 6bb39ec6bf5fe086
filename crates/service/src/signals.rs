//! Consent signals of the advertising industry (IAB TCF TC strings, IAB GPP strings): decoded to their
//! values and encoded back (`POST /v1/signals/decode`, `/encode`), and a person's strings recorded and
//! given back (`subject`). The codecs and the mapping are the core's (`consentry_core::signals`); this
//! module shapes requests, answers and errors, and reaches the store and the engine.

pub mod subject;

use consentry_core::signals::{self, GppString, Place, SignalError, TcString, gpp, tcf};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{Error, FieldProblem, Result};

/// A TC string or a GPP string: exactly one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecodeRequest {
    /// An IAB TCF v2 TC string (TCF 2.2/2.3: core, disclosed vendors, allowed vendors, publisher TC).
    #[serde(default)]
    #[schema(max_length = 65536)]
    pub tcf: Option<String>,
    /// An IAB GPP string (header, then sections separated by `~`).
    #[serde(default)]
    #[schema(max_length = 65536)]
    pub gpp: Option<String>,
}

/// The decoded values, under the key of the string given.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecodeResponse {
    /// The TC string's values with the IAB's field names in snake case; times in RFC 3339 to the tenth
    /// of a second, as encoded; every id set a sorted list.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub tcf: Option<Value>,
    /// `{"section_ids": [...], "sections": {"tcfeuv2": {...}, "usnat": {...}, ...}}`; a section this
    /// service does not read is `{"opaque": "<its text>"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub gpp: Option<Value>,
}

/// Values to encode: `tcf` (as `decode` gives them) or `gpp` (`{"sections": {...}}`), exactly one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EncodeRequest {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub tcf: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub gpp: Option<Value>,
}

/// The encoded string, under the key of the values given.
#[derive(Debug, Serialize, ToSchema)]
pub struct EncodeResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcf: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpp: Option<String>,
}

/// Which of the two a request names.
pub(crate) enum Either<T> {
    Tcf(T),
    Gpp(T),
}

pub(crate) fn one_of<T>(tcf: Option<T>, gpp: Option<T>) -> Result<Either<T>> {
    match (tcf, gpp) {
        (Some(t), None) => Ok(Either::Tcf(t)),
        (None, Some(g)) => Ok(Either::Gpp(g)),
        (Some(_), Some(_)) => Err(Error::validation("tcf", "give either tcf or gpp, not both")),
        (None, None) => Err(Error::validation("tcf", "give a tcf or a gpp string")),
    }
}

/// The problem for a string or values that cannot be read or written: `invalid_tc_string` or
/// `invalid_gpp_string`, naming the request field (and, for a string, the segment and bit offset).
pub(crate) fn signal_error(e: SignalError) -> Error {
    let root = match e.signal {
        signals::Signal::Tcf => "tcf",
        signals::Signal::Gpp => "gpp",
    };
    let path = match &e.place {
        Place::Bit { .. } => root.to_owned(),
        Place::Field(f) => format!("{root}.{f}"),
    };
    Error::InvalidSignal {
        code: e.code(),
        detail: e.to_string(),
        errors: vec![FieldProblem { path, message: e.to_string() }],
    }
}

/// Reads values from JSON, naming the field at fault (`tcf.vendor_consents[2]`).
fn from_json<T: for<'de> Deserialize<'de>>(signal: signals::Signal, root: &str, value: Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { root.to_owned() } else { format!("{root}.{path}") };
        let message = e.into_inner().to_string();
        let code = signal.code();
        Error::InvalidSignal {
            code,
            detail: format!("{field}: {message}"),
            errors: vec![FieldProblem { path: field, message }],
        }
    })
}

/// Decodes a TC string.
pub fn decode_tcf(text: &str) -> Result<TcString> {
    tcf::decode(text).map_err(signal_error)
}

/// Decodes a GPP string.
pub fn decode_gpp(text: &str) -> Result<GppString> {
    gpp::decode(text).map_err(signal_error)
}

/// `POST /v1/signals/decode`.
pub fn decode(req: DecodeRequest) -> Result<DecodeResponse> {
    match one_of(req.tcf, req.gpp)? {
        Either::Tcf(text) => {
            let tc = decode_tcf(&text)?;
            let value = serde_json::to_value(&tc).map_err(Error::internal)?;
            Ok(DecodeResponse { tcf: Some(value), gpp: None })
        }
        Either::Gpp(text) => Ok(DecodeResponse { tcf: None, gpp: Some(decode_gpp(&text)?.to_json()) }),
    }
}

/// `POST /v1/signals/encode`.
pub fn encode(req: EncodeRequest) -> Result<EncodeResponse> {
    match one_of(req.tcf, req.gpp)? {
        Either::Tcf(value) => {
            let tc: TcString = from_json(signals::Signal::Tcf, "tcf", value)?;
            Ok(EncodeResponse { tcf: Some(tcf::encode(&tc).map_err(signal_error)?), gpp: None })
        }
        Either::Gpp(value) => {
            let g = GppString::from_json(value).map_err(signal_error)?;
            Ok(EncodeResponse { tcf: None, gpp: Some(gpp::encode(&g).map_err(signal_error)?) })
        }
    }
}
