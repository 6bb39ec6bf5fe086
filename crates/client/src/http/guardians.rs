//! Children and guardians: a subject's age and their guardians
//! ([people](https://github.com/consentry/consentry/blob/main/docs/people.md#children-and-guardians)).

use serde::{Deserialize, Serialize};

use super::{Client, Error};

/// What is known of a subject's age, and what follows from it now.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Age {
    pub birth_date: Option<String>,
    pub age_band: Option<String>,
    /// The day the age was stated: a band is read as of this day.
    pub stated_on: String,
    /// Whether the subject is a known child now.
    pub child: bool,
    /// When they come of age (midnight UTC), while they are a child.
    pub child_until: Option<String>,
    /// The age of digital consent that applies (their jurisdiction's, else 16).
    pub age_of_digital_consent: u8,
}

/// A subject's age as a brand states it: a birth date (`YYYY-MM-DD`) or a band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgeIn {
    BirthDate(String),
    /// `0-12`, `13-15`, `16-17` or `18+`.
    AgeBand(String),
}

/// One guardian relation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Guardian {
    pub child: String,
    pub guardian: String,
    /// `sha256:<hex>` of the evidence's canonical JSON, when evidence was given.
    pub evidence: Option<String>,
    pub created_at: String,
}

#[derive(Deserialize)]
struct Guardians {
    guardians: Vec<Guardian>,
}

impl Client {
    /// States what is known of `subject`'s age (`consent:write`); a known child's consent purposes then
    /// need a guardian.
    pub async fn set_age(&self, subject: &str, age: &AgeIn) -> Result<Age, Error> {
        let url = format!("{}/v1/subjects/{}/age", self.base, subject);
        self.send(self.http.put(url).json(age)).await
    }

    /// What is known of `subject`'s age (`consent:read`); a 404 problem when nothing is.
    pub async fn age(&self, subject: &str) -> Result<Age, Error> {
        let url = format!("{}/v1/subjects/{}/age", self.base, subject);
        self.send(self.http.get(url)).await
    }

    /// Records `guardian` as a guardian of `child` (`consent:write`), with the evidence the brand holds
    /// (only its SHA-256 is kept).
    pub async fn add_guardian(
        &self,
        child: &str,
        guardian: &str,
        evidence: Option<serde_json::Value>,
    ) -> Result<Guardian, Error> {
        let url = format!("{}/v1/subjects/{}/guardians", self.base, child);
        let mut body = serde_json::json!({"guardian": guardian});
        if let Some(evidence) = evidence {
            body["evidence"] = evidence;
        }
        self.send(self.http.post(url).json(&body)).await
    }

    /// The guardians of `child`, oldest first (`consent:read`).
    pub async fn guardians(&self, child: &str) -> Result<Vec<Guardian>, Error> {
        let url = format!("{}/v1/subjects/{}/guardians", self.base, child);
        let list: Guardians = self.send(self.http.get(url)).await?;
        Ok(list.guardians)
    }

    /// Removes `guardian` from `child`'s guardians (`consent:write`).
    pub async fn remove_guardian(&self, child: &str, guardian: &str) -> Result<(), Error> {
        let url = format!("{}/v1/subjects/{}/guardians/{}", self.base, child, guardian);
        self.send_empty(self.http.delete(url)).await
    }
}
