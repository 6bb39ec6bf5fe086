//! The configuration of verification codes: the SMTP server and the sender of the mails, the SMS gateway
//! and its signing secret, and how many verifications an identifier and a client address may start.

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
        use crate::verification::sms;
        if let Some(url) = &self.sms_webhook_url {
            sms::webhook_url(url).map_err(|e| invalid("sms_webhook_url", e))?;
            let Some(secret) = &self.sms_webhook_secret else {
                return Err(invalid(
                    "sms_webhook_secret",
                    "must be set when sms_webhook_url is: it signs each code",
                ));
            };
            sms::webhook_secret(secret).map_err(|e| invalid("sms_webhook_secret", e))?;
        } else if let Some(secret) = &self.sms_webhook_secret {
            sms::webhook_secret(secret).map_err(|e| invalid("sms_webhook_secret", e))?;
        }
        Ok(())
    }
}
