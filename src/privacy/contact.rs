//! One caller's contact details, as an erasure request gives them, and whether a text
//! (a transcript turn, a lead email) mentions them. Phone numbers compare by their digits
//! ("(555) 010-2030" is "555-010-2030"), email addresses without regard to case and also
//! when spoken ("jane dot doe at example dot com"), as the lead detector reads them.

use sha2::{Digest, Sha256};

/// Fewest digits of a phone number worth erasing by (shorter runs are prices and years).
const MIN_PHONE_DIGITS: usize = 7;
/// Most digits of a phone number (E.164).
const MAX_PHONE_DIGITS: usize = 15;
/// A national number with this many digits or more also matches the same number with a
/// country code in front ("+1 555 010 2030").
const NATIONAL_DIGITS: usize = 10;

/// The contact details to look for: a lowercase email address and/or a phone number's
/// digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    email: Option<String>,
    phone: Option<String>,
}

impl Contact {
    /// Checks and normalises what a request gave; `Err((field, problem))` for a value that
    /// cannot be a contact detail, or when neither is given.
    pub fn new(
        email: Option<&str>,
        phone: Option<&str>,
    ) -> Result<Self, (&'static str, &'static str)> {
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        let phone = phone.map(str::trim).filter(|p| !p.is_empty());
        if email.is_none() && phone.is_none() {
            return Err(("email", "give an email address, a phone number, or both"));
        }
        let email = email
            .map(|e| {
                let lower = e.to_lowercase();
                match lower.parse::<lettre::Address>() {
                    Ok(_) if lower.len() <= 254 => Ok(lower),
                    _ => Err(("email", "must be an email address")),
                }
            })
            .transpose()?;
        let phone = phone
            .map(|p| {
                let digits: String = p.chars().filter(char::is_ascii_digit).collect();
                let plausible = p
                    .chars()
                    .all(|c| c.is_ascii_digit() || " -.()+/".contains(c));
                if plausible && (MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits.len()) {
                    Ok(digits)
                } else {
                    Err(("phone", "must be a phone number of 7 to 15 digits"))
                }
            })
            .transpose()?;
        Ok(Self { email, phone })
    }

    /// The email address, lowercase.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// The phone number's digits.
    pub fn phone_digits(&self) -> Option<&str> {
        self.phone.as_deref()
    }

    /// True when `text` mentions the email address or the phone number.
    pub fn mentioned_in(&self, text: &str) -> bool {
        self.email
            .as_deref()
            .is_some_and(|e| mentions_email(text, e))
            || self
                .phone
                .as_deref()
                .is_some_and(|p| mentions_phone(text, p))
    }

    /// SHA-256 (hex) of the email address and of the phone number's digits: what the audit
    /// log keeps, so an erasure can be matched to a request without storing the details.
    pub fn fingerprints(&self) -> serde_json::Value {
        let hash = |s: &str| -> String {
            Sha256::digest(s.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        serde_json::json!({
            "email_sha256": self.email.as_deref().map(hash),
            "phone_sha256": self.phone.as_deref().map(hash),
        })
    }

    /// Words every mention of the email address contains, written or spoken (the longest
    /// run of letters and digits of its local part, and its domain's first label): a
    /// cheap filter for the database, each candidate then checked with
    /// [`Contact::mentioned_in`].
    pub fn email_words(&self) -> Option<(String, String)> {
        let (local, domain) = self.email.as_deref()?.split_once('@')?;
        let longest = local
            .split(|c: char| !c.is_ascii_alphanumeric())
            .max_by_key(|w| w.len())
            .unwrap_or_default();
        let label = domain.split('.').next().unwrap_or_default();
        Some((longest.to_owned(), label.to_owned()))
    }

    /// The digits every mention of the phone number contains once separators are
    /// removed (the national part of a long number): the database's filter.
    pub fn phone_filter(&self) -> Option<&str> {
        let digits = self.phone.as_deref()?;
        Some(&digits[digits.len().saturating_sub(NATIONAL_DIGITS)..])
    }
}

/// Two numbers are the same when their digits are, or when one is the other with a country
/// code in front (both at least a national number long).
fn same_number(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short == long || (short.len() >= NATIONAL_DIGITS && long.ends_with(short))
}

/// True when `text` writes the number `digits`: some consecutive groups of digits,
/// separated only by what people and transcribers put in phone numbers, spell it ("call
/// (555) 010-2030 2 times" has 555, 010, 2030 and 2).
fn mentions_phone(text: &str, digits: &str) -> bool {
    let mut groups: Vec<&str> = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), '\n')))
    {
        if c.is_ascii_digit() {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            groups.push(&text[s..i]);
        }
        if !" -.()+/".contains(c) && !groups.is_empty() {
            if spells(&groups, digits) {
                return true;
            }
            groups.clear();
        }
    }
    false
}

/// True when consecutive `groups` concatenated are the number `digits`.
fn spells(groups: &[&str], digits: &str) -> bool {
    (0..groups.len()).any(|first| {
        let mut number = String::new();
        groups[first..].iter().any(|g| {
            number.push_str(g);
            number.len() <= MAX_PHONE_DIGITS && same_number(&number, digits)
        })
    })
}

/// True when `text` contains `email` (lowercase) as a whole address, written out or spoken.
fn mentions_email(text: &str, email: &str) -> bool {
    let lower = text.to_lowercase();
    let spoken = format!(
        " {} ",
        lower.split_whitespace().collect::<Vec<_>>().join(" ")
    )
    .replace(" dot ", ".")
    .replace(" underscore ", "_")
    .replace(" dash ", "-")
    .replace(" at ", "@");
    [lower.as_str(), spoken.as_str()]
        .iter()
        .any(|t| contains_address(t, email))
}

fn contains_address(text: &str, email: &str) -> bool {
    let part_of_address = |c: char| c.is_ascii_alphanumeric() || "._%+-@".contains(c);
    text.match_indices(email).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let mut after = text[at + email.len()..].chars();
        let next = after.next();
        let clear_before = !before.is_some_and(part_of_address);
        // A sentence may end right after the address ("… example.com."), not a longer domain.
        let clear_after = match next {
            None => true,
            Some('.') => !after.next().is_some_and(|c| c.is_ascii_alphanumeric()),
            Some(c) => !part_of_address(c),
        };
        clear_before && clear_after
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(p: &str) -> Contact {
        Contact::new(None, Some(p)).expect("valid phone")
    }

    fn email(e: &str) -> Contact {
        Contact::new(Some(e), None).expect("valid email")
    }

    #[test]
    fn phone_numbers_match_whatever_their_separators() {
        let wanted = phone("555-010-2030");
        for said in [
            "Call me at (555) 010-2030 please",
            "my number is 555.010.2030.",
            "5550102030",
            "It's +1 555 010 2030, thanks",
            "reach me on 555 / 010 / 2030",
            "555-010-2030 2 times, ok?",
            "Phone:555-010-2030",
        ] {
            assert!(wanted.mentioned_in(said), "{said}");
        }
    }

    #[test]
    fn other_numbers_do_not_match() {
        let wanted = phone("(555) 010-2030");
        for said in [
            "Call me at 555-010-2031",
            "The price is 55,501,020 dollars",
            "010-2030",
            "Is the 2024 model 30 percent off?",
            "My number is 555-010-20304",
        ] {
            assert!(!wanted.mentioned_in(said), "{said}");
        }
    }

    #[test]
    fn a_number_given_with_its_country_code_matches_the_national_one() {
        assert!(phone("+1 (555) 010-2030").mentioned_in("call 555-010-2030"));
        assert!(!phone("+1 (555) 010-2030").mentioned_in("call 010-2030"));
    }

    #[test]
    fn addresses_match_without_case_and_when_spoken() {
        let wanted = email("Jane.Doe@Example.com");
        for said in [
            "my email is JANE.DOE@example.com.",
            "write to <jane.doe@example.com>",
            "it's jane dot doe at example dot com",
            "Jane Dot Doe at Example dot com, thanks",
        ] {
            assert!(wanted.mentioned_in(said), "{said}");
        }
        for said in [
            "my email is xjane.doe@example.com",
            "jane.doe@example.com.au",
            "jane.doe@example.co",
            "jane doe at example",
        ] {
            assert!(!wanted.mentioned_in(said), "{said}");
        }
    }

    #[test]
    fn requests_without_a_usable_detail_are_refused() {
        assert_eq!(Contact::new(None, None).expect_err("refused").0, "email");
        assert_eq!(
            Contact::new(Some("  "), Some("")).expect_err("refused").0,
            "email"
        );
        assert_eq!(
            Contact::new(Some("not-an-address"), None)
                .expect_err("refused")
                .0,
            "email"
        );
        assert_eq!(
            Contact::new(None, Some("12345")).expect_err("refused").0,
            "phone"
        );
        assert_eq!(
            Contact::new(None, Some("call 5550102030"))
                .expect_err("refused")
                .0,
            "phone"
        );
    }

    #[test]
    fn the_database_filters_are_in_every_mention() {
        let both = Contact::new(
            Some("jane_doe99@mail.example.org"),
            Some("+44 20 7946 0018"),
        )
        .expect("valid");
        assert_eq!(
            both.email_words(),
            Some(("doe99".to_owned(), "mail".to_owned()))
        );
        assert_eq!(both.phone_filter(), Some("2079460018"));
        let fingerprints = both.fingerprints();
        assert_eq!(
            fingerprints["phone_sha256"].as_str().map(str::len),
            Some(64)
        );
        assert!(!fingerprints.to_string().contains("jane"));
    }
}
