//! The console's extractors: a signed-in page ([`Visit`]) and a signed-in action ([`Act`]), so that a
//! handler starts from who is asking and, for a form, its checked fields, and only renders.
//!
//! A page without a session sends the browser to the sign-in form; a page whose session ended says so.
//! An action checks the session, the form's CSRF token, then `console:write`, and stops with the page
//! saying which failed.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::{Fields, MAX_FIELDS, Stop, Visit, lang_for, see_other, session, stop_page, visit};
use crate::state::AppState;

/// The `lang` parameter of a query string.
fn lang_param(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == "lang").map(|(_, v)| v.into_owned())
}

impl FromRequestParts<AppState> for Visit {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let chosen = lang_param(parts.uri.query());
        match visit(state, &parts.headers, chosen.as_deref()).await {
            Ok(v) => Ok(v),
            Err(Stop::SignedOut) if session::token(&parts.headers).is_none() => {
                Err(see_other("/console/sign-in"))
            }
            Err(stop) => Err(stop_page(state, lang_for(chosen.as_deref(), &parts.headers), None, stop)),
        }
    }
}

/// A submitted action: its session (which may act) and its form's fields, the CSRF token checked.
pub(super) struct Act {
    pub visit: Visit,
    pub fields: Fields,
}

/// The session of a form posted with `csrf`, which must be its CSRF token; then `console:write`.
pub(super) async fn authorise(
    state: &AppState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<Visit, Response> {
    let visit = match visit(state, headers, None).await {
        Ok(v) => v,
        Err(stop) => return Err(stop_page(state, lang_for(None, headers), None, stop)),
    };
    if !session::csrf_valid(state, session::FORMS, &visit.token, csrf) {
        return Err(visit.stop(state, Stop::Csrf));
    }
    if visit.caller.require_write().is_err() {
        return Err(visit.stop(state, Stop::ReadOnly));
    }
    Ok(visit)
}

impl FromRequest<AppState> for Act {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        let fields = Fields::parse(&body, MAX_FIELDS);
        let visit = authorise(state, &headers, fields.get("csrf")).await?;
        Ok(Act { visit, fields })
    }
}

/// A page's query string, read into `T`; one that does not read (a letter where a number belongs) is
/// the console's own 400 page in the reader's language, not the framework's plain-text answer.
pub(super) struct PageQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequestParts<AppState> for PageQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        axum::extract::Query::try_from_uri(&parts.uri).map(|q| PageQuery(q.0)).map_err(|_| {
            let chosen = lang_param(parts.uri.query());
            let lang = lang_for(chosen.as_deref(), &parts.headers);
            stop_page(state, lang, None, Stop::Invalid("console-query-invalid"))
        })
    }
}
