//! Sending the verification mail through the configured SMTP server with `lettre` (rustls with ring, the
//! system's roots). Its words are [`super::words`]'.
//!
//! `smtp://host:port` uses STARTTLS when the server offers it (and goes on in plain text when it does
//! not, as most submission servers on loopback or a private network do); `?tls=required` refuses a server
//! without it; `smtps://` speaks TLS from the first byte.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// The URL lettre is given for `smtp_url`: STARTTLS when offered, unless the URL says otherwise.
pub fn transport_url(url: &str) -> Result<String, String> {
    let (scheme, _) = url.split_once("://").ok_or("must be an smtp:// or smtps:// URL")?;
    if scheme != "smtp" && scheme != "smtps" {
        return Err("must be an smtp:// or smtps:// URL".into());
    }
    let url = if scheme == "smtp" && !url.contains("tls=") {
        let join = if url.contains('?') { '&' } else { '?' };
        format!("{url}{join}tls=opportunistic")
    } else {
        url.to_owned()
    };
    // Checked here once, at start, by the parser that will use it (host, port, TLS mode).
    AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
        .map_err(|e| format!("is not a usable SMTP URL ({})", safe_error(&e.to_string())))?;
    Ok(url)
}

/// A sender's mailbox: `privacy@example.com` or `Example Brand <privacy@example.com>`.
pub fn mailbox(text: &str) -> Result<Mailbox, String> {
    text.parse::<Mailbox>()
        .map_err(|_| "must be an e-mail address, optionally with a name: Name <a@b.example>".into())
}

/// An error's text without anything that looks like a URL's credentials.
fn safe_error(text: &str) -> String {
    if text.contains('@') { "the URL is malformed".to_owned() } else { text.to_owned() }
}

/// Sends verification mails through the configured SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").finish_non_exhaustive()
    }
}

impl Mailer {
    /// The mailer of `smtp_url` and `smtp_from` (both checked when the configuration was validated).
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let url = transport_url(url)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
            .map_err(|e| safe_error(&e.to_string()))?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        Ok(Self { transport, from: mailbox(from)? })
    }

    /// Sends a plain-text mail to `to`. The error says what failed, without the address.
    pub async fn send(&self, to: &str, subject: String, body: String) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|_| "the recipient is no mailbox".to_owned())?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("the message cannot be built: {e}"))?;
        self.transport.send(message).await.map(drop).map_err(|e| {
            let kind = if e.is_permanent() {
                "refused permanently"
            } else if e.is_transient() {
                "refused for now"
            } else if e.is_timeout() {
                "timed out"
            } else {
                "failed"
            };
            // lettre's message may quote the server's reply, which can name the recipient: only the kind.
            format!("sending {kind}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_default_to_starttls_when_offered() {
        assert_eq!(
            transport_url("smtp://127.0.0.1:2525").as_deref(),
            Ok("smtp://127.0.0.1:2525?tls=opportunistic")
        );
        assert_eq!(
            transport_url("smtp://u:p@mail.example.com:587?tls=required").as_deref(),
            Ok("smtp://u:p@mail.example.com:587?tls=required")
        );
        assert!(transport_url("smtps://mail.example.com").is_ok());
        assert!(transport_url("http://mail.example.com").is_err());
        assert!(transport_url("mail.example.com").is_err());
        let err = transport_url("smtp://user:secret@:25").expect_err("no host");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn senders() {
        assert!(mailbox("Example Brand <privacy@example.com>").is_ok());
        assert!(mailbox("not an address").is_err());
    }
}
