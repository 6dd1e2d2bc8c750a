//! Leads from conversations: when a customer leaves contact details (an email address or
//! a phone number) or asks to be called back, the dealership gets an email with a summary
//! of the conversation once it ends. Detection reads what the customer said, as
//! transcribed: "jane at example dot com" counts as an address, "five five five …" does
//! not (Whisper writes numbers as digits).

use crate::db::{Db, Tenant, sessions};
use crate::email::Mailer;
use crate::email::lead::{LeadContact, queue_lead};

/// Phrases of a customer who wants to be contacted.
const CALLBACK_PHRASES: &[&str] = &[
    "call me",
    "call back",
    "callback",
    "give me a call",
    "contact me",
    "reach me",
    "get in touch",
    "get back to me",
    "have someone call",
    "someone call me",
    "text me",
    "email me",
    "e-mail me",
];

/// Most turns quoted in a lead's summary.
const SUMMARY_TURNS: usize = 12;

/// After session `session_id` ended: if the customer left contact details or asked to be
/// called back, queues the lead email to the dealership (when it has a lead address).
pub async fn follow_up(db: &Db, mailer: &Mailer, session_id: &str) {
    let result: anyhow::Result<()> = async {
        let Some(session) = sessions::get(db, Tenant::All, None, session_id).await? else {
            return Ok(());
        };
        let turns: Vec<(String, String)> = sessions::turns(db, Tenant::All, session_id)
            .await?
            .into_iter()
            .map(|t| (t.user_text, t.assistant_text))
            .collect();
        let Some(contact) = detect(turns.iter().map(|(user, _)| user.as_str())) else {
            return Ok(());
        };
        let queued = queue_lead(
            mailer,
            &session.dealership_id,
            session_id,
            &summary(&turns),
            &contact,
        )
        .await?;
        tracing::info!(
            session_id,
            emailed = queued.queued().is_some(),
            "lead detected"
        );
        Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(session_id, error = %e, "lead follow-up failed");
    }
}

/// The contact details in the customer's side of a conversation, if it is a lead.
pub fn detect<'a>(said: impl IntoIterator<Item = &'a str>) -> Option<LeadContact> {
    let mut contact = LeadContact::default();
    let mut wants_contact = false;
    for text in said {
        let lower = text.to_lowercase();
        if contact.email.is_none() {
            contact.email = email_in(&lower);
        }
        if contact.phone.is_none() {
            contact.phone = phone_in(text);
        }
        if contact.name.is_none() {
            contact.name = name_in(text);
        }
        if let Some(sentence) = CALLBACK_PHRASES
            .iter()
            .find_map(|p| lower.find(p).map(|at| sentence_around(text, at)))
        {
            wants_contact = true;
            contact.callback.get_or_insert(sentence);
        }
    }
    (wants_contact || contact.email.is_some() || contact.phone.is_some()).then_some(contact)
}

/// The lead email's summary: the exchange, customer and assistant, in order.
pub fn summary(turns: &[(String, String)]) -> String {
    let mut out = String::new();
    for (user, assistant) in turns.iter().take(SUMMARY_TURNS) {
        out.push_str(&format!(
            "Customer: {}\nAssistant: {}\n\n",
            user.trim(),
            assistant.trim()
        ));
    }
    if turns.len() > SUMMARY_TURNS {
        out.push_str(&format!(
            "… and {} more turns in the transcript.\n",
            turns.len() - SUMMARY_TURNS
        ));
    }
    out.trim_end().to_owned()
}

/// Top-level domains a spoken address is believed to end with ("… at example dot com").
const SPOKEN_TLDS: &[&str] = &[
    "com", "net", "org", "edu", "gov", "io", "co", "us", "uk", "ca", "au", "de", "fr", "es", "it",
    "nl", "ie", "nz", "info", "biz",
];

/// An address written out ("jane.doe@example.com") or spoken ("jane dot doe at example dot
/// com").
fn email_in(lower: &str) -> Option<String> {
    let valid = |candidate: &str| {
        let (local, domain) = candidate.split_once('@')?;
        let ok = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && candidate.parse::<lettre::Address>().is_ok();
        ok.then(|| candidate.to_owned())
    };
    let trim = |w: &str| w.trim_matches(|c: char| !c.is_alphanumeric()).to_owned();
    if let Some(written) = lower.split_whitespace().find_map(|w| valid(&trim(w))) {
        return Some(written);
    }
    let spoken = lower
        .replace(" dot ", ".")
        .replace(" underscore ", "_")
        .replace(" dash ", "-");
    let words: Vec<String> = spoken.split_whitespace().map(trim).collect();
    words.windows(3).find_map(|w| {
        let known_tld = w[2]
            .rsplit('.')
            .next()
            .is_some_and(|tld| SPOKEN_TLDS.contains(&tld));
        (w[1] == "at" && w[2].contains('.') && known_tld)
            .then(|| valid(&format!("{}@{}", w[0], w[2])))
            .flatten()
    })
}

/// A run of 7 to 15 digits, allowing the separators people and transcribers use.
fn phone_in(text: &str) -> Option<String> {
    let mut best: Option<String> = None;
    let mut run = String::new();
    let mut digits = 0;
    let mut flush = |run: &mut String, digits: &mut usize| {
        if (7..=15).contains(digits) && best.is_none() {
            best = Some(run.trim().trim_end_matches(['-', '.']).to_owned());
        }
        run.clear();
        *digits = 0;
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
            digits += 1;
        } else if matches!(c, ' ' | '-' | '.' | '(' | ')' | '+')
            && (digits > 0 || c == '+' || c == '(')
        {
            run.push(c);
        } else {
            flush(&mut run, &mut digits);
        }
    }
    flush(&mut run, &mut digits);
    best
}

/// "My name is Jane Doe" / "this is Jane": up to three capitalised words, within the
/// sentence.
fn name_in(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let at = ["my name is ", "my name's ", "this is "]
        .iter()
        .find_map(|p| lower.find(p).map(|i| i + p.len()))?;
    let mut name = Vec::new();
    for raw in text[at..].split_whitespace().take(3) {
        let word = raw.trim_matches(|c: char| !c.is_alphabetic() && c != '-' && c != '\'');
        if !word.chars().next().is_some_and(char::is_uppercase) {
            break;
        }
        name.push(word);
        if raw.ends_with(['.', ',', '!', '?', ';']) {
            break;
        }
    }
    (!name.is_empty()).then(|| name.join(" "))
}

/// The sentence of `text` that contains byte `at`.
fn sentence_around(text: &str, at: usize) -> String {
    let at = at.min(text.len());
    let start = text[..at].rfind(['.', '!', '?']).map_or(0, |i| i + 1);
    let end = text[at..]
        .find(['.', '!', '?'])
        .map_or(text.len(), |i| at + i + 1);
    text[start..end].trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_details_and_callback_requests_make_a_lead() {
        let lead = detect([
            "Do you have the hybrid in stock?",
            "Great. My name is Jane Doe. Please call me back tomorrow morning at 555-123-4567.",
        ])
        .expect("a lead");
        assert_eq!(lead.name.as_deref(), Some("Jane Doe"));
        assert_eq!(lead.phone.as_deref(), Some("555-123-4567"));
        assert_eq!(
            lead.callback.as_deref(),
            Some("Please call me back tomorrow morning at 555-123-4567.")
        );
        assert_eq!(lead.email, None);
    }

    #[test]
    fn spoken_and_written_addresses_are_found() {
        let spoken =
            detect(["You can reach me at jane dot doe at example dot com."]).expect("lead");
        assert_eq!(spoken.email.as_deref(), Some("jane.doe@example.com"));
        let written = detect(["my email is Jane_Doe@Example.co.uk, thanks"]).expect("lead");
        assert_eq!(written.email.as_deref(), Some("jane_doe@example.co.uk"));
    }

    #[test]
    fn ordinary_questions_are_not_leads() {
        assert_eq!(
            detect([
                "What are your opening hours on Saturday?",
                "How much is an oil change? Is it 49 dollars?",
                "Is the 2024 model available at 9 am?",
            ]),
            None
        );
    }

    #[test]
    fn the_summary_quotes_the_exchange_and_says_what_it_leaves_out() {
        let turns: Vec<(String, String)> = (0..14)
            .map(|i| (format!("question {i}"), format!("answer {i}")))
            .collect();
        let summary = summary(&turns);
        assert!(summary.starts_with("Customer: question 0\nAssistant: answer 0"));
        assert!(summary.contains("Customer: question 11"));
        assert!(!summary.contains("question 12"));
        assert!(summary.ends_with("… and 2 more turns in the transcript."));
    }
}
