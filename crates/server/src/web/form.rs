//! What a submitted preference-centre form says: its CSRF token and its fields, read from an
//! `application/x-www-form-urlencoded` body. Unknown fields are ignored.

use consentry_service::preferences::Choices;

/// Most fields read from one form (the page's largest has a few per purpose and channel).
const MAX_FIELDS: usize = 1000;

/// A submitted form.
#[derive(Debug, Default)]
pub struct Form {
    pub csrf: Option<String>,
    /// The choices form: ticked purposes (`p`), ticked channels (`c`, `purpose|channel`) and the notice
    /// versions shown (`v`, `notice|version`).
    pub choices: Choices,
    /// The kind of data to delete (the data section's form).
    pub category: Option<String>,
    /// The purpose objected to (the object form).
    pub purpose: Option<String>,
    /// The erasure's confirmation (`confirm=yes`).
    pub confirmed: bool,
}

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        let mut form = Form::default();
        for (name, value) in form_urlencoded::parse(body).take(MAX_FIELDS) {
            match name.as_ref() {
                "csrf" => form.csrf = Some(value.into_owned()),
                "category" => form.category = Some(value.into_owned()),
                "purpose" => form.purpose = Some(value.into_owned()),
                "confirm" => form.confirmed = value == "yes",
                "p" => {
                    form.choices.purposes.insert(value.into_owned());
                }
                "c" => {
                    if let Some((p, c)) = value.split_once('|') {
                        form.choices.channels.insert((p.to_owned(), c.to_owned()));
                    }
                }
                "v" => {
                    if let Some((n, v)) = value.split_once('|')
                        && let Ok(v) = v.parse()
                    {
                        form.choices.versions.insert(n.to_owned(), v);
                    }
                }
                _ => {}
            }
        }
        form
    }
}

#[cfg(test)]
mod tests {
    use super::Form;

    #[test]
    fn fields_are_read_and_malformed_ones_skipped() {
        let body =
            "csrf=t&p=analytics&c=marketing.direct%7Csms&c=nochannel&v=analytics%7C2&v=x%7Cy&confirm=yes";
        let form = Form::parse(format!("{body}&unknown=1").as_bytes());
        assert_eq!(form.csrf.as_deref(), Some("t"));
        assert!(form.choices.purposes.contains("analytics"));
        assert_eq!(form.choices.channels.len(), 1);
        assert!(form.choices.channels.contains(&("marketing.direct".to_owned(), "sms".to_owned())));
        assert_eq!(form.choices.versions.get("analytics"), Some(&2));
        assert_eq!(form.choices.versions.len(), 1);
        assert!(form.confirmed);
        assert!(!Form::parse(b"confirm=no").confirmed);
    }
}
