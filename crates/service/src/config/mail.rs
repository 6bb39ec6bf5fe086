//! The configuration of verification mails: the SMTP server, the sender, and how many verifications an
//! identifier and a client address may start per hour.

use super::{Config, ConfigError, invalid, within};

impl Config {
    /// Checks the SMTP URL's form, that a sender goes with it, and the limits' ranges, naming the key at
    /// fault. The URL and the sender are parsed by the mailer itself ([`crate::verification::mail`]).
    pub(super) fn validate_mail(&self) -> Result<(), ConfigError> {
        within("verification_per_identifier_per_hour", self.verification_per_identifier_per_hour, 1..=1000)?;
        within("verification_per_identifier_per_day", self.verification_per_identifier_per_day, 1..=10_000)?;
        if self.verification_per_identifier_per_day < self.verification_per_identifier_per_hour {
            return Err(invalid(
                "verification_per_identifier_per_day",
                "must be at least verification_per_identifier_per_hour",
            ));
        }
        within("verification_per_address_per_hour", self.verification_per_address_per_hour, 1..=100_000)?;
        if let Some(url) = &self.smtp_url {
            crate::verification::mail::transport_url(url).map_err(|e| invalid("smtp_url", e))?;
            let Some(from) = &self.smtp_from else {
                return Err(invalid(
                    "smtp_from",
                    "must be set when smtp_url is: the sender of verification mails",
                ));
            };
            crate::verification::mail::mailbox(from).map_err(|e| invalid("smtp_from", e))?;
        } else if let Some(from) = &self.smtp_from {
            crate::verification::mail::mailbox(from).map_err(|e| invalid("smtp_from", e))?;
        }
        Ok(())
    }
}
