//! The `--credentials` file, in either of Mesos's formats: JSON
//! `{"credentials": [{"principal": "p", "secret": "s"}, ...]}` or text, one
//! `principal secret` per line (blank lines skipped).

use std::collections::HashMap;

use serde::Deserialize;

/// Principals and their secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    secrets: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonFile {
    credentials: Vec<JsonCredential>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonCredential {
    principal: String,
    secret: String,
}

impl Credentials {
    /// Parses a credentials file's content; the error says what and where.
    pub fn parse(text: &str) -> Result<Credentials, String> {
        let pairs = if text.trim_start().starts_with('{') {
            parse_json(text)?
        } else {
            parse_text(text)?
        };
        let mut secrets = HashMap::new();
        for (principal, secret) in pairs {
            if principal.is_empty() {
                return Err("a credential has an empty principal".to_owned());
            }
            if secrets.insert(principal.clone(), secret).is_some() {
                return Err(format!("principal '{principal}' is given twice"));
            }
        }
        Ok(Credentials { secrets })
    }

    /// The secret of `principal`, if it has one.
    pub fn secret(&self, principal: &str) -> Option<&str> {
        self.secrets.get(principal).map(String::as_str)
    }

    /// How many principals there are.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

fn parse_json(text: &str) -> Result<Vec<(String, String)>, String> {
    let file: JsonFile = serde_json::from_str(text).map_err(|e| {
        format!("invalid JSON credentials (expecting {{\"credentials\": [{{\"principal\": ..., \"secret\": ...}}]}}): {e}")
    })?;
    Ok(file
        .credentials
        .into_iter()
        .map(|c| (c.principal, c.secret))
        .collect())
}

fn parse_text(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            [principal, secret] => pairs.push(((*principal).to_owned(), (*secret).to_owned())),
            _ => {
                return Err(format!(
                    "invalid credential at line {}: expecting 'principal secret'",
                    index + 1
                ));
            }
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_text_files_parse_alike() {
        let json = r#"{"credentials": [{"principal": "alice", "secret": "s1"},
                                        {"principal": "bob", "secret": "s 2"}]}"#;
        let creds = Credentials::parse(json).expect("json");
        assert_eq!(creds.len(), 2);
        assert_eq!(creds.secret("alice"), Some("s1"));
        assert_eq!(creds.secret("bob"), Some("s 2"));
        assert_eq!(creds.secret("carol"), None);

        let text = "alice s1\n\n  bob\tsecret2  \n";
        let creds = Credentials::parse(text).expect("text");
        assert_eq!(creds.len(), 2);
        assert_eq!(creds.secret("alice"), Some("s1"));
        assert_eq!(creds.secret("bob"), Some("secret2"));
        assert!(Credentials::parse("").expect("empty").is_empty());
    }

    #[test]
    fn bad_files_are_errors_that_say_where() {
        let cases = [
            ("alice s1\nbob\n", "line 2"),
            ("alice s1 extra\n", "line 1"),
            ("{\"credentials\": [{\"principal\": \"a\"}]}", "secret"),
            ("{\"credentials\": 3}", "invalid JSON credentials"),
            ("{\"creds\": []}", "invalid JSON credentials"),
            ("{not json", "invalid JSON credentials"),
            ("alice s1\nalice s2\n", "given twice"),
            (
                r#"{"credentials": [{"principal": "", "secret": "s"}]}"#,
                "empty principal",
            ),
        ];
        for (input, wanted) in cases {
            let err = Credentials::parse(input).expect_err(input);
            assert!(err.contains(wanted), "{input:?}: {err}");
        }
    }
}
